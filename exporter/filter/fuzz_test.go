package filter

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

var accessKeyPattern = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)

// FuzzEvents: whatever the batch, filtering does not panic, JSON fields
// stay JSON and no access key ID is left in what is kept.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		`[{"time":"2026-01-02T03:04:05Z","type":"function","record":"key AKIAIOSFODNN7EXAMPLE"}]`,
		`[{"time":"2026-01-02T03:04:05Z","type":"function","record":{"level":"INFO","message":"m","password":"p","nested":{"token":"t","list":["Bearer abcdefghij"]}}}]`,
		`[{"time":"2026-01-02T03:04:05Z","type":"function","record":"-----BEGIN RSA PRIVATE KEY-----"},{"time":"2026-01-02T03:04:05Z","type":"function","record":"MIIE"}]`,
		`[{"time":"2026-01-02T03:04:05Z","type":"platform.future","record":{"x":"AKIAIOSFODNN7EXAMPLE"}}]`,
		`[{"time":"2026-01-02T03:04:05Z","type":"function","record":"{\"k\":\"v\xff\",\"secret\":1}"}]`,
	} {
		f.Add([]byte(s))
	}
	flt, err := New(config.Load(func(k string) string {
		return map[string]string{"SLIPSTREAM_LOGS_MIN_SEVERITY": "debug", "SLIPSTREAM_TRACE_SAMPLE_RATIO": "0.5", "SLIPSTREAM_LOG_FIELDS_DENY": "drop*"}[k]
	}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, _, err := telemetry.DecodeBatch(body)
		if err != nil {
			return
		}
		for _, ev := range flt.Events(evs) {
			switch r := ev.Record.(type) {
			case *telemetry.Log:
				if accessKeyPattern.MatchString(r.Text) || accessKeyPattern.MatchString(r.Message) {
					t.Fatalf("access key kept: %+v", r)
				}
				for k, v := range r.Fields {
					if !json.Valid(v) {
						t.Fatalf("field %s is not JSON: %s", k, v)
					}
					if accessKeyPattern.Match(v) {
						t.Fatalf("access key kept in field %s: %s", k, v)
					}
				}
			case nil:
				if len(ev.Raw) > 0 && accessKeyPattern.Match(ev.Raw) {
					t.Fatalf("access key kept in raw event: %s", ev.Raw)
				}
			}
		}
	})
}
