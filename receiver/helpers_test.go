package receiver

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// fakeSink records what it is given; full makes it refuse everything.
type fakeSink struct {
	mu      sync.Mutex
	full    bool
	traces  []*coltracepb.ExportTraceServiceRequest
	metrics []*colmetricpb.ExportMetricsServiceRequest
	logs    []*collogspb.ExportLogsServiceRequest
}

func (s *fakeSink) ExportTraces(_ context.Context, r *coltracepb.ExportTraceServiceRequest) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return Result{Rejected: int64(countSpans(r))}
	}
	s.traces = append(s.traces, r)
	return Result{}
}

func (s *fakeSink) ExportMetrics(_ context.Context, r *colmetricpb.ExportMetricsServiceRequest) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return Result{Rejected: 4}
	}
	s.metrics = append(s.metrics, r)
	return Result{}
}

func (s *fakeSink) ExportLogs(_ context.Context, r *collogspb.ExportLogsServiceRequest) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return Result{Rejected: 2, Message: "buffer full"}
	}
	s.logs = append(s.logs, r)
	return Result{}
}

func (s *fakeSink) received() (traces, metrics, logs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.traces), len(s.metrics), len(s.logs)
}

func countSpans(r *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range r.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// fixture reads testdata/<name>.json (OTLP/JSON from the specification's
// examples) into m.
func fixture(t testing.TB, name string, m proto.Message) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if m != nil {
		if err := UnmarshalJSON(b, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

// start runs a receiver on free loopback ports.
func start(t *testing.T, sink Sink, cfg Config) *Receiver {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	r := New(cfg)
	if herr, gerr := r.Listen(); herr != nil || gerr != nil {
		t.Fatal(herr, gerr)
	}
	r.Serve(sink)
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return r
}
