package exporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
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
		mapper     func(MapperOptions) (Mapper, error)
	}{
		{"fake-mapper/gzip", "gzip", newFakeMapper},
		{"fake-mapper/none", "none", newFakeMapper},
		{"signals-mapper/gzip", "gzip", SignalsMapper(nil)},
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
			h := newHarness(b, cfg, Options{HTTPClient: &http.Client{Transport: discardRT{}}, NewMapper: c.mapper})
			h.run(b)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("bench-%d", i)
				h.p.Enqueue(invocation(id, 5, now))
				h.p.Invoke(ctx, invokeEvent(id, now.Add(time.Hour)))
			}
			b.StopTimer()
			if st := h.p.Stats(); st.Traces.Dropped+st.Logs.Dropped != 0 || st.Traces.Sent == 0 {
				b.Fatalf("stats = %+v", st)
			}
		})
	}
}
