package signals

import (
	"testing"

	"go.opentelemetry.io/otel/codes"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// An invocation SHUTDOWN cuts counts where users look for it: a timeout
// in faas.timeouts, any other reason in faas.errors.
func TestShutdownReasonDecidesTheOutcome(t *testing.T) {
	tests := []struct {
		name                  string
		reason                string
		wantTimeouts, wantErr float64
		wantOOM               float64
	}{
		{"reason timeout counts as a timeout", "timeout", 1, 0, 0},
		{"reason TIMEOUT (the documented casing) counts as a timeout", "TIMEOUT", 1, 0, 0},
		{"reason failure counts as an error and out of memory", "failure", 0, 1, 1},
		{"reason spindown counts as an error", "spindown", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			mm.consume(invocationEvents("r1", 0)[0])
			mm.Shutdown(tt.reason, at(3000))
			if got := mm.sum(t, "faas.timeouts"); got != tt.wantTimeouts {
				t.Errorf("faas.timeouts = %v, want %v", got, tt.wantTimeouts)
			}
			if got := mm.sum(t, "faas.errors"); got != tt.wantErr {
				t.Errorf("faas.errors = %v, want %v", got, tt.wantErr)
			}
			if got := mm.sum(t, "slipstream.out_of_memory_invocations"); got != tt.wantOOM {
				t.Errorf("slipstream.out_of_memory_invocations = %v, want %v", got, tt.wantOOM)
			}
			srv := serverSpans(mm.spans)
			if len(srv) != 1 || srv[0].Status().Code != codes.Error {
				t.Fatalf("want one invocation span with status Error, got %d", len(srv))
			}
			if v, _ := attrOf(srv[0], "error.type"); v.AsString() != tt.reason {
				t.Errorf("error.type = %q, want the reason %q", v.AsString(), tt.reason)
			}
		})
	}
}

// An out-of-memory guess made at SHUTDOWN (reason failure, neither
// runtimeDone nor report) is settled by a runtimeDone or report that
// arrives afterwards: counters cannot be decreased, so a contradicted
// guess is counted in slipstream.out_of_memory_retractions.
func TestLateEventsSettleTheOutOfMemoryGuess(t *testing.T) {
	rd := func(st telemetry.Status, et string) telemetry.Event {
		return telemetry.Event{Time: at(480), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: "r1", Status: st, ErrorType: et,
			Metrics: &telemetry.RuntimeDoneMetrics{DurationMs: 480}}}
	}
	rep := func(st telemetry.Status, et string, used int64) telemetry.Event {
		return telemetry.Event{Time: at(482), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: "r1", Status: st, ErrorType: et,
			Metrics: telemetry.ReportMetrics{DurationMs: 481, BilledDurationMs: i64(482), MemorySizeMB: i64(128), MaxMemoryUsedMB: i64(used)}}}
	}
	tests := []struct {
		name          string
		reason        string
		late          []telemetry.Event
		wantOOM       float64
		wantRetracted float64
		wantOOMAttr   bool // slipstream.out_of_memory on the postRuntime span
	}{
		{"a late report of a crash that was not out of memory retracts the guess", "failure",
			[]telemetry.Event{rep(telemetry.StatusError, "Runtime.ExitError", 60)}, 1, 1, false},
		{"a late report that confirms it counts once", "failure",
			[]telemetry.Event{rep(telemetry.StatusError, "Runtime.OutOfMemory", 128)}, 1, 0, true},
		{"a late successful runtimeDone retracts the guess, and the report does not retract it twice", "failure",
			[]telemetry.Event{rd(telemetry.StatusSuccess, ""), rep(telemetry.StatusSuccess, "", 60)}, 1, 1, false},
		{"a late runtimeDone with a crash leaves the verdict to the report, which finds memory full", "failure",
			[]telemetry.Event{rd(telemetry.StatusError, "Runtime.ExitError"), rep(telemetry.StatusError, "Runtime.ExitError", 128)}, 1, 0, true},
		{"a late runtimeDone delivered twice is mapped once", "failure",
			[]telemetry.Event{rd(telemetry.StatusTimeout, "Sandbox.Timedout"), rd(telemetry.StatusTimeout, "Sandbox.Timedout")}, 1, 1, false},
		{"without a guess (reason spindown) a late out-of-memory report counts", "spindown",
			[]telemetry.Event{rep(telemetry.StatusError, "Runtime.OutOfMemory", 128)}, 1, 0, true},
		{"without a guess nothing is retracted", "spindown",
			[]telemetry.Event{rep(telemetry.StatusError, "Runtime.ExitError", 60)}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			mm.consume(invocationEvents("r1", 0)[0])
			mm.Shutdown(tt.reason, at(500))
			mm.consume(tt.late...)
			if got := mm.sum(t, "slipstream.out_of_memory_invocations"); got != tt.wantOOM {
				t.Errorf("slipstream.out_of_memory_invocations = %v, want %v", got, tt.wantOOM)
			}
			if got := mm.sum(t, metricOOMRetracted); got != tt.wantRetracted {
				t.Errorf("%s = %v, want %v", metricOOMRetracted, got, tt.wantRetracted)
			}
			if n := len(serverSpans(mm.spans)); n != 1 {
				t.Errorf("%d invocation spans, want 1", n)
			}
			if got := mm.sum(t, "faas.errors") + mm.sum(t, "faas.invocations") + mm.sum(t, "faas.timeouts"); got != 1 {
				t.Errorf("outcomes counted %v times, want once (at SHUTDOWN)", got)
			}
			if pr := spanNamed(mm.spans, spanPostRuntime); pr != nil {
				if got := boolAttr(attrOf(pr, "slipstream.out_of_memory")); got != tt.wantOOMAttr {
					t.Errorf("postRuntime slipstream.out_of_memory = %v, want %v", got, tt.wantOOMAttr)
				}
			}
		})
	}
}

