package extension

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds every Extensions API call except [Client.Next] when
// the injected http.Client has no Timeout of its own.
const DefaultTimeout = 5 * time.Second

// Header names of the Extensions API.
const (
	headerName          = "Lambda-Extension-Name"
	headerAcceptFeature = "Lambda-Extension-Accept-Feature"
	headerIdentifier    = "Lambda-Extension-Identifier"
	headerErrorType     = "Lambda-Extension-Function-Error-Type"
)

// maxResponseBytes caps what is read from any Extensions API response; the
// real bodies are a few hundred bytes.
const maxResponseBytes = 1 << 20

// Client talks to the Extensions API at AWS_LAMBDA_RUNTIME_API. It is safe
// for concurrent use.
type Client struct {
	base string
	// hc carries every call but Next; its Timeout is never zero.
	hc *http.Client
	// longPoll carries Next: the same transport as hc, no Timeout.
	longPoll *http.Client

	// mu guards id.
	mu sync.Mutex
	id string
}

// NewClient returns a client for the Extensions API at runtimeAPI, the
// host:port (no scheme) from AWS_LAMBDA_RUNTIME_API.
//
// hc's Timeout bounds Register, InitError and ExitError; a zero Timeout is
// replaced by [DefaultTimeout] (hc itself is not modified). Next uses a copy
// of hc with the same Transport and no Timeout, because /event/next blocks
// for as long as the environment is idle or frozen; only its context ends it.
// With a nil hc the client uses its own transport that never goes through a
// proxy: the function's HTTP_PROXY, which extensions inherit, must not
// capture calls to the runtime API.
func NewClient(runtimeAPI string, hc *http.Client) *Client {
	var base http.Client
	if hc != nil {
		base = *hc
	} else {
		base.Transport = newTransport()
	}
	if base.Timeout <= 0 {
		base.Timeout = DefaultTimeout
	}
	longPoll := base
	longPoll.Timeout = 0
	return &Client{
		base:     "http://" + runtimeAPI + "/2020-01-01/extension",
		hc:       &base,
		longPoll: &longPoll,
	}
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil, // the runtime API is local; never proxied
		DialContext: (&net.Dialer{
			Timeout:   DefaultTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
}

// ID returns the extension identifier received from Register, or "" before
// a successful Register.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// RegisterResponse is the body of a successful register call.
type RegisterResponse struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	// AccountID is set when the platform honours the accountId feature,
	// which Register always asks for; it may be "".
	AccountID string `json:"accountId"`
}

// Register registers the extension for events. name must be the file name of
// the executable under /opt/extensions (filepath.Base(os.Args[0])): Lambda
// rejects a registration whose name does not match the process it started.
// Register asks for the accountId feature and keeps the returned identifier
// for every later call.
func (c *Client) Register(ctx context.Context, name string, events []EventType) (RegisterResponse, error) {
	if events == nil {
		events = []EventType{}
	}
	body, err := json.Marshal(struct {
		Events []EventType `json:"events"`
	}{events})
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("register extension: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/register", bytes.NewReader(body))
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("register extension: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerName, name)
	req.Header.Set(headerAcceptFeature, "accountId")

	var rr RegisterResponse
	hdr, err := c.do(c.hc, req, &rr)
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("register extension: %w", err)
	}
	id := hdr.Get(headerIdentifier)
	if id == "" {
		return RegisterResponse{}, errors.New("register extension: response has no " + headerIdentifier + " header")
	}
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	return rr, nil
}

// Next long-polls GET /extension/event/next and returns the next event. It
// has no timeout: it returns when the platform sends an event or ctx ends.
// The body is decoded as JSON whatever its Content-Type (the local emulator
// sends SHUTDOWN as text/plain).
func (c *Client) Next(ctx context.Context) (Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/event/next", nil)
	if err != nil {
		return Event{}, fmt.Errorf("next event: %w", err)
	}
	req.Header.Set(headerIdentifier, c.ID())
	var ev Event
	if _, err := c.do(c.longPoll, req, &ev); err != nil {
		return Event{}, fmt.Errorf("next event: %w", err)
	}
	return ev, nil
}

// InitError reports that the extension failed to initialise
// (POST /extension/init/error). Lambda then fails the environment's init, so
// after it returns the extension should exit; no further call will succeed.
// errorType is the Lambda-Extension-Function-Error-Type header, in
// Category.Reason form (e.g. "Extension.ConfigInvalid"); "" becomes
// "Extension.UnknownReason".
func (c *Client) InitError(ctx context.Context, errorType string, err error) error {
	if e := c.reportError(ctx, "/init/error", errorType, err); e != nil {
		return fmt.Errorf("report init error: %w", e)
	}
	return nil
}

// ExitError reports that the extension is about to exit because of an
// unexpected failure (POST /extension/exit/error). Arguments are as for
// [Client.InitError].
func (c *Client) ExitError(ctx context.Context, errorType string, err error) error {
	if e := c.reportError(ctx, "/exit/error", errorType, err); e != nil {
		return fmt.Errorf("report exit error: %w", e)
	}
	return nil
}

func (c *Client) reportError(ctx context.Context, path, errorType string, err error) error {
	if errorType == "" {
		errorType = "Extension.UnknownReason"
	}
	msg := errorType
	if err != nil {
		msg = err.Error()
	}
	body, e := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, errorType})
	if e != nil {
		return e
	}
	req, e := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if e != nil {
		return e
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerIdentifier, c.ID())
	req.Header.Set(headerErrorType, errorType)
	_, e = c.do(c.hc, req, nil)
	return e
}

// APIError is a non-2xx answer from the Extensions API.
type APIError struct {
	StatusCode int
	// ErrorType and ErrorMessage come from the platform's JSON error body,
	// e.g. "Extension.InvalidEventType"; ErrorType is "" when the body had none.
	ErrorType    string
	ErrorMessage string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d", e.StatusCode)
	if e.ErrorType != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrorType)
	}
	if e.ErrorMessage != "" {
		b.WriteString(": ")
		b.WriteString(e.ErrorMessage)
	}
	return b.String()
}

// do sends req with hc and decodes a 2xx JSON body into out (unless out is
// nil). It returns the response header, or an *APIError for a non-2xx status.
func (c *Client) do(hc *http.Client, req *http.Request, out any) (http.Header, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.Header, nil
}

func newAPIError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	var eb struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.ErrorType, e.ErrorMessage = eb.ErrorType, eb.ErrorMessage
		return e
	}
	const maxText = 256
	text := strings.TrimSpace(string(body))
	if len(text) > maxText {
		text = strings.ToValidUTF8(text[:maxText], "") + "…"
	}
	e.ErrorMessage = text
	return e
}
