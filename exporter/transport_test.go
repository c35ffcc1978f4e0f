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
)

// TLS settings live on our own http.Transport (WithHTTPClient makes the
// exporter ignore its TLS options): a backend whose certificate is only
// trusted through the configured CA file is reached.
func TestTLSCertificateFromConfig(t *testing.T) {
	col := newCollector()
	srv := httptest.NewTLSServer(col)
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
	h := newHarness(t, cfg, Options{})
	h.run(t)
	ctx := context.Background()
	h.p.Enqueue(invocation("tls", 1, time.Now()))
	h.p.Invoke(ctx, invokeEvent("tls", time.Now().Add(time.Minute)))
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	if spans, _, _ := col.snapshot(); spans["tls"] != 1 {
		t.Errorf("spans over TLS = %v", spans)
	}
}

func TestBadCertificateFailsNew(t *testing.T) {
	cfg := testConfig(t, "https://collector.invalid", config.FlushAsync)
	cfg.OTLP.Traces.Certificate = filepath.Join(t.TempDir(), "missing.pem")
	_, err := New(cfg, nil, Options{NewMapper: newFakeMapper})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("New = %v, want a certificate error", err)
	}
}
