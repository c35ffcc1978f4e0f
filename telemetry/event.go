package telemetry

import (
	"encoding/json"
	"time"
)

// Type is the "type" field of a Telemetry API event.
type Type string

// Event types of the Telemetry API, schema 2022-12-13 and 2025-01-29
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html).
const (
	TypeInitStart             Type = "platform.initStart"
	TypeInitRuntimeDone       Type = "platform.initRuntimeDone"
	TypeInitReport            Type = "platform.initReport"
	TypeStart                 Type = "platform.start"
	TypeRuntimeDone           Type = "platform.runtimeDone"
	TypeReport                Type = "platform.report"
	TypeRestoreStart          Type = "platform.restoreStart"
	TypeRestoreRuntimeDone    Type = "platform.restoreRuntimeDone"
	TypeRestoreReport         Type = "platform.restoreReport"
	TypeExtension             Type = "platform.extension"
	TypeTelemetrySubscription Type = "platform.telemetrySubscription"
	TypeLogsDropped           Type = "platform.logsDropped"
	TypeFunction              Type = "function"
	TypeExtensionLog          Type = "extension"
)

// Status is the outcome of a phase (init, invoke, restore).
type Status string

// Statuses reported by the platform.
const (
	StatusSuccess Status = "success"
	StatusFailure Status = "failure"
	StatusError   Status = "error"
	StatusTimeout Status = "timeout"
)

// InitType is the initializationType of an execution environment.
type InitType string

// Initialization types.
const (
	InitOnDemand               InitType = "on-demand"
	InitProvisionedConcurrency InitType = "provisioned-concurrency"
	InitSnapStart              InitType = "snap-start"
	InitLambdaManagedInstances InitType = "lambda-managed-instances"
)

// InitPhase tells whether init ran in the init phase or was re-run
// ("suppressed init") inside an invoke.
type InitPhase string

// Init phases.
const (
	PhaseInit   InitPhase = "init"
	PhaseInvoke InitPhase = "invoke"
)

// Event is one decoded Telemetry API event.
//
// Record holds a pointer to the per-type struct below (*InitStart,
// *Report, *Log, ...). For an unknown type, or a known type whose record
// did not decode, Record is nil and Raw holds the record as received;
// Raw is also kept for known types only when decoding failed.
type Event struct {
	Time   time.Time
	Type   Type
	Record any
	// Raw is the undecoded record, set when Record is nil.
	Raw json.RawMessage
	// Size is the size in bytes of the event as received, used for memory
	// accounting by queues.
	Size int
}

// Tracing is the trace context Lambda attaches to phase events.
type Tracing struct {
	SpanID string `json:"spanId,omitempty"`
	Type   string `json:"type,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Span is an entry of the "spans" list on runtimeDone, report and the init
// and restore events, e.g. responseLatency and responseDuration.
type Span struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"durationMs"`
}

// InitStart is the record of platform.initStart.
type InitStart struct {
	InitializationType InitType  `json:"initializationType"`
	Phase              InitPhase `json:"phase"`
	RuntimeVersion     string    `json:"runtimeVersion,omitempty"`
	RuntimeVersionARN  string    `json:"runtimeVersionArn,omitempty"`
	FunctionName       string    `json:"functionName,omitempty"`
	FunctionVersion    string    `json:"functionVersion,omitempty"`
	// InstanceID is the log stream name of the execution environment.
	InstanceID string `json:"instanceId,omitempty"`
	// InstanceMaxMemory is in bytes.
	InstanceMaxMemory int64    `json:"instanceMaxMemory,omitempty"`
	Tracing           *Tracing `json:"tracing,omitempty"`
}

// InitRuntimeDone is the record of platform.initRuntimeDone.
type InitRuntimeDone struct {
	InitializationType InitType  `json:"initializationType"`
	Phase              InitPhase `json:"phase,omitempty"`
	Status             Status    `json:"status"`
	ErrorType          string    `json:"errorType,omitempty"`
	Spans              []Span    `json:"spans,omitempty"`
	Tracing            *Tracing  `json:"tracing,omitempty"`
}

// DurationMetrics holds the single metric of init and restore reports.
type DurationMetrics struct {
	DurationMs float64 `json:"durationMs"`
}

// InitReport is the record of platform.initReport.
type InitReport struct {
	InitializationType InitType        `json:"initializationType"`
	Phase              InitPhase       `json:"phase"`
	Status             Status          `json:"status,omitempty"`
	ErrorType          string          `json:"errorType,omitempty"`
	Metrics            DurationMetrics `json:"metrics"`
	Spans              []Span          `json:"spans,omitempty"`
	Tracing            *Tracing        `json:"tracing,omitempty"`
}

