package filter

import (
	"maps"
	"strings"
	"testing"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// BenchmarkDefaultRedaction is the cost of the built-in redaction set per
// function log line, as the pre-queue step pays it.
func BenchmarkDefaultRedaction(b *testing.B) {
	const prefix = "2026-01-02T03:04:05.000Z\t8f9d2c4e-7b1a-4c3d-9e8f-0a1b2c3d4e5f\tINFO\t"
	long := prefix + strings.Repeat("processed order 12345 for customer 42 in 3 ms; ", 22)[:1024-len(prefix)]
	lines := []struct{ name, text string }{
		{"short line", prefix + "processed order 12345"},
		{"1 KiB line", long},
		{"line with a secret", prefix + "connecting with aws_secret_access_key=" + secretKey + " as " + accessKeyID},
		{"1 KiB JSON line", `{"level":"INFO","message":"` + strings.Repeat("x", 900) + `","order":12345,"customer":{"id":42,"tier":"gold"}}`},
	}
	f, err := New(config.Load(func(string) string { return "" }))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range lines {
		b.Run(l.name, func(b *testing.B) {
			evs, _, err := telemetry.DecodeBatch([]byte(`[{"time":"2026-01-02T03:04:05Z","type":"function","record":` + quote(l.text) + `}]`))
			if err != nil {
				b.Fatal(err)
			}
			orig := *evs[0].Record.(*telemetry.Log)
			rec := new(telemetry.Log)
			batch := make([]telemetry.Event, 1)
			b.SetBytes(int64(len(l.text)))
			b.ReportAllocs()
			for b.Loop() {
				*rec = orig
				if orig.Fields != nil {
					rec.Fields = maps.Clone(orig.Fields)
				}
				batch[0] = telemetry.Event{Type: telemetry.TypeFunction, Record: rec}
				f.Events(batch)
			}
		})
	}
}
