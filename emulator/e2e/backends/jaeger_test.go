//go:build e2e

package backends

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// jaegerConfig is Jaeger v2's configuration: the OTLP receiver (gRPC and
// HTTP), memory storage written synchronously (no queue, so an accepted
// export is stored), the query API; everything on 127.0.0.1, no
// telemetry of its own.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:%[3]d
    grpc:
      endpoint: 127.0.0.1:%[4]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
      http:
        endpoint: 127.0.0.1:%[2]d
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
    queue:
      enabled: false
`

// jaeger is a running Jaeger.
type jaeger struct {
	otlpGRPC, otlpHTTP string // endpoints for the agent
	query              string // base URL of the query API
}

func startJaeger(ctx context.Context, t *testing.T) *jaeger {
	t.Helper()
	bin := tool(t, "jaeger")
	grpcPort, httpPort, queryPort, queryGRPCPort := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := writeFile(t, "jaeger.yaml", fmt.Sprintf(jaegerConfig, grpcPort, httpPort, queryPort, queryGRPCPort))
	startBackend(ctx, t, "jaeger", "Everything is ready", bin, "--config", cfg)
	return &jaeger{
		otlpGRPC: fmt.Sprintf("http://127.0.0.1:%d", grpcPort),
		otlpHTTP: fmt.Sprintf("http://127.0.0.1:%d/v1/traces", httpPort),
		query:    fmt.Sprintf("http://127.0.0.1:%d", queryPort),
	}
}

// trace reads one trace through the API v3 (OTLP JSON), waiting until
// Jaeger has it.
func (j *jaeger) trace(ctx context.Context, t *testing.T, traceID string) ptrace.Traces {
	t.Helper()
	var td ptrace.Traces
	eventually(ctx, t, "trace "+traceID+" at Jaeger", func(ctx context.Context) (bool, string, error) {
		var body struct {
			Result json.RawMessage `json:"result"`
		}
		status, err := getJSON(ctx, j.query+"/api/v3/traces/"+traceID, &body)
		if err != nil || status != http.StatusOK {
			return false, fmt.Sprintf("status %d", status), err
		}
		td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body.Result)
		if err != nil {
			return false, "", fmt.Errorf("decode Jaeger's OTLP JSON: %w", err)
		}
		return td.SpanCount() > 0, "no spans", nil
	})
	return td
}

// storedSpan is a span as Jaeger returned it, with its resource.
type storedSpan struct {
	ptrace.Span
	resource pcommon.Map
	scope    string // instrumentation scope name
}

// platformScope is the scope of every span Slipstream maps from the
// Telemetry API; the function's own spans come with their SDK's scopes.
const platformScope = "github.com/slipstream-otel/slipstream"

func spansOf(td ptrace.Traces) []storedSpan {
	var out []storedSpan
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, storedSpan{sp, rs.Resource().Attributes(), ss.Scope().Name()})
			}
		}
	}
	return out
}

// under reports whether sp descends from the span with ID root in byID.
func under(byID map[pcommon.SpanID]storedSpan, sp storedSpan, root pcommon.SpanID) bool {
	for range len(byID) {
		if sp.ParentSpanID() == root {
			return true
		}
		parent, ok := byID[sp.ParentSpanID()]
		if !ok {
			return false
		}
		sp = parent
	}
	return false
}

func attr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

// TestJaeger sends traces to Jaeger v2 over each OTLP protocol and reads
// them back: the invocation spans in the X-Ray traces the emulator passed,
// the init span in the cold start's trace, the error status of a failing
// invocation. Metrics and logs go to the built-in sink (Jaeger answers 404
// for them).
func TestJaeger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	j := startJaeger(ctx, t)
	s := testSink(t)

	for _, tc := range []struct {
		name, protocol, endpoint string
	}{
		{"spans sent over http/protobuf are stored with their X-Ray parents, init span and error status", "http/protobuf", j.otlpHTTP},
		{"spans sent over http/json are stored with their X-Ray parents, init span and error status", "http/json", j.otlpHTTP},
		{"spans sent over grpc are stored with their X-Ray parents, init span and error status", "grpc", j.otlpGRPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			service := "slipstream-jaeger-" + strings.NewReplacer("/", "-").Replace(tc.protocol)
			env := startEnv(ctx, t, envConfig{function: service, env: []string{
				"SLIPSTREAM_OTLP_TRACES_PROTOCOL=" + tc.protocol,
				"SLIPSTREAM_OTLP_TRACES_ENDPOINT=" + tc.endpoint,
				"SLIPSTREAM_OTLP_METRICS_ENDPOINT=" + s.URL(sink.SignalMetrics),
				"SLIPSTREAM_OTLP_LOGS_ENDPOINT=" + s.URL(sink.SignalLogs),
			}})
			cold, failing, warm := newXRay(), newXRay(), newXRay()
			coldRes := env.invoke(ctx, `{"action":"succeed"}`, cold.header(), emulator.StatusSuccess)
			failRes := env.invoke(ctx, `{"action":"error","message":"requested failure"}`, failing.header(), emulator.StatusError)
			warmRes := env.invoke(ctx, `{"action":"succeed"}`, warm.header(), emulator.StatusSuccess)
			env.shutdown(ctx, true)
			if errs := env.warnings(); len(errs) > 0 {
				t.Errorf("the agent logged %d warnings or errors, first: %s", len(errs), errs[0])
			}

			for _, inv := range []struct {
				what     string
				x        xray
				res      emulator.InvokeResult
				cold     bool
				wantErr  bool
				wantInit bool
			}{
				{"cold start", cold, coldRes, true, false, true},
				{"failing invocation", failing, failRes, false, true, false},
				{"warm invocation", warm, warmRes, false, false, false},
			} {
				td := j.trace(ctx, t, inv.x.traceID)
				spans := spansOf(td)
				var server []storedSpan
				byID := map[pcommon.SpanID]storedSpan{}
				for _, sp := range spans {
					byID[sp.SpanID()] = sp
					if sp.Kind() == ptrace.SpanKindServer && sp.scope == platformScope {
						server = append(server, sp)
					}
				}
				if len(server) != 1 {
					t.Errorf("%s: %d SERVER spans in trace %s, want 1", inv.what, len(server), inv.x.traceID)
					continue
				}
				sv := server[0]
				checks := []struct{ name, got, want string }{
					{"span name", sv.Name(), service},
					{"trace ID", sv.TraceID().String(), inv.x.traceID},
					{"parent span ID (X-Ray Parent)", sv.ParentSpanID().String(), inv.x.parentID},
					{"faas.invocation_id", attr(sv.Attributes(), "faas.invocation_id"), inv.res.RequestID},
					{"service.name", attr(sv.resource, "service.name"), service},
					{"faas.coldstart", attr(sv.Attributes(), "faas.coldstart"), strconv.FormatBool(inv.cold)},
				}
				if inv.wantErr {
					checks = append(checks,
						struct{ name, got, want string }{"status", sv.Status().Code().String(), "Error"},
						struct{ name, got, want string }{"error.type", attr(sv.Attributes(), "error.type"), inv.res.ErrorType},
						struct{ name, got, want string }{"status description", sv.Status().Message(), inv.res.ErrorType})
				} else {
					checks = append(checks, struct{ name, got, want string }{"status", sv.Status().Code().String(), "Unset"})
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("%s: invocation span's %s = %q, want %q", inv.what, c.name, c.got, c.want)
					}
				}
				var inits []storedSpan
				var names []string
				function := 0
				for _, sp := range spans {
					if sp.scope != platformScope {
						// The function's own span (OpenTelemetry Go SDK in
						// the example, through the agent's receiver): nested
						// under the platform's invocation span.
						function++
						if !under(byID, sp, sv.SpanID()) {
							t.Errorf("%s: the function's span %s is not under the invocation span", inv.what, sp.Name())
						}
					}
					names = append(names, sp.Name())
					if sp.Name() == "init" {
						inits = append(inits, sp)
					}
					// Every span hangs inside the trace, or beside the
					// invocation span under Lambda's own segment (the X-Ray
					// Parent): the invocation span, the init span of a cold
					// start and the postRuntime span with the report's figures.
					if _, ok := byID[sp.ParentSpanID()]; !ok && sp.ParentSpanID() != sv.ParentSpanID() {
						t.Errorf("%s: span %s has parent %s, which is neither in the trace nor the X-Ray Parent", inv.what, sp.Name(), sp.ParentSpanID())
					}
				}
				switch {
				case inv.wantInit && len(inits) != 1:
					t.Errorf("%s: %d init spans in the cold start's trace, want 1 (spans: %v)", inv.what, len(inits), names)
				case inv.wantInit && inits[0].ParentSpanID() != sv.ParentSpanID():
					t.Errorf("%s: init span's parent is %s, want the invocation span's (%s): the init span sits beside it", inv.what, inits[0].ParentSpanID(), sv.ParentSpanID())
				case !inv.wantInit && len(inits) != 0:
					t.Errorf("%s: %d init spans, want none (spans: %v)", inv.what, len(inits), names)
				}
				if function == 0 {
					t.Errorf("%s: none of the function's own spans in the trace (spans: %v)", inv.what, names)
				}
				t.Logf("%s: trace %s holds %d spans (%d of the function): %v", inv.what, inv.x.traceID, len(spans), function, names)
			}
		})
	}
}
