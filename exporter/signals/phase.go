package signals

import "github.com/slipstream-otel/slipstream/telemetry"

// PhaseKind is the kind of lifecycle phase an event or an output belongs to.
type PhaseKind uint8

// Phase kinds. The Lambda execution environment lifecycle has an init (or
// a SnapStart restore) phase followed by invocations
// (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
const (
	PhaseNone PhaseKind = iota
	PhaseInit
	PhaseRestore
	PhaseInvocation
)

// Phase names one phase of the execution environment: the init phase, the
// restore phase, or one invocation by its request ID. The mapper hands
// every span over with the phase it belongs to, so that a consumer can
// tie it to the events of that phase without reading its name or
// attributes.
type Phase struct {
	Kind      PhaseKind
	RequestID string // set for PhaseInvocation
}

// InvocationPhase is the phase of the invocation with the request ID.
func InvocationPhase(requestID string) Phase {
	return Phase{Kind: PhaseInvocation, RequestID: requestID}
}

// PhaseOf returns the phase a platform event belongs to (PhaseNone for
// logs and for events outside init, restore and invocations).
func PhaseOf(ev telemetry.Event) Phase {
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		return InvocationPhase(r.RequestID)
	case *telemetry.RuntimeDone:
		return InvocationPhase(r.RequestID)
	case *telemetry.Report:
		return InvocationPhase(r.RequestID)
	case *telemetry.InitStart, *telemetry.InitRuntimeDone, *telemetry.InitReport:
		return Phase{Kind: PhaseInit}
	case *telemetry.RestoreStart, *telemetry.RestoreRuntimeDone, *telemetry.RestoreReport:
		return Phase{Kind: PhaseRestore}
	}
	return Phase{}
}
