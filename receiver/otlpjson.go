package receiver

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP/JSON differs from the protobuf JSON mapping that protojson
// implements in one way that matters: trace and span IDs are hex strings,
// not base64 (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).
// Read as base64, a 32-character hex trace ID decodes to 24 wrong bytes.
// So the IDs are converted between the two before protojson reads and
// after it writes. OTLP/JSON has no free-form maps (attributes are lists
// of {key, value}), so an object member named traceId, spanId or
// parentSpanId is always one of these ID fields.

// idFields are the JSON names of the OTLP ID fields (spans, links, log
// records, exemplars).
var idFields = map[string]bool{"traceId": true, "spanId": true, "parentSpanId": true}

// UnmarshalJSON decodes an OTLP/JSON body into m: IDs are read as hex,
// unknown fields are ignored (as the specification asks of receivers),
// and integers may be numbers or strings.
func UnmarshalJSON(b []byte, m proto.Message) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep 64-bit integers exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	if err := convertIDs(v, hexToBase64); err != nil {
		return err
	}
	nb, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(nb, m)
}

// MarshalJSON encodes m as OTLP/JSON: protojson with hex IDs.
func MarshalJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if err := convertIDs(v, base64ToHex); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// convertIDs rewrites, in place, every ID field's string value with conv.
func convertIDs(v any, conv func(string) (string, error)) error {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && idFields[k] {
				c, err := conv(s)
				if err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
				t[k] = c
				continue
			}
			if err := convertIDs(x, conv); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range t {
			if err := convertIDs(x, conv); err != nil {
				return err
			}
		}
	}
	return nil
}

func hexToBase64(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 8 && len(b) != 16) {
		return "", fmt.Errorf("%q is not a hex ID of 16 or 32 digits", clip(s))
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func base64ToHex(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
