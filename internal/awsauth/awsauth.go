// Package awsauth signs requests to AWS with the function's credentials:
// the AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
// variables Lambda sets, or the container credentials endpoint used under
// SnapStart, and AWS's own Signature Version 4 signer
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html).
//
// A [Credentials] is safe for concurrent use: its cache has one lock.
// [Sign] keeps no state. Credentials are never logged.
package awsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Sign sets req's body to body and signs it for service and region at
// now, with the credentials of that moment.
func Sign(ctx context.Context, c *Credentials, req *http.Request, body []byte, service, region string, now time.Time) error {
	cr, err := c.Get(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := signer.SignHTTP(ctx, cr, req, hash, service, region, now); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// signer keeps no state between calls (v4.Signer is safe for concurrent use).
var signer = v4.NewSigner()

// Credentials supplies the function's AWS credentials: the
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables,
// read again at each request (so a change is picked up), or, when they are
// not set, the container credentials endpoint
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN,
// as under SnapStart), cached until five minutes before they expire.
// Credentials are never logged.
type Credentials struct {
	getenv func(string) string
	client *http.Client // for the container endpoint: no proxy, short timeout
	now    func() time.Time

	// mu guards cached.
	mu     sync.Mutex
	cached aws.Credentials
}

func NewCredentials(getenv func(string) string, now func() time.Time) *Credentials {
	if now == nil {
		now = time.Now
	}
	return &Credentials{
		getenv: getenv,
		now:    now,
		// Loopback or link-local: never proxied (Proxy nil).
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConns: 1}},
	}
}

// ErrNoCredentials: neither the variables nor the endpoint are set.
var ErrNoCredentials = errors.New("no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_CONTAINER_CREDENTIALS_FULL_URI are unset")

func (c *Credentials) Get(ctx context.Context) (aws.Credentials, error) {
	if id, secret := c.getenv("AWS_ACCESS_KEY_ID"), c.getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: c.getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	}
	uri := c.getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if uri == "" {
		return aws.Credentials{}, ErrNoCredentials
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached.HasKeys() && (!c.cached.CanExpire || c.now().Before(c.cached.Expires.Add(-5*time.Minute))) {
		return c.cached, nil
	}
	got, err := c.fetch(ctx, uri)
	if err != nil {
		return aws.Credentials{}, err
	}
	c.cached = got
	return got, nil
}

// fetch calls the container credentials endpoint
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html).
func (c *Credentials) fetch(ctx context.Context, uri string) (aws.Credentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL")
	}
	token := c.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if file := c.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); token == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("container credentials: read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("container credentials: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, fmt.Errorf("container credentials: status %d", resp.StatusCode)
	}
	var v struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      time.Time
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v); err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("container credentials: response without AccessKeyId and SecretAccessKey")
	}
	return aws.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.Token,
		Source: "container", CanExpire: !v.Expiration.IsZero(), Expires: v.Expiration}, nil
}