// Failed and timed-out inits and restores, and failed extensions, are
// counted in slipstream.init_errors by phase and error.type, and give the
// init (restore) span status Error.
func TestInitFailuresAreCountedAndMarked(t *testing.T) {
	initRD := func(ph telemetry.InitPhase, st telemetry.Status, et string) telemetry.Event {
		return telemetry.Event{Time: at(136), Type: telemetry.TypeInitRuntimeDone, Record: &telemetry.InitRuntimeDone{
			InitializationType: telemetry.InitOnDemand, Phase: ph, Status: st, ErrorType: et}}
	}
	initRep := func(ph telemetry.InitPhase, st telemetry.Status, et string) telemetry.Event {
		return telemetry.Event{Time: at(140), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{
			InitializationType: telemetry.InitOnDemand, Phase: ph, Status: st, ErrorType: et, Metrics: telemetry.DurationMetrics{DurationMs: 140}}}
	}
	initStart := func(ph telemetry.InitPhase) telemetry.Event {
		return telemetry.Event{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{InitializationType: telemetry.InitOnDemand, Phase: ph}}
	}
	ext := func(ms int, name, state, et string) telemetry.Event {
		return telemetry.Event{Time: at(ms), Type: telemetry.TypeExtension, Record: &telemetry.Extension{Name: name, State: state, ErrorType: et}}
	}
	tests := []struct {
		name      string
		cfg       func(*config.Config)
		evs       []telemetry.Event
		want      map[[2]string]int64 // {phase, error.type} -> count
		span      string              // span expected with status Error ("" for none)
		spanError string
	}{
		{"an import error in initRuntimeDone and initReport counts once", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInit), initRD(telemetry.PhaseInit, telemetry.StatusError, "Runtime.ImportModuleError"),
				initRep(telemetry.PhaseInit, telemetry.StatusError, "Runtime.ImportModuleError")},
			map[[2]string]int64{{"init", "Runtime.ImportModuleError"}: 1}, spanInit, "Runtime.ImportModuleError"},
		{"a timed-out init without errorType counts as timeout", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInit), initRep(telemetry.PhaseInit, telemetry.StatusTimeout, "")},
			map[[2]string]int64{{"init", "timeout"}: 1}, spanInit, "timeout"},
		{"a suppressed init that fails counts under phase invoke", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInvoke), initRD(telemetry.PhaseInvoke, telemetry.StatusFailure, "Runtime.ExitError")},
			map[[2]string]int64{{"invoke", "Runtime.ExitError"}: 1}, spanInit, "Runtime.ExitError"},
		{"a failed restore counts under phase restore", func(c *config.Config) { c.InitType = string(telemetry.InitSnapStart) },
			[]telemetry.Event{
				{Time: at(0), Type: telemetry.TypeRestoreStart, Record: &telemetry.RestoreStart{}},
				{Time: at(90), Type: telemetry.TypeRestoreRuntimeDone, Record: &telemetry.RestoreRuntimeDone{Status: telemetry.StatusFailure, ErrorType: "Runtime.RestoreHookError"}},
				{Time: at(91), Type: telemetry.TypeRestoreReport, Record: &telemetry.RestoreReport{Status: telemetry.StatusFailure, ErrorType: "Runtime.RestoreHookError"}},
			},
			map[[2]string]int64{{"restore", "Runtime.RestoreHookError"}: 1}, spanRestore, "Runtime.RestoreHookError"},
		{"a crashed extension counts and fails the init span", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInit), ext(40, "other-ext", "Failed", "Extension.Crash"),
				initRep(telemetry.PhaseInit, telemetry.StatusSuccess, "")},
			map[[2]string]int64{{"extension", "Extension.Crash"}: 1}, spanInit, "Extension.Crash"},
		{"a failed extension without errorType counts its state", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInit), ext(40, "other-ext", "Failed", ""), ext(40, "other-ext", "Failed", "")},
			map[[2]string]int64{{"extension", "Failed"}: 1}, spanInit, "Failed"},
		{"a ready extension and a successful init count nothing", nil,
			[]telemetry.Event{initStart(telemetry.PhaseInit), ext(40, "slipstream", "Ready", ""), initRep(telemetry.PhaseInit, telemetry.StatusSuccess, "")},
			map[[2]string]int64{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			mm := newMeteredMapper(t, cfg)
			mm.consume(tt.evs...)
			mm.Shutdown("spindown", at(1000))
			var total int64
			for k, n := range tt.want {
				total += n
				if got := mm.sumWhere(t, metricInitErrors, map[string]string{string(attrInitPhase): k[0], "error.type": k[1]}); got != n {
					t.Errorf("%s{%s, %s} = %d, want %d", metricInitErrors, k[0], k[1], got, n)
				}
			}
			if got := mm.sumWhere(t, metricInitErrors, nil); got != total {
				t.Errorf("%s total = %d, want %d", metricInitErrors, got, total)
			}
			for _, s := range mm.spans {
				failed := s.Status().Code == codes.Error
				if want := s.Name() == tt.span; failed != want {
					t.Errorf("span %s: status %v, want Error %v", s.Name(), s.Status().Code, want)
				}
				if failed {
					if v, _ := attrOf(s, "error.type"); v.AsString() != tt.spanError {
						t.Errorf("span %s: error.type = %q, want %q", s.Name(), v.AsString(), tt.spanError)
					}
				}
			}
		})
	}
}
