package exporter

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// TLS settings live on our own http.Transport (WithHTTPClient makes the
// exporter ignore its TLS options): a backend whose certificate is only
// trusted through the configured CA file is reached.
func TestTLSCertificateFromConfig(t *testing.T) {
	col := sink.New(sink.Options{})
	srv := httptest.NewTLSServer(col.Handler())
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv.URL, config.FlushAsync)
	for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
		s.Certificate = ca
	}
	h := newHarness(t, cfg, knobs{})
	h.run(t)
	ctx := context.Background()
	h.p.Enqueue(context.Background(), invocation("tls", 1, time.Now()))
	h.p.Invoke(ctx, invokeEvent("tls", time.Now().Add(time.Minute)))
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	if spans, _ := received(col); spans["tls"] != 1 {
		t.Errorf("spans over TLS = %v", spans)
	}
}

func TestBadCertificateFailsNew(t *testing.T) {
	cfg := testConfig(t, "https://collector.invalid", config.FlushAsync)
	cfg.OTLP.Traces.Certificate = filepath.Join(t.TempDir(), "missing.pem")
	_, err := newPipeline(cfg, nil, Options{}, knobs{NewMapper: newFakeMapper})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("New = %v, want a certificate error", err)
	}
}

// Bodies are gzipped by our transport (one long-lived writer) when the
// compression is gzip, and sent plain when it is none; either way the
// collector decodes them.
func TestCompressionIsOursAndHonoured(t *testing.T) {
	for _, tc := range []struct{ compression, want string }{{"gzip", "gzip"}, {"none", ""}} {
		t.Run("compression "+tc.compression, func(t *testing.T) {
			col := sink.New(sink.Options{})
			srv := httptest.NewServer(col.Handler())
			defer srv.Close()
			cfg := testConfig(t, srv.URL, config.FlushAsync)
			for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
				s.Compression = tc.compression
			}
			h := newHarness(t, cfg, knobs{})
			h.run(t)
			ctx := context.Background()
			h.p.Enqueue(context.Background(), invocation("z1", 3, time.Now()))
			h.p.Invoke(ctx, invokeEvent("z1", time.Now().Add(time.Minute)))
			if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
				t.Fatal(err)
			}
			if spans, logs := received(col); spans["z1"] != 1 || len(logs) == 0 {
				t.Errorf("spans %v, logs %v", spans, logs)
			}
			encodings := map[string]int{}
			for _, a := range col.Snapshot().Arrivals() {
				encodings[a.Header.Get("Content-Encoding")]++
			}
			if len(encodings) != 1 || encodings[tc.want] == 0 {
				t.Errorf("Content-Encoding seen: %v, want only %q", encodings, tc.want)
			}
		})
	}
}
