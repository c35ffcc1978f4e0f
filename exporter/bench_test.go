package exporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// discardRT answers every request 200 with an empty body.
type discardRT struct{}

func (discardRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// BenchmarkExportInvocation measures the pipeline's work for one
// invocation (start, 5 log lines, runtimeDone, report) in end mode: intake,
// mapping (a fake mapper, or the exporter/signals one), queueing and one export of spans, logs and
// metrics through the real OTLP/HTTP exporters to a discarding transport.
func BenchmarkExportInvocation(b *testing.B) {
	cases := []struct {
		name, comp string
		mapper     func(signals.MapperOptions) (Mapper, error)
	}{
		{"fake-mapper/gzip", "gzip", newFakeMapper},
		{"fake-mapper/none", "none", newFakeMapper},
		{"signals-mapper/gzip", "gzip", realMapper},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig(b, "http://collector.invalid", config.FlushEnd)
			for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
				s.Compression = c.comp
			}
			cfg.FlushTimeout = 10 * time.Second
			cfg.SpillMaxBytes = 0
			cfg.ServiceName = "fn"
			h := newHarness(b, cfg, knobs{HTTPClient: &http.Client{Transport: discardRT{}}, NewMapper: c.mapper})
			h.run(b)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("bench-%d", i)
				h.p.Enqueue(context.Background(), invocation(id, 5, now))
				h.p.Invoke(ctx, invokeEvent(id, now.Add(time.Hour)))
			}
			b.StopTimer()
			if st := h.p.tally(); st.Traces.Dropped+st.Logs.Dropped != 0 || st.Traces.Sent == 0 {
				b.Fatalf("stats = %+v", st)
			}
		})
	}
}

// BenchmarkExportAsyncInvocation measures the pipeline's work for one
// invocation (INVOKE, then start, 5 log lines, runtimeDone, report) in
// async mode, the default's steady state: Invoke hands the INVOKE over and
// returns, the worker maps the events and sends full or BatchDelay-old
// batches (and metrics every MetricInterval) through the real OTLP/HTTP
// exporters to a discarding transport. Each iteration waits until the
// worker has mapped the report, so that the intake never overflows.
func BenchmarkExportAsyncInvocation(b *testing.B) {
	cfg := testConfig(b, "http://collector.invalid", config.FlushAsync)
	cfg.SpillMaxBytes = 0
	cfg.ServiceName = "fn"
	reported := make(chan struct{}, 1)
	newMapper := func(o signals.MapperOptions) (Mapper, error) {
		m, err := realMapper(o)
		return reportNotifier{m, reported}, err
	}
	h := newHarness(b, cfg, knobs{HTTPClient: &http.Client{Transport: discardRT{}}, NewMapper: newMapper})
	h.run(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		h.p.Invoke(ctx, invokeEvent(id, now.Add(time.Hour)))
		h.p.Enqueue(context.Background(), invocation(id, 5, now))
		<-reported
	}
	b.StopTimer()
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(10*time.Second), "spindown")); err != nil {
		b.Fatal(err)
	}
	if st := h.p.tally(); st.Traces.Dropped+st.Logs.Dropped != 0 || st.Traces.Sent == 0 {
		b.Fatalf("stats = %+v", st)
	}
}

// reportNotifier tells a channel each time its mapper has consumed a
// platform.report.
type reportNotifier struct {
	Mapper
	reported chan<- struct{}
}

func (r reportNotifier) Consume(ev telemetry.Event) {
	r.Mapper.Consume(ev)
	if ev.Type == telemetry.TypeReport {
		r.reported <- struct{}{}
	}
}
