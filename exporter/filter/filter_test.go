package filter

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

func newFilter(t *testing.T, env map[string]string) *Filter {
	t.Helper()
	cfg := config.Load(func(k string) string { return env[k] })
	if len(cfg.Problems) > 0 {
		t.Fatalf("problems: %v", cfg.Problems)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// batch decodes Telemetry API events as the listener does.
func batch(t *testing.T, events ...string) []telemetry.Event {
	t.Helper()
	evs, _, err := telemetry.DecodeBatch([]byte("[" + strings.Join(events, ",") + "]"))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func fn(record string) string {
	return `{"time":"2026-01-02T03:04:05Z","type":"function","record":` + record + `}`
}

func start(reqID, tracing string) string {
	tr := ""
	if tracing != "" {
		tr = `,"tracing":{"type":"X-Amzn-Trace-Id","value":"` + tracing + `"}`
	}
	return `{"time":"2026-01-02T03:04:05Z","type":"platform.start","record":{"requestId":"` + reqID + `"` + tr + `}}`
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// texts returns the text or, for JSON lines, the JSON encoding of every
// log record kept: all that would reach the queue or the spill file.
func texts(evs []telemetry.Event) []string {
	var out []string
	for _, ev := range evs {
		if l, ok := ev.Record.(*telemetry.Log); ok {
			if l.JSON {
				b, _ := json.Marshal(l)
				out = append(out, string(b))
			} else {
				out = append(out, l.Text)
			}
		} else if ev.Record == nil {
			out = append(out, string(ev.Raw))
		}
	}
	return out
}

func TestMinSeverity(t *testing.T) {
	f := newFilter(t, map[string]string{"SLIPSTREAM_LOGS_MIN_SEVERITY": "warn"})
	evs := f.Events(batch(t,
		fn(quote("2026-01-02T03:04:05.000Z\t8f9d2c4e-7b1a-4c3d-9e8f-0a1b2c3d4e5f\tINFO\tloading")),
		fn(quote("2026-01-02T03:04:05.000Z\t8f9d2c4e-7b1a-4c3d-9e8f-0a1b2c3d4e5f\tERROR\tfailed")),
		fn(`{"level":"DEBUG","message":"cache miss"}`),
		fn(`{"level":"WARN","message":"slow"}`),
		fn(quote("[DEBUG] dumping state")),
		fn(quote("    at frame.of.the.debug(line)")),
		fn(quote("a line with no level")),
		start("8f9d2c4e-7b1a-4c3d-9e8f-0a1b2c3d4e5f", ""),
	))
	got := texts(evs)
	want := []string{"ERROR\tfailed", `"WARN"`, "a line with no level"}
	if len(got) != len(want) {
		t.Fatalf("kept %d log records %q, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("record %d = %q, want it to hold %q", i, got[i], w)
		}
	}
	if len(evs) != 4 {
		t.Errorf("kept %d events, want the 3 log lines and platform.start", len(evs))
	}
	if n := f.Totals().BelowSeverity; n != 3 {
		t.Errorf("BelowSeverity = %d, want 3 (the continuation line is not counted)", n)
	}
}

func TestLogRedaction(t *testing.T) {
	f := newFilter(t, nil)
	t.Run("a text line is redacted", func(t *testing.T) {
		evs := f.Events(batch(t, fn(quote("creds "+accessKeyID+" aws_secret_access_key="+secretKey))))
		got := texts(evs)[0]
		if strings.Contains(got, accessKeyID) || strings.Contains(got, secretKey) {
			t.Errorf("text = %q", got)
		}
	})
	t.Run("a JSON line loses its text and has message and fields redacted", func(t *testing.T) {
		line := `{"level":"ERROR","message":"login with Bearer ` + bearer + `","password":"hunter2","errorType":"AuthError","errorMessage":"bad url postgres://u:` + urlPassword + `@h/db","stackTrace":["at ` + jwt + `"]}`
		evs := f.Events(batch(t, fn(quote(line))))
		l := evs[0].Record.(*telemetry.Log)
		if l.Text != "" {
			t.Errorf("Text = %q, want empty (a second copy of the line)", l.Text)
		}
		got := texts(evs)[0]
		for _, s := range []string{bearer, "hunter2", urlPassword, jwt} {
			if strings.Contains(got, s) {
				t.Errorf("record %s still holds %q", got, s)
			}
		}
		if !strings.Contains(got, `"errorType":"\"AuthError\""`) && !strings.Contains(got, "AuthError") {
			t.Errorf("record %s lost errorType", got)
		}
	})
	t.Run("a private key written line by line is removed up to its end", func(t *testing.T) {
		evs := f.Events(batch(t,
			fn(quote("loaded -----BEGIN RSA PRIVATE KEY-----")),
			fn(quote(keyBody)),
			fn(quote(keyBody)),
			fn(quote("-----END RSA PRIVATE KEY-----")),
			fn(quote("next line")),
		))
		got := texts(evs)
		if len(got) != 2 || got[0] != "loaded [REDACTED]" || got[1] != "next line" {
			t.Errorf("kept %q, want the redacted BEGIN line and the next line", got)
		}
	})
	t.Run("a raw event is redacted and stays JSON", func(t *testing.T) {
		evs := f.Events(batch(t, `{"time":"2026-01-02T03:04:05Z","type":"platform.future","record":{"note":"key `+accessKeyID+`","token":"abc"}}`))
		raw := string(evs[0].Raw)
		if strings.Contains(raw, accessKeyID) || strings.Contains(raw, `"abc"`) || !json.Valid(evs[0].Raw) {
			t.Errorf("Raw = %s", raw)
		}
	})
}

func TestFieldLists(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		kept, gone []string
	}{
		{"an allow list keeps only its fields", map[string]string{"SLIPSTREAM_LOG_FIELDS_ALLOW": "user_*,order"}, []string{"user_id", "user_name", "order"}, []string{"email", "ip"}},
		{"a deny list removes its fields", map[string]string{"SLIPSTREAM_LOG_FIELDS_DENY": "email,i?"}, []string{"user_id", "user_name", "order"}, []string{"email", "ip"}},
		{"deny applies after allow", map[string]string{"SLIPSTREAM_LOG_FIELDS_ALLOW": "user_*,email", "SLIPSTREAM_LOG_FIELDS_DENY": "user_name"}, []string{"user_id", "email"}, []string{"user_name", "order", "ip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter(t, tt.env)
			evs := f.Events(batch(t, fn(`{"message":"m","user_id":1,"user_name":"a","order":2,"email":"e@x","ip":"1.2.3.4"}`)))
			l := evs[0].Record.(*telemetry.Log)
			for _, k := range tt.kept {
				if _, ok := l.Fields[k]; !ok {
					t.Errorf("field %s removed", k)
				}
			}
			for _, k := range tt.gone {
				if _, ok := l.Fields[k]; ok {
					t.Errorf("field %s kept", k)
				}
			}
			if l.Message != "m" {
				t.Errorf("Message = %q", l.Message)
			}
		})
	}
}

func TestSamplerMatchesTheSDK(t *testing.T) {
	for _, ratio := range []float64{0, 0.001, 0.1, 0.5, 0.9, 1} {
		t.Run(fmt.Sprintf("ratio %g decides as TraceIDRatioBased", ratio), func(t *testing.T) {
			s := newSampler(ratio)
			sdk := sdktrace.TraceIDRatioBased(ratio)
			for i := range 2000 {
				var id trace.TraceID
				binary.BigEndian.PutUint64(id[:8], uint64(i)*0x9e3779b97f4a7c15)
				binary.BigEndian.PutUint64(id[8:], uint64(i+1)*0xbf58476d1ce4e5b9)
				want := sdk.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id}).Decision == sdktrace.RecordAndSample
				if got := s.keep(id, true, ""); got != want {
					t.Fatalf("trace %s: keep = %v, SDK = %v", id, got, want)
				}
			}
		})
	}
}

func TestSamplingKeepsAnInvocationTogether(t *testing.T) {
	f := newFilter(t, map[string]string{"SLIPSTREAM_TRACE_SAMPLE_RATIO": "0.5"})
	// Find one request ID the sampler keeps and one it drops.
	var kept, dropped string
	for i := 0; kept == "" || dropped == ""; i++ {
		id := fmt.Sprintf("00000000-0000-4000-%04x-%012x", (i*40503)&0xffff, i)
		if f.KeepInvocation(trace.TraceID{}, false, id) {
			kept = cmpOr(kept, id)
		} else {
			dropped = cmpOr(dropped, id)
		}
	}
	evs := f.Events(batch(t,
		start(kept, ""),
		fn(quote("kept line")),
		fn(quote("    continued")),
		start(dropped, ""),
		fn(quote("dropped line")),
		fn(quote("    continued")),
		fn(`{"requestId":"`+kept+`","message":"kept by its request ID"}`),
	))
	got := texts(evs)
	want := []string{"kept line", "    continued", `"RequestID":"` + kept + `"`}
	if len(got) != len(want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
	if len(evs) != 5 {
		t.Errorf("kept %d events, want both platform.start events and 3 lines", len(evs))
	}

	t.Run("the X-Ray root decides when there is one", func(t *testing.T) {
		hdr := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		tid, _ := trace.TraceIDFromHex("5759e988bd862e3fe1be46a994272793")
		want := f.KeepTrace(tid)
		f.Invoke(dropped, hdr)
		if got := f.keepRequest(dropped); got != want {
			t.Errorf("decision after INVOKE = %v, want the trace's %v", got, want)
		}
		if f.KeepInvocation(tid, true, dropped) != want {
			t.Error("the mapper's decision differs from the trace's")
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestNothingConfiguredLeavesEventsAlone(t *testing.T) {
	f := newFilter(t, map[string]string{"SLIPSTREAM_REDACT_DEFAULTS": "false"})
	in := batch(t, fn(quote("key "+accessKeyID)))
	out := f.Events(in)
	if texts(out)[0] != "key "+accessKeyID {
		t.Errorf("text = %q", texts(out)[0])
	}
}
