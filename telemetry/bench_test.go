package telemetry

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkDecodeBatch(b *testing.B) {
	var lines strings.Builder
	lines.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			lines.WriteByte(',')
		}
		if i%4 == 3 { // a quarter are JSON lines, as AWS's JSON log format sends them
			fmt.Fprintf(&lines, `{"time":"2026-11-26T00:45:33.%03dZ","type":"function","record":{"timestamp":"2026-11-26T00:45:33.%03dZ","level":"INFO","requestId":"e3c00079-0f56-4943-a190-0821f0e429bd","message":"processed item %d of the batch"}}`, i%1000, i%1000, i)
		} else {
			fmt.Fprintf(&lines, `{"time":"2026-11-26T00:45:33.%03dZ","type":"function","record":"2026-11-26T00:45:33.%03dZ\te3c00079-0f56-4943-a190-0821f0e429bd\tINFO\tprocessed item %d of the batch"}`, i%1000, i%1000, i)
		}
	}
	lines.WriteByte(']')
	cases := []struct {
		name string
		body []byte
	}{
		{"fixture batch", readFixture(b, "telemetry.post-body.invoke-batch.json")},
		{"1000 log lines", []byte(lines.String())},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, _, err := DecodeBatch(c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
