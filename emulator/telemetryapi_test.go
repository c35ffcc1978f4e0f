//go:build e2e

package emulator

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestSubscriptionValidation(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Extensions = nil
	e, initDone := initWithProbe(t, cfg)
	p := register(t, e, "probe", "INVOKE")
	body := func(schema, typ string, items, size, timeout int, uri string) string {
		return fmt.Sprintf(`{"schemaVersion":%q,"types":[%s],"buffering":{"maxItems":%d,"maxBytes":%d,"timeoutMs":%d},"destination":{"protocol":"HTTP","URI":%q}}`,
			schema, typ, items, size, timeout, uri)
	}
	uri := fmt.Sprintf("http://sandbox.localdomain:%d/t", freePort(t)) // nothing listens there
	// Telemetry API buffering ranges and Telemetry API errors
	for _, tc := range []struct {
		name, body string
		status     int
		errType    string
	}{
		{"an unknown schema version is rejected", body("2021-01-01", `"platform"`, 1000, 262144, 25, uri), 400, "ValidationError"},
		{"no types is rejected", body("2025-01-29", ``, 1000, 262144, 25, uri), 400, "ValidationError"},
		{"an unknown type is rejected", body("2025-01-29", `"metrics"`, 1000, 262144, 25, uri), 400, "ValidationError"},
		{"maxItems below 1000 is rejected", body("2025-01-29", `"platform"`, 999, 262144, 25, uri), 400, "ValidationError"},
		{"maxItems above 10000 is rejected", body("2025-01-29", `"platform"`, 10001, 262144, 25, uri), 400, "ValidationError"},
		{"maxBytes below 262144 is rejected", body("2025-01-29", `"platform"`, 1000, 262143, 25, uri), 400, "ValidationError"},
		{"maxBytes above 1048576 is rejected", body("2025-01-29", `"platform"`, 1000, 1048577, 25, uri), 400, "ValidationError"},
		{"timeoutMs below 25 is rejected", body("2025-01-29", `"platform"`, 1000, 262144, 24, uri), 400, "ValidationError"},
		{"timeoutMs above 30000 is rejected", body("2025-01-29", `"platform"`, 1000, 262144, 30001, uri), 400, "ValidationError"},
		{"a destination outside the sandbox is rejected", body("2025-01-29", `"platform"`, 1000, 262144, 25, "http://127.0.0.1:4243/"), 400, "ValidationError"},
		{"a TCP destination is rejected by this emulator", `{"schemaVersion":"2025-01-29","types":["platform"],"destination":{"protocol":"TCP","port":4243}}`, 400, "ValidationError"},
		{"a body that is not JSON is rejected", `{`, 400, "ValidationError"},
		{"the oldest schema with default buffering is accepted", `{"schemaVersion":"2022-07-01","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox:` + strings.TrimPrefix(uri[:strings.LastIndex(uri, "/")], "http://sandbox.localdomain:") + `"}}`, 200, ""},
		{"the limits themselves are accepted", body("2022-12-13", `"platform","function"`, 10000, 1048576, 30000, uri), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := p.subscribe(tc.body)
			if st != tc.status || errorTypeOf(b) != tc.errType {
				t.Errorf("got %d %s, want %d %s", st, b, tc.status, tc.errType)
			}
		})
	}
	t.Run("a missing or unknown identifier is rejected", func(t *testing.T) {
		ok := body("2025-01-29", `"platform"`, 1000, 262144, 25, uri)
		st, _, b := apiCall(t, "PUT", p.base+"/2022-07-01/telemetry", nil, ok)
		if st != 403 || errorTypeOf(b) != "Extension.MissingExtensionIdentifier" {
			t.Errorf("missing: got %d %s", st, b)
		}
		st, _, b = apiCall(t, "PUT", p.base+"/2022-07-01/telemetry", map[string]string{hdrExtID: "x"}, ok)
		if st != 403 || errorTypeOf(b) != "Extension.InvalidExtensionIdentifier" {
			t.Errorf("unknown: got %d %s", st, b)
		}
	})
	p.next()
	if err := <-initDone; err != nil {
		t.Fatal(err)
	}
	t.Run("a subscription after init is closed", func(t *testing.T) {
		st, b := p.subscribe(body("2025-01-29", `"platform"`, 1000, 262144, 25, uri))
		if st != 403 || errorTypeOf(b) != "Telemetry.SubscriptionClosed" {
			t.Errorf("got %d %s", st, b)
		}
	})
}

func TestTelemetryNotSupported(t *testing.T) {
	t.Run("the classic mode answers 202 Telemetry.NotSupported and the floor extension keeps working", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.TelemetrySupported = false
		e := start(t, cfg)
		st, _, b := apiCall(t, "PUT", "http://"+e.RuntimeAPI()+"/2022-07-01/telemetry", nil, `{}`)
		if st != 202 || errorTypeOf(b) != "Telemetry.NotSupported" {
			t.Errorf("got %d %s", st, b)
		}
		if res, err := e.Invoke(t.Context(), nil, InvokeOptions{}); err != nil || res.Status != StatusSuccess {
			t.Errorf("invoke: %+v %v", res, err)
		}
		if res := shutdown(t, e); len(res.Killed) != 0 {
			t.Errorf("killed %v", res.Killed)
		}
	})
}

