package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SchemaVersion is the schemaVersion of a Telemetry API subscription.
type SchemaVersion string

// Schema versions of the Telemetry API subscription. Subscribe asks for
// SchemaLatest (required by Lambda Managed Instances) and falls back to
// SchemaFallback when the platform rejects the version.
const (
	SchemaLatest   SchemaVersion = "2025-01-29"
	SchemaFallback SchemaVersion = "2022-12-13"
)

// APIErrorType is the errorType of a Telemetry API answer other than 200.
type APIErrorType string

// Error types the Telemetry API answers with
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html). Others
// may come; APIError keeps whatever the platform sent.
const (
	// ErrorTypeNotSupported comes with 202 where there is no Telemetry
	// API (AWS's emulator in classic mode, SAM local).
	ErrorTypeNotSupported APIErrorType = "Telemetry.NotSupported"
	// ErrorTypeSubscriptionClosed comes with 403 once init is over.
	ErrorTypeSubscriptionClosed APIErrorType = "Telemetry.SubscriptionClosed"
	// ErrorTypeValidation comes with 400 for a body the platform refuses,
	// its schema version included.
	ErrorTypeValidation APIErrorType = "ValidationError"
)

// Documented ranges of the subscription's buffering
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html).
const (
	MinBufferItems     = 1000
	MaxBufferItems     = 10000
	MinBufferBytes     = 262144
	MaxBufferBytes     = 1048576
	MinBufferTimeoutMs = 25
	MaxBufferTimeoutMs = 30000
)

// DefaultSubscribeTimeout bounds one subscribe request when neither the
// http.Client nor the context sets a limit.
const DefaultSubscribeTimeout = 5 * time.Second

// ErrNotSupported means the Telemetry API is unavailable: 202
// Telemetry.NotSupported (AWS's emulator in classic mode, SAM local), 403
// (subscription closed, identifier refused) or 404 (other emulators). The
// caller logs one warning and keeps serving the lifecycle.
var ErrNotSupported = errors.New("telemetry API not supported")

// Subscription is what Subscribe asks the Telemetry API for.
type Subscription struct {
	// Types is a non-empty subset of "platform", "function", "extension".
	Types []string
	// MaxItems (1000..10000), MaxBytes (262144..1048576) and TimeoutMs
	// (25..30000) are the buffering limits; a batch is sent when any is hit.
	MaxItems, MaxBytes, TimeoutMs int
	// URI is the listener's address, from Listener.Start.
	URI string
}

// Validate checks s against the documented ranges. The error names every
// offending field and its accepted values.
func (s Subscription) Validate() error {
	var errs []error
	if len(s.Types) == 0 {
		errs = append(errs, errors.New("types: empty; want one or more of platform, function, extension"))
	}
	seen := make(map[string]bool, len(s.Types))
	for _, t := range s.Types {
		switch {
		case t != "platform" && t != "function" && t != "extension":
			errs = append(errs, fmt.Errorf("types: %q is not one of platform, function, extension", t))
		case seen[t]:
			errs = append(errs, fmt.Errorf("types: %q listed twice", t))
		}
		seen[t] = true
	}
	errs = append(errs,
		checkRange("maxItems", s.MaxItems, MinBufferItems, MaxBufferItems),
		checkRange("maxBytes", s.MaxBytes, MinBufferBytes, MaxBufferBytes),
		checkRange("timeoutMs", s.TimeoutMs, MinBufferTimeoutMs, MaxBufferTimeoutMs))
	if u, err := url.Parse(s.URI); err != nil || u.Scheme != "http" || u.Host == "" {
		errs = append(errs, fmt.Errorf("URI: %q is not an http:// URL", s.URI))
	}
	return errors.Join(errs...)
}

func checkRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s: %d out of range %d..%d", name, v, lo, hi)
	}
	return nil
}

// APIError is a non-200 answer of the Telemetry API. It matches
// ErrNotSupported (errors.Is) for 202, 403 and 404.
type APIError struct {
	StatusCode   int
	ErrorType    APIErrorType // e.g. ErrorTypeNotSupported; "" when the body is not JSON
	ErrorMessage string       // from the body; the raw body (truncated) if not JSON
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("status %d", e.StatusCode)
	if e.ErrorType != "" {
		msg += " " + string(e.ErrorType)
	}
	if e.ErrorMessage != "" {
		msg += ": " + e.ErrorMessage
	}
	return msg
}

