package extension

import (
	"strings"
	"time"
)

// EventType is an event a Lambda extension can register for and receive.
type EventType string

// Event types of the Extensions API.
const (
	Invoke   EventType = "INVOKE"
	Shutdown EventType = "SHUTDOWN"
)

// EventsFor returns the events to register for. Lambda Managed Instances
// (AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances) reject INVOKE for
// external extensions, so there it is SHUTDOWN only; per-invocation data then
// comes from the Telemetry API.
func EventsFor(managedInstances bool) []EventType {
	if managedInstances {
		return []EventType{Shutdown}
	}
	return []EventType{Invoke, Shutdown}
}

// Event is the body of a GET /extension/event/next response.
type Event struct {
	Type EventType `json:"eventType"`
	// DeadlineMs is in Unix epoch milliseconds: for INVOKE, when the
	// invocation times out; for SHUTDOWN, when the extension must have exited.
	DeadlineMs int64 `json:"deadlineMs"`
	// RequestID, InvokedFunctionARN and Tracing are set on INVOKE only.
	RequestID string `json:"requestId,omitempty"`
	// InvokedFunctionARN may carry an alias or version qualifier.
	InvokedFunctionARN string   `json:"invokedFunctionArn,omitempty"`
	Tracing            *Tracing `json:"tracing,omitempty"`
	// ShutdownReason is the platform's text, set on SHUTDOWN only; its
	// casing varies between platforms, so compare it through [Event.Reason].
	ShutdownReason string `json:"shutdownReason,omitempty"`
}

// Tracing is the trace header that came with an invocation.
type Tracing struct {
	Type  string `json:"type"`  // "X-Amzn-Trace-Id"
	Value string `json:"value"` // e.g. "Root=1-...;Parent=...;Sampled=1"
}

// Deadline returns DeadlineMs as a time, or the zero time when the platform
// sent none.
func (e Event) Deadline() time.Time {
	if e.DeadlineMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.DeadlineMs)
}

// Reason returns the normalised shutdown reason of a SHUTDOWN event.
func (e Event) Reason() ShutdownReason {
	return ParseShutdownReason(e.ShutdownReason)
}

// ShutdownReason is why the execution environment shuts down. The AWS
// documentation spells the reasons in upper case, the platform and the local
// emulator send them in lower case, so they are compared case-insensitively.
type ShutdownReason string

// Shutdown reasons. ReasonOther stands for every value the Extensions API
// documentation does not list, such as "SandboxTerminated" from the classic
// local emulator; the original text stays in [Event.ShutdownReason].
const (
	ReasonSpindown ShutdownReason = "spindown" // normal end of the environment
	ReasonTimeout  ShutdownReason = "timeout"  // an invocation ran out of time
	ReasonFailure  ShutdownReason = "failure"  // e.g. the runtime ran out of memory
	ReasonOther    ShutdownReason = "other"
)

// ParseShutdownReason maps a shutdownReason value to one of the ShutdownReason
// constants, ignoring case; unknown values, including the empty string, are
// ReasonOther.
func ParseShutdownReason(s string) ShutdownReason {
	for _, r := range [...]ShutdownReason{ReasonSpindown, ReasonTimeout, ReasonFailure} {
		if strings.EqualFold(s, string(r)) {
			return r
		}
	}
	return ReasonOther
}
