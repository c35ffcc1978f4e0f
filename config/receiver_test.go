package config

import (
	"strings"
	"testing"
)

func TestLoadReceiver(t *testing.T) {
	for _, c := range []struct {
		name       string
		env        map[string]string
		http, grpc int
		problems   int
	}{
		{"both receivers are on by default on the OTLP ports", nil, 4318, 4317, 0},
		{"off switches a receiver off", map[string]string{"SLIPSTREAM_RECEIVER_GRPC_PORT": "OFF"}, 4318, 0, 0},
		{"a port is re-portable", map[string]string{"SLIPSTREAM_RECEIVER_HTTP_PORT": "14318"}, 14318, 4317, 0},
		{"a port that is not a number falls back to the default", map[string]string{"SLIPSTREAM_RECEIVER_HTTP_PORT": "http"}, 4318, 4317, 1},
		{"Lambda's runtime API port is refused", map[string]string{"SLIPSTREAM_RECEIVER_GRPC_PORT": "9001"}, 4318, 4317, 1},
		{"the other receiver's port is refused", map[string]string{"SLIPSTREAM_RECEIVER_GRPC_PORT": "4318"}, 4318, 4317, 1},
		{"the telemetry listener's port is refused", map[string]string{"SLIPSTREAM_RECEIVER_HTTP_PORT": "4243"}, 4318, 4317, 1},
		{"a listener on the receiver's default port switches that receiver off", map[string]string{"SLIPSTREAM_LISTENER_PORT": "4318"}, 0, 4317, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(env(c.env))
			if cfg.ReceiverHTTPPort != c.http || cfg.ReceiverGRPCPort != c.grpc || len(cfg.Problems) != c.problems {
				t.Errorf("http %d grpc %d problems %q", cfg.ReceiverHTTPPort, cfg.ReceiverGRPCPort, cfg.Problems)
			}
			for _, p := range cfg.Problems {
				if !strings.HasPrefix(p, "SLIPSTREAM_RECEIVER_") {
					t.Errorf("problem does not name the variable: %q", p)
				}
			}
		})
	}
}

func TestRefuseReceiverLoop(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		off  []string // signals switched off
	}{
		{"nothing set: the default endpoint is the receiver", nil, []string{"traces", "metrics", "logs"}},
		{"the function's OTEL endpoint at the receiver", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, []string{"traces", "metrics", "logs"}},
		{"grpc to the receiver's grpc port on ::1", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4317"}, []string{"traces", "metrics", "logs"}},
		{"0.0.0.0 is this machine", map[string]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "http://0.0.0.0:4318/v1/traces", "SLIPSTREAM_OTLP_ENDPOINT": "https://collector.example.com"}, []string{"traces"}},
		{"127.0.0.2 is this machine", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "http://127.0.0.2:4318"}, []string{"traces", "metrics", "logs"}},
		{"a backend is not a loop", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "https://otlp.example.com"}, nil},
		{"another local port is not a loop (a collector extension on 4320)", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "http://localhost:4320"}, nil},
		{"a receiver moved away frees its port", map[string]string{"SLIPSTREAM_RECEIVER_HTTP_PORT": "14318"}, nil},
		{"a signal already off is left alone", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "https://otlp.example.com", "SLIPSTREAM_METRICS_EXPORTER": "none"}, nil},
		{"receivers off: no loop", map[string]string{"SLIPSTREAM_RECEIVER_HTTP_PORT": "off", "SLIPSTREAM_RECEIVER_GRPC_PORT": "off"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(env(c.env))
			line := cfg.RefuseReceiverLoop()
			var off []string
			for name, s := range map[string]Signal{"traces": cfg.OTLP.Traces, "metrics": cfg.OTLP.Metrics, "logs": cfg.OTLP.Logs} {
				if s.Off == LoopOff {
					off = append(off, name)
				}
			}
			if len(off) != len(c.off) {
				t.Fatalf("switched off %v, want %v", off, c.off)
			}
			if len(c.off) == 0 {
				if line != "" {
					t.Errorf("line %q", line)
				}
				return
			}
			if !strings.HasPrefix(line, "SLIPSTREAM_OTLP_ENDPOINT: ") || !strings.Contains(line, strings.Join(c.off, ", ")+" not exported") {
				t.Errorf("line %q", line)
			}
			if want := len(c.off) < 3; cfg.ExportEnabled != want {
				t.Errorf("ExportEnabled = %v", cfg.ExportEnabled)
			}
		})
	}
}

func TestLoopbackPort(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		port     int
		ok       bool
	}{
		{"http://localhost:4318/v1/traces", 4318, true},
		{"http://LOCALHOST.:4318", 4318, true},
		{"https://127.1.2.3", 443, true},
		{"http://[::1]", 80, true},
		{"http://[::]:4317", 4317, true},
		{"localhost:4317", 4317, true},
		{"http://10.0.0.7:4318", 0, false},
		{"http://collector:4318", 0, false},
		{"http://localhost.example.com:4318", 0, false},
		{"://", 0, false},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			port, ok := LoopbackPort(c.endpoint)
			if port != c.port || ok != c.ok {
				t.Errorf("got %d %v", port, ok)
			}
		})
	}
}