func TestTelemetrySequence(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Freeze = false
	c := newCollector(t, nil)
	e, initDone := initWithProbe(t, cfg)
	p := register(t, e, "probe", "INVOKE", "SHUTDOWN")
	if st, b := p.subscribe(subscriptionBody(c.port(), "platform", "function", "extension")); st != 200 || string(b) != `"OK"` {
		t.Fatalf("subscribe: %d %s", st, b)
	}
	next := p.next()
	if err := <-initDone; err != nil {
		t.Fatal(err)
	}
	initEvents := c.until(t, typeIs(TypeInitReport, ""))
	t.Run("init events are replayed from initStart and end with initReport", func(t *testing.T) {
		// Telemetry API: events before the subscription are replayed to it.
		ts := types(initEvents)
		if ts[0] != TypeInitStart {
			t.Errorf("first event %s", ts[0])
		}
		iSub, iRt := slices.Index(ts, TypeTelemetrySubscription), slices.Index(ts, TypeInitRuntimeDone)
		if iSub < 0 || iRt < 0 || slices.Index(ts, TypeExtension) < 0 {
			t.Errorf("missing init events: %v", ts)
		}
		start := initEvents[0]
		if start.field("phase") != "init" || start.field("functionName") != "test-fn" || start.field("initializationType") != "on-demand" || start.field("instanceMaxMemory") != "134217728" {
			t.Errorf("initStart %s", start.Record)
		}
	})

	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for i, reqID := range []string{"inv-1", "inv-2"} {
		done := make(chan InvokeResult, 1)
		go func() {
			res, _ := e.Invoke(t.Context(), []byte(`{"action":"log","lines":3}`), InvokeOptions{RequestID: reqID, TraceHeader: trace})
			done <- res
		}()
		if ev := <-next; ev.RequestID != reqID {
			t.Fatalf("INVOKE %+v", ev)
		}
		upToDone := c.until(t, typeIs(TypeRuntimeDone, reqID))
		t.Run(fmt.Sprintf("invoke %d: start carries tracing with a fresh span ID and runtimeDone its metrics", i+1), func(t *testing.T) {
			ts := types(upToDone)
			if slices.Contains(ts, TypeReport) && i == 0 {
				t.Errorf("a report before the extension called next: %v", ts)
			}
			st := upToDone[slices.Index(ts, TypeStart)]
			var rec startRecord
			json.Unmarshal(st.Record, &rec)
			if rec.RequestID != reqID || rec.Tracing == nil || rec.Tracing.Value != trace || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(rec.Tracing.SpanID) {
				t.Errorf("start %s", st.Record)
			}
			// The function's lines written before its next precede runtimeDone.
			n := 0
			for _, ev := range upToDone {
				var line string
				if ev.Type == TypeFunction && json.Unmarshal(ev.Record, &line) == nil && strings.HasSuffix(line, " of "+reqID) {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d of 3 function lines before runtimeDone: %v", n, ts)
			}
			var rd runtimeDoneRecord
			json.Unmarshal(upToDone[len(upToDone)-1].Record, &rd)
			if rd.Status != StatusSuccess || rd.Metrics.ProducedBytes == 0 || len(rd.Spans) != 2 || rd.Spans[0].Name != "responseLatency" || rd.Spans[1].Name != "responseDuration" || rd.Tracing == nil {
				t.Errorf("runtimeDone %s", upToDone[len(upToDone)-1].Record)
			}
		})
		// The report is produced only once the extension calls next (Telemetry API).
		select {
		case res := <-done:
			t.Fatalf("invoke ended before the extension called next: %+v", res)
		default:
		}
		next = p.next()
		<-done
		upToReport := c.until(t, typeIs(TypeReport, reqID))
		t.Run(fmt.Sprintf("invoke %d: the report follows the extension's next with billed and memory metrics", i+1), func(t *testing.T) {
			var rep reportRecord
			json.Unmarshal(upToReport[len(upToReport)-1].Record, &rep)
			m := rep.Metrics
			if rep.Status != StatusSuccess || m.MemorySizeMB != 128 || m.MaxMemoryUsedMB == 0 || float64(m.BilledDurationMs) < m.DurationMs || float64(m.BilledDurationMs) >= m.DurationMs+1 {
				t.Errorf("report %s", upToReport[len(upToReport)-1].Record)
			}
			if (m.InitDurationMs != nil) != (i == 0) {
				t.Errorf("initDurationMs on invoke %d: %v", i+1, m.InitDurationMs)
			}
		})
	}
	shutdown(t, e)
	// Function lines arrive as function records, one per line (Telemetry schema).
	for len(c.events) > 0 {
		ev := <-c.events
		initEvents = append(initEvents, ev)
	}
	t.Run("function and extension output lines are function and extension records", func(t *testing.T) {
		seen := map[string]bool{}
		for _, ev := range initEvents {
			var s string
			if json.Unmarshal(ev.Record, &s) == nil {
				seen[ev.Type+":"+strings.Fields(s)[0]] = true
			}
		}
		if !seen["function:fn"] {
			t.Errorf("no function record for the init line: %v", seen)
		}
	})
}

func TestTelemetryDelivery(t *testing.T) {
	t.Run("a slow subscriber gets one POST at a time and a logsDropped for the overflow", func(t *testing.T) {
		// Telemetry API: one batch in flight; overflow dropped with platform.logsDropped.
		cfg := baseConfig(t)
		cfg.Extensions, cfg.Freeze, cfg.TelemetryBufferBytes = nil, false, 8192
		const lines = 2000
		allLines := make(chan struct{})
		n := 0
		cfg.OnEvent = func(ev Event) {
			if ev.Type == TypeFunction && strings.Contains(string(ev.JSON), `"line `) {
				if n++; n == lines {
					close(allLines)
				}
			}
		}
		gate := make(chan struct{})
		c := newCollector(t, gate)
		e, initDone := initWithProbe(t, cfg)
		select {
		case err := <-initDone:
			t.Fatalf("init ended early: %v", err)
		default:
		}
		p := register(t, e, "probe", "INVOKE")
		if st, b := p.subscribe(subscriptionBody(c.port(), "platform", "function")); st != 200 {
			t.Fatalf("subscribe %d %s", st, b)
		}
		next := p.next()
		if err := <-initDone; err != nil {
			t.Fatal(err)
		}
		<-c.arrived // the init batch is in flight and held by the gate
		done := make(chan InvokeResult, 1)
		go func() {
			res, _ := e.Invoke(t.Context(), []byte(fmt.Sprintf(`{"action":"log","lines":%d}`, lines)), InvokeOptions{RequestID: "flood"})
			done <- res
		}()
		<-next
		p.next() // ends the invoke; the SHUTDOWN it would get is not needed
		<-done
		<-allLines
		close(gate)
		got := c.until(t, typeIs(TypeLogsDropped, ""))
		var rec logsDroppedRecord
		json.Unmarshal(got[len(got)-1].Record, &rec)
		if rec.DroppedRecords == 0 || rec.DroppedBytes == 0 || rec.Reason == "" {
			t.Errorf("logsDropped %s", got[len(got)-1].Record)
		}
		if !slices.ContainsFunc(got, typeIs(TypeReport, "flood")) { // platform events are never dropped
			c.until(t, typeIs(TypeReport, "flood"))
		}
		if m := c.maxFl.Load(); m != 1 {
			t.Errorf("%d POSTs in flight at once", m)
		}
		st := e.Stats()
		if st.DroppedRecords == 0 || st.LogsDroppedEvents == 0 {
			t.Errorf("stats %+v", st)
		}
		shutdown(t, e)
	})

	t.Run("a failed POST is retried with backoff and then delivered", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Extensions, cfg.Freeze = nil, false
		c := newCollector(t, nil)
		c.fail.Store(2)
		e, initDone := initWithProbe(t, cfg)
		p := register(t, e, "probe", "INVOKE")
		if st, b := p.subscribe(subscriptionBody(c.port(), "platform")); st != 200 {
			t.Fatalf("subscribe %d %s", st, b)
		}
		p.next()
		if err := <-initDone; err != nil {
			t.Fatal(err)
		}
		got := c.until(t, typeIs(TypeInitStart, ""))
		if len(got) != 1 {
			t.Errorf("initStart is not first: %v", types(got))
		}
		if st := e.Stats(); st.Retries < 2 || st.FailedBatches != 0 {
			t.Errorf("stats %+v", st)
		}
		shutdown(t, e)
	})
}

func TestTelemetryWithFreeze(t *testing.T) {
	t.Run("the last report produced before the freeze is delivered after the thaw at shutdown", func(t *testing.T) {
		// Lambda lifecycle freeze and Telemetry API: the report of the last invoke is delivered on thaw.
		cfg := baseConfig(t)
		c := newCollector(t, nil)
		e, initDone := initWithProbe(t, cfg)
		p := register(t, e, "probe", "INVOKE")
		if st, b := p.subscribe(subscriptionBody(c.port(), "platform")); st != 200 {
			t.Fatalf("subscribe %d %s", st, b)
		}
		next := p.next()
		if err := <-initDone; err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Invoke(t.Context(), nil, InvokeOptions{RequestID: "last"})
		}()
		<-next
		p.next()
		<-done
		for _, ps := range e.Processes() {
			if s := procState(ps.PID); s != 'T' {
				t.Errorf("%s in state %q after the invoke", ps.Name, s)
			}
		}
		shutdown(t, e)
		got := c.until(t, typeIs(TypeReport, "last"))
		if !slices.ContainsFunc(got, typeIs(TypeRuntimeDone, "last")) {
			t.Errorf("runtimeDone missing before the report: %v", types(got))
		}
	})
}
