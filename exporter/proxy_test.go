package exporter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpproxy"

	"github.com/slipstream-otel/slipstream/config"
)

func TestProxyChoice(t *testing.T) {
	std := &httpproxy.Config{HTTPSProxy: "http://function-proxy:3128", HTTPProxy: "http://function-proxy:3128"}
	tests := []struct {
		name   string
		otlp   config.OTLP
		target string
		want   string // proxy host, "" = direct
	}{
		{"without Slipstream settings the function's proxy applies", config.OTLP{}, "https://collector.example.com/v1/traces", "function-proxy:3128"},
		{"SLIPSTREAM_HTTPS_PROXY wins over the function's proxy", config.OTLP{HTTPSProxy: "http://ours:8080"}, "https://collector.example.com/v1/traces", "ours:8080"},
		{"SLIPSTREAM_HTTPS_PROXY applies to http endpoints too", config.OTLP{HTTPSProxy: "http://ours:8080"}, "http://collector.example.com/v1/traces", "ours:8080"},
		{"none disables proxying", config.OTLP{HTTPSProxy: config.ProxyNone}, "https://collector.example.com/v1/traces", ""},
		{"SLIPSTREAM_NO_PROXY wins over NO_PROXY", config.OTLP{HTTPSProxy: "http://ours:8080", NoProxy: ".example.com"}, "https://collector.example.com/v1/traces", ""},
		{"a loopback collector is reached directly", config.OTLP{HTTPSProxy: "http://ours:8080"}, "http://127.0.0.1:4318/v1/traces", ""},
		{"localhost is reached directly", config.OTLP{HTTPSProxy: "http://ours:8080"}, "http://localhost:4318/v1/traces", ""},
		{"the container credentials endpoint is reached directly", config.OTLP{HTTPSProxy: "http://ours:8080"}, "http://169.254.170.2/v2/credentials", ""},
		{"an IPv6 link-local address is reached directly", config.OTLP{HTTPSProxy: "http://ours:8080"}, "http://[fe80::1]:4318/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := proxyFor(tt.otlp, std)
			got := ""
			if f != nil {
				req, _ := http.NewRequest(http.MethodPost, tt.target, nil)
				u, err := f(req)
				if err != nil {
					t.Fatal(err)
				}
				if u != nil {
					got = u.Host
				}
			}
			if got != tt.want {
				t.Errorf("proxy = %q, want %q", got, tt.want)
			}
		})
	}
}

// The exporters' own transport sends through SLIPSTREAM_HTTPS_PROXY: a
// fake proxy on 127.0.0.1 receives the request for a collector that has
// no address.
func TestExporterRequestsGoThroughTheProxy(t *testing.T) {
	var seen atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host == "collector.invalid" && r.URL.Path == "/v1/traces" {
			seen.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer proxy.Close()
	u, _ := url.Parse(proxy.URL)
	sig := config.Signal{Protocol: "http/protobuf", Endpoint: "http://collector.invalid/v1/traces", Compression: "gzip", Timeout: 5 * time.Second, Headers: map[string]string{}}
	o := config.OTLP{Protocol: "http/protobuf", Traces: sig, Metrics: sig, Logs: sig, HTTPSProxy: u.String()}
	e, err := newExporters(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.shutdown(context.Background())
	tid, _ := trace.TraceIDFromHex("5759e988bd862e3fe1be46a994272793")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	span := tracetest.SpanStub{Name: "s", SpanContext: sc, StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0)}.Snapshot()
	if err := e.traces.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{span}); err != nil {
		t.Fatalf("export: %v", err)
	}
	if seen.Load() != 1 {
		t.Errorf("the proxy saw %d requests for the collector, want 1", seen.Load())
	}
}