// Start is the record of platform.start.
type Start struct {
	RequestID   string   `json:"requestId"`
	Version     string   `json:"version,omitempty"`
	FunctionARN string   `json:"functionArn,omitempty"`
	TenantID    string   `json:"tenantId,omitempty"`
	Tracing     *Tracing `json:"tracing,omitempty"`
}

// RuntimeDoneMetrics are the metrics of platform.runtimeDone.
type RuntimeDoneMetrics struct {
	DurationMs    float64 `json:"durationMs"`
	ProducedBytes *int64  `json:"producedBytes,omitempty"`
}

// RuntimeDone is the record of platform.runtimeDone. Lambda Managed
// Instances do not emit it.
type RuntimeDone struct {
	RequestID string              `json:"requestId"`
	Status    Status              `json:"status"`
	ErrorType string              `json:"errorType,omitempty"`
	Metrics   *RuntimeDoneMetrics `json:"metrics,omitempty"`
	Spans     []Span              `json:"spans,omitempty"`
	TenantID  string              `json:"tenantId,omitempty"`
	Tracing   *Tracing            `json:"tracing,omitempty"`
}

// ReportMetrics are the metrics of platform.report. Memory figures are in
// MiB. Under Lambda Managed Instances only DurationMs is present.
type ReportMetrics struct {
	DurationMs        float64  `json:"durationMs"`
	BilledDurationMs  *int64   `json:"billedDurationMs,omitempty"`
	MemorySizeMB      *int64   `json:"memorySizeMB,omitempty"`
	MaxMemoryUsedMB   *int64   `json:"maxMemoryUsedMB,omitempty"`
	InitDurationMs    *float64 `json:"initDurationMs,omitempty"`
	RestoreDurationMs *float64 `json:"restoreDurationMs,omitempty"`
}

// Report is the record of platform.report.
type Report struct {
	RequestID string        `json:"requestId"`
	Status    Status        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
	Metrics   ReportMetrics `json:"metrics"`
	Spans     []Span        `json:"spans,omitempty"`
	TenantID  string        `json:"tenantId,omitempty"`
	Tracing   *Tracing      `json:"tracing,omitempty"`
}

// RestoreStart is the record of platform.restoreStart (SnapStart).
type RestoreStart struct {
	RuntimeVersion    string `json:"runtimeVersion,omitempty"`
	RuntimeVersionARN string `json:"runtimeVersionArn,omitempty"`
	FunctionName      string `json:"functionName,omitempty"`
	FunctionVersion   string `json:"functionVersion,omitempty"`
	InstanceID        string `json:"instanceId,omitempty"`
	// InstanceMaxMemory is in bytes.
	InstanceMaxMemory int64    `json:"instanceMaxMemory,omitempty"`
	Tracing           *Tracing `json:"tracing,omitempty"`
}

// RestoreRuntimeDone is the record of platform.restoreRuntimeDone.
type RestoreRuntimeDone struct {
	Status    Status   `json:"status"`
	ErrorType string   `json:"errorType,omitempty"`
	Spans     []Span   `json:"spans,omitempty"`
	Tracing   *Tracing `json:"tracing,omitempty"`
}

// RestoreReport is the record of platform.restoreReport.
type RestoreReport struct {
	Status    Status          `json:"status"`
	ErrorType string          `json:"errorType,omitempty"`
	Metrics   DurationMetrics `json:"metrics"`
	Spans     []Span          `json:"spans,omitempty"`
	Tracing   *Tracing        `json:"tracing,omitempty"`
}

// Extension is the record of platform.extension.
type Extension struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Events    []string `json:"events"`
	ErrorType string   `json:"errorType,omitempty"`
}

// TelemetrySubscription is the record of platform.telemetrySubscription.
type TelemetrySubscription struct {
	Name  string   `json:"name"`
	State string   `json:"state"`
	Types []string `json:"types"`
}

// LogsDropped is the record of platform.logsDropped.
type LogsDropped struct {
	DroppedBytes   int64  `json:"droppedBytes"`
	DroppedRecords int64  `json:"droppedRecords"`
	Reason         string `json:"reason"`
}

// Log is the record of a "function" or "extension" event: one line the
// function or an extension wrote to stdout or stderr.
//
// A record that is a JSON object (JSON log format), or a string holding a
// JSON object (text format, or AWS's emulator), is decoded into the
// well-known fields plus Fields; otherwise Text is the line as written.
type Log struct {
	// Text is the line as written. Empty when the record was a JSON object.
	Text string
	// JSON reports whether the line was a JSON object.
	JSON bool
	// Well-known keys of AWS's JSON log format; zero when absent.
	Timestamp time.Time
	Level     string
	RequestID string
	Message   string
	// Fields holds every other key of a JSON line, undecoded.
	Fields map[string]json.RawMessage
}
