package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The emulator writes the Telemetry API's wire format with its own types,
// from the spec, rather than importing the agent's telemetry package: a peer
// that shared the agent's field names would also share its mistakes.

// Telemetry event types (Telemetry schema).
const (
	TypeInitStart             = "platform.initStart"
	TypeInitRuntimeDone       = "platform.initRuntimeDone"
	TypeInitReport            = "platform.initReport"
	TypeStart                 = "platform.start"
	TypeRuntimeDone           = "platform.runtimeDone"
	TypeReport                = "platform.report"
	TypeExtension             = "platform.extension"
	TypeTelemetrySubscription = "platform.telemetrySubscription"
	TypeLogsDropped           = "platform.logsDropped"
	TypeFunction              = "function"
	TypeExtensionLog          = "extension"
)

// Status is the status of a phase in telemetry records (Telemetry schema Status).
type Status string

// Statuses (Telemetry schema).
const (
	StatusSuccess Status = "success"
	StatusError   Status = "error"
	StatusFailure Status = "failure"
	StatusTimeout Status = "timeout"
)

// Shutdown reasons as RAPID sends them: lowercase (Extensions API).
const (
	ReasonSpindown = "spindown"
	ReasonTimeout  = "timeout"
	ReasonFailure  = "failure"
)

// Error types used by the emulator in records and API answers (Telemetry schema, Extensions API).
const (
	errRuntimeExit     = "Runtime.ExitError"
	errSandboxTimedout = "Sandbox.Timedout"
	errExtensionCrash  = "Extension.Crash"
	errExtensionInit   = "Extension.InitError"
)

const (
	phaseInit   = "init"
	phaseInvoke = "invoke"
	onDemand    = "on-demand"
	tracingType = "X-Amzn-Trace-Id"
	timeLayout  = "2006-01-02T15:04:05.000Z" // Telemetry API: RAPID format
)

type traceContext struct {
	SpanID string `json:"spanId,omitempty"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

type span struct {
	Name       string  `json:"name"`
	Start      string  `json:"start"`
	DurationMs float64 `json:"durationMs"`
}

type initStartRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	FunctionName       string `json:"functionName"`
	FunctionVersion    string `json:"functionVersion"`
	InstanceID         string `json:"instanceId"`
	InstanceMaxMemory  int64  `json:"instanceMaxMemory"`
}

type initRuntimeDoneRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	Status             Status `json:"status"`
	ErrorType          string `json:"errorType,omitempty"`
}

type durationMetrics struct {
	DurationMs float64 `json:"durationMs"`
}

type initReportRecord struct {
	InitializationType string          `json:"initializationType"`
	Phase              string          `json:"phase"`
	Status             Status          `json:"status"`
	ErrorType          string          `json:"errorType,omitempty"`
	Metrics            durationMetrics `json:"metrics"`
}

type startRecord struct {
	RequestID   string        `json:"requestId"`
	Version     string        `json:"version"`
	FunctionARN string        `json:"functionArn,omitempty"`
	Tracing     *traceContext `json:"tracing,omitempty"`
}

type runtimeDoneMetrics struct {
	DurationMs    float64 `json:"durationMs"`
	ProducedBytes int     `json:"producedBytes"`
}

type runtimeDoneRecord struct {
	RequestID string             `json:"requestId"`
	Status    Status             `json:"status"`
	ErrorType string             `json:"errorType,omitempty"`
	Metrics   runtimeDoneMetrics `json:"metrics"`
	Spans     []span             `json:"spans,omitempty"`
	Tracing   *traceContext      `json:"tracing,omitempty"`
}

type reportMetrics struct {
	DurationMs       float64  `json:"durationMs"`
	BilledDurationMs int64    `json:"billedDurationMs"`
	MemorySizeMB     int      `json:"memorySizeMB"`
	MaxMemoryUsedMB  int      `json:"maxMemoryUsedMB"`
	InitDurationMs   *float64 `json:"initDurationMs,omitempty"`
}

type reportRecord struct {
	RequestID string        `json:"requestId"`
	Status    Status        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
	Metrics   reportMetrics `json:"metrics"`
	Spans     []span        `json:"spans,omitempty"`
	Tracing   *traceContext `json:"tracing,omitempty"`
}

type extensionRecord struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Events    []string `json:"events"`
	ErrorType string   `json:"errorType,omitempty"`
}

type subscriptionRecord struct {
	Name  string   `json:"name"`
	State string   `json:"state"`
	Types []string `json:"types"`
}

type logsDroppedRecord struct {
	DroppedBytes   int64  `json:"droppedBytes"`
	DroppedRecords int64  `json:"droppedRecords"`
	Reason         string `json:"reason"`
}

// wireEvent is one element of a Telemetry API POST body.
type wireEvent struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record any    `json:"record"`
}

// encodeEvent renders one event; records are plain structs or strings and
// cannot fail to marshal.
func encodeEvent(t time.Time, typ string, record any) []byte {
	b, err := json.Marshal(wireEvent{Time: t.UTC().Format(timeLayout), Type: typ, Record: record})
	if err != nil {
		panic(fmt.Sprintf("emulator: encode %s: %v", typ, err))
	}
	return b
}

// category maps an event type to the subscription type that selects it (Telemetry API).
func category(typ string) string {
	switch typ {
	case TypeFunction:
		return "function"
	case TypeExtensionLog:
		return "extension"
	}
	return "platform"
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func newSpan(name string, start time.Time, d time.Duration) span {
	return span{Name: name, Start: start.UTC().Format(timeLayout), DurationMs: ms(d)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("emulator: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("emulator: crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