// Unwrap returns ErrNotSupported for the statuses that mean "no Telemetry API here".
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusAccepted, http.StatusForbidden, http.StatusNotFound:
		return ErrNotSupported
	}
	return nil
}

// rejectsSchema reports whether the platform refused the schema version.
func (e *APIError) rejectsSchema() bool {
	return e.StatusCode == http.StatusBadRequest &&
		(e.ErrorType == ErrorTypeValidation ||
			strings.Contains(strings.ToLower(string(e.ErrorType)+" "+e.ErrorMessage), "schema"))
}

// Subscribe subscribes the extension to the Telemetry API
// (PUT http://<runtimeAPI>/2022-07-01/telemetry) and returns the schema
// version the platform accepted. It validates s first, asks for
// SchemaLatest, and retries once with SchemaFallback when the platform
// answers 400 about the schema.
//
// hc must have a Timeout (or ctx a deadline): Subscribe runs during Init
// and must never hang it. When neither is set, each request is bounded by
// DefaultSubscribeTimeout.
//
// Errors: ErrNotSupported (via *APIError) when the API is unavailable;
// otherwise *APIError with the status and errorType, or a transport error.
func Subscribe(ctx context.Context, hc *http.Client, runtimeAPI, extensionID string, s Subscription) (schemaVersion SchemaVersion, err error) {
	if err := s.Validate(); err != nil {
		return "", fmt.Errorf("subscribe telemetry: invalid subscription: %w", err)
	}
	if hc == nil {
		return "", errors.New("subscribe telemetry: nil http.Client")
	}
	if runtimeAPI == "" {
		return "", errors.New("subscribe telemetry: empty runtime API address")
	}
	endpoint := "http://" + runtimeAPI + "/2022-07-01/telemetry"

	err = subscribeOnce(ctx, hc, endpoint, extensionID, SchemaLatest, s)
	if err == nil {
		return SchemaLatest, nil
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !apiErr.rejectsSchema() {
		return "", fmt.Errorf("subscribe telemetry (schema %s): %w", SchemaLatest, err)
	}
	if err2 := subscribeOnce(ctx, hc, endpoint, extensionID, SchemaFallback, s); err2 != nil {
		return "", fmt.Errorf("subscribe telemetry (schema %s, after %s was refused: %v): %w",
			SchemaFallback, SchemaLatest, err, err2)
	}
	return SchemaFallback, nil
}

type subscribeRequest struct {
	SchemaVersion SchemaVersion `json:"schemaVersion"`
	Types         []string      `json:"types"`
	Buffering     buffering     `json:"buffering"`
	Destination   destination   `json:"destination"`
}

type buffering struct {
	MaxItems  int `json:"maxItems"`
	MaxBytes  int `json:"maxBytes"`
	TimeoutMs int `json:"timeoutMs"`
}

type destination struct {
	Protocol string `json:"protocol"`
	URI      string `json:"URI"`
}

func subscribeOnce(ctx context.Context, hc *http.Client, endpoint, extensionID string, schema SchemaVersion, s Subscription) error {
	body, err := json.Marshal(subscribeRequest{
		SchemaVersion: schema,
		Types:         s.Types,
		Buffering:     buffering{MaxItems: s.MaxItems, MaxBytes: s.MaxBytes, TimeoutMs: s.TimeoutMs},
		Destination:   destination{Protocol: "HTTP", URI: s.URI},
	})
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok && hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultSubscribeTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Lambda-Extension-Identifier", extensionID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status decides
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	apiErr := &APIError{StatusCode: resp.StatusCode}
	var eb struct {
		ErrorType    APIErrorType `json:"errorType"`
		ErrorMessage string       `json:"errorMessage"`
	}
	if json.Unmarshal(raw, &eb) == nil {
		apiErr.ErrorType, apiErr.ErrorMessage = eb.ErrorType, eb.ErrorMessage
	} else {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 256 {
			msg = strings.ToValidUTF8(msg[:256], "") + "…"
		}
		apiErr.ErrorMessage = msg
	}
	return apiErr
}
