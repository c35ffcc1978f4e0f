package filter

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
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

// unanchoredKeyValue is keyValue as an ordinary unanchored search: the
// reference findKeyValues must agree with.
var unanchoredKeyValue = regexp.MustCompile(strings.Replace(keyValue.String(), "^", "", 1))

func FuzzFindKeyValues(f *testing.F) {
	for _, s := range []string{
		"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		`{"password": "hunter2", "db_pwd":"x", "api-key": k1}`,
		`msg={\"client_secret\":\"abc123\"} id_token: t refresh_token=r; credentials=c`,
		"Secret: PASSWORD=1 passwd:2 SESSION_TOKEN = 3 ;private_key=4",
		"no keys here, just a line about apis and ids",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := findKeyValues(s), unanchoredKeyValue.FindAllStringSubmatchIndex(s, -1)
		if len(got) != len(want) {
			t.Fatalf("%q: %d matches, want %d (%v vs %v)", s, len(got), len(want), got, want)
		}
		for i := range got {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("%q: match %d = %v, want %v", s, i, got[i], want[i])
			}
		}
	})
}

// A line built to make every attempt fail late costs linear time: the
// attempts read a bounded number of bytes.
func BenchmarkFindKeyValuesHostile(b *testing.B) {
	for _, tc := range []struct {
		name, unit string
	}{{"key names without a value", "secret"}, {"key names with a colon in reach", "secretsecretsecretsecretsecretsecretsecretsecretsecretsecretsecret:"}} {
		s := strings.Repeat(tc.unit, (1<<16)/len(tc.unit))
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				findKeyValues(s)
			}
		})
	}
}
