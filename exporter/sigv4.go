package exporter

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

// sigv4Transport signs each request with AWS Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html),
// for AWS's OTLP endpoints. It sits below gzipTransport, so it signs the
// bytes actually sent, and above observingTransport, whose notion of
// "the body was written" must not see the signer read it. Every attempt,
// retries included, passes here: each is signed when it is sent, with the
// credentials of that moment.
type sigv4Transport struct {
	base            http.RoundTripper
	signer          *v4.Signer
	creds           *awsCredentials
	service, region string
	now             func() time.Time
}

func (t *sigv4Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sigv4: read request body: %w", err)
		}
		body = b
	}
	c, err := t.creds.get(req.Context())
	if err != nil {
		return nil, fmt.Errorf("sigv4: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r2.ContentLength = int64(len(body))
	r2.Header.Set("X-Amz-Content-Sha256", hash)
	if err := t.signer.SignHTTP(req.Context(), c, r2, hash, t.service, t.region, t.now()); err != nil {
		return nil, fmt.Errorf("sigv4: sign: %w", err)
	}
	return t.base.RoundTrip(r2)
}

// awsCredentials supplies the function's AWS credentials: the
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables,
// read again at each request (so a change is picked up), or, when they are
// not set, the container credentials endpoint
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN,
// as under SnapStart), cached until five minutes before they expire.
// Credentials are never logged.
type awsCredentials struct {
	getenv func(string) string
	client *http.Client // for the container endpoint: no proxy, short timeout
	now    func() time.Time

	// mu guards cached.
	mu     sync.Mutex
	cached aws.Credentials
}

func newAWSCredentials(getenv func(string) string, now func() time.Time) *awsCredentials {
	return &awsCredentials{
		getenv: getenv,
		now:    now,
		// Loopback or link-local: never proxied (Proxy nil).
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConns: 1}},
	}
}

// errNoCredentials: neither the variables nor the endpoint are set.
var errNoCredentials = errors.New("no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_CONTAINER_CREDENTIALS_FULL_URI are unset")

func (c *awsCredentials) get(ctx context.Context) (aws.Credentials, error) {
	if id, secret := c.getenv("AWS_ACCESS_KEY_ID"), c.getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: c.getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	}
	uri := c.getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if uri == "" {
		return aws.Credentials{}, errNoCredentials
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
func (c *awsCredentials) fetch(ctx context.Context, uri string) (aws.Credentials, error) {
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
