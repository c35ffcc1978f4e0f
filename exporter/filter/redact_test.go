package filter

import (
	"encoding/json"
	"strings"
	"testing"
)

// Secrets used by the tests: each must be absent from what the filter
// lets through.
const (
	accessKeyID = "AKIAIOSFODNN7EXAMPLE"
	sessionKey  = "ASIAJEXAMPLEXEG2JICE"
	secretKey   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	bearer      = "mF_9.B5f-4.1JqM"
	basicCred   = "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" // Aladdin:open sesame
	urlPassword = "s3cr3tpw"
	jwt         = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	keyBody     = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
)

func TestBuiltinRules(t *testing.T) {
	red, err := newRedactor(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
	}{
		{"an access key ID is replaced", "using key " + accessKeyID + " now", "using key [REDACTED] now"},
		{"a temporary access key ID is replaced", "id=" + sessionKey, "id=[REDACTED]"},
		{"a secret key after its name keeps the name", "aws_secret_access_key=" + secretKey, "aws_secret_access_key=[REDACTED]"},
		{"a secret in JSON text keeps its key", `{"password": "hunter2", "user": "bob"}`, `{"password": "[REDACTED]", "user": "bob"}`},
		{"a secret in escaped JSON keeps its key", `msg={\"client_secret\":\"abc123\"}`, `msg={\"client_secret\":\"[REDACTED]\"}`},
		{"a bearer token keeps the scheme", "Authorization: Bearer " + bearer, "Authorization: Bearer [REDACTED]"},
		{"basic credentials keep the scheme", "Authorization: Basic " + basicCred, "Authorization: Basic [REDACTED]"},
		{"the word basic before an ordinary word stays", "Basic information about orders", "Basic information about orders"},
		{"a URL password keeps the user", "connect postgres://app:" + urlPassword + "@db:5432/x", "connect postgres://app:[REDACTED]@db:5432/x"},
		{"a private key block is replaced whole", "key: -----BEGIN RSA PRIVATE KEY-----\n" + keyBody + "\n-----END RSA PRIVATE KEY----- done", "key: [REDACTED] done"},
		{"a private key cut short is replaced to the end", "-----BEGIN PRIVATE KEY-----" + keyBody, "[REDACTED]"},
		{"a JWT is replaced", "token " + jwt + " ok", "token [REDACTED] ok"},
		{"an ordinary line stays as it is", "START processing order 12345 for customer 42", "START processing order 12345 for customer 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := red.text(tt.in)
			if got != tt.want {
				t.Errorf("text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUserPatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		in, want string
	}{
		{"a pattern without a value group replaces the whole match", []string{`order-[0-9]{6}`}, "shipped order-123456 today", "shipped [REDACTED] today"},
		{"a value group keeps the key name", []string{`(?i)ssn=(?P<value>[0-9-]+)`}, "SSN=123-45-6789 ok", "SSN=[REDACTED] ok"},
		{"several patterns all apply", []string{`alpha`, `beta`}, "alpha beta gamma", "[REDACTED] [REDACTED] gamma"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			red, err := newRedactor(false, tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := red.text(tt.in); got != tt.want {
				t.Errorf("text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestJSONValue(t *testing.T) {
	red, _ := newRedactor(true, []string{`\b4[0-9]{15}\b`})
	tests := []struct {
		name, in  string
		mustLack  []string
		mustHave  []string
		unchanged bool
	}{
		{name: "a string holding a key is redacted", in: `"uses ` + accessKeyID + `"`, mustLack: []string{accessKeyID}, mustHave: []string{Redacted}},
		{name: "a nested sensitive key loses its value", in: `{"db":{"password":"p@ss","host":"h"}}`, mustLack: []string{"p@ss"}, mustHave: []string{`"host":"h"`, `"password":"[REDACTED]"`}},
		{name: "an array of strings is walked", in: `["ok","Bearer ` + bearer + `"]`, mustLack: []string{bearer}},
		{name: "a number a user pattern matches becomes a string", in: `4111111111111111`, mustLack: []string{"4111111111111111"}},
		{name: "an ordinary object is left as it is", in: `{"order":12,"items":["a","b"]}`, unchanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed := red.jsonValue(json.RawMessage(tt.in))
			if changed == tt.unchanged {
				t.Fatalf("changed = %v for %s", changed, tt.in)
			}
			if tt.unchanged {
				if string(out) != tt.in {
					t.Errorf("out = %s, want the input", out)
				}
				return
			}
			if !json.Valid(out) {
				t.Fatalf("out is not JSON: %s", out)
			}
			for _, s := range tt.mustLack {
				if strings.Contains(string(out), s) {
					t.Errorf("out %s still holds %q", out, s)
				}
			}
			for _, s := range tt.mustHave {
				if !strings.Contains(string(out), s) {
					t.Errorf("out %s lacks %q", out, s)
				}
			}
		})
	}
}

func TestSensitiveKey(t *testing.T) {
	for _, k := range []string{"password", "DB_PASSWORD", "client-secret", "apiKey", "x-api-key", "access_token", "sessionToken", "Authorization", "credentials", "private_key", "db_pwd", "Cookie"} {
		if !sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = false", k)
		}
	}
	for _, k := range []string{"user", "order_id", "tokens_used", "keyboard", "message", "monkey"} {
		if sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = true", k)
		}
	}
}
