package telemetry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"an empty body is not JSON", ""},
		{"whitespace alone is not JSON", " \t\r\n"},
		{"an empty array is valid", "[]"},
		{"an empty object with spaces is valid", " { } "},
		{"a batch of events is valid", `[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"handling request"}]`},
		{"nested containers are valid", `{"a":[1,{"b":[true,false,null]},"x"],"c":{}}`},
		{"every escape is valid", `"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"`},
		{"an unknown escape is not", `"\x"`},
		{"a short unicode escape is not", `"\u12"`},
		{"a unicode escape with a non-hex digit is not", `"\u12g4"`},
		{"a raw control character in a string is not", "\"a\tb\""},
		{"a raw DEL and invalid UTF-8 in a string are accepted as json.Valid does", "\"\x7f\xff\xfe\""},
		{"an unterminated string is not", `"abc`},
		{"a backslash at the end is not", `"abc\`},
		{"numbers in every form are valid", `[0,-0,1,-12,3.25,1e5,1E+5,2.5e-3,-0.0e0]`},
		{"a leading zero is not", `01`},
		{"a bare minus is not", `-`},
		{"a fraction without digits is not", `1.`},
		{"an exponent without digits is not", `1e+`},
		{"a leading plus is not", `+1`},
		{"a leading dot is not", `.5`},
		{"literals are valid", `[true,false,null]`},
		{"a truncated literal is not", `[tru]`},
		{"a literal followed by letters is not", `nullx`},
		{"a trailing comma in an array is not", `[1,]`},
		{"a trailing comma in an object is not", `{"a":1,}`},
		{"a key without quotes is not", `{a:1}`},
		{"a key without a value is not", `{"a"}`},
		{"a key and colon without a value is not", `{"a":}`},
		{"a missing comma is not", `[1 2]`},
		{"mismatched brackets are not", `[1}`},
		{"an unclosed array is not", `[1,2`},
		{"two values are not one", `1 2`},
		{"a value after the closing bracket is not", `[] []`},
		{"a half of a split record is not", `[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"handl`},
		{"nesting at the limit is valid", strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth)},
		{"nesting beyond the limit is not", strings.Repeat("[", maxNestingDepth+1) + strings.Repeat("]", maxNestingDepth+1)},
	}
	counts := []struct {
		name string
		in   string
		want int
	}{
		{"an empty array has no elements", " [ ] ", 0},
		{"nested containers count once", `[{"a":[1,2]},[[]],"x",3,{}]`, 5},
		{"an object is no array", `{"a":[1,2,3]}`, 0},
	}
	for _, tt := range counts {
		t.Run(tt.name, func(t *testing.T) {
			if n, ok := validCount([]byte(tt.in)); !ok || n != tt.want {
				t.Errorf("validCount(%q) = %d, %v; want %d, true", tt.in, n, ok, tt.want)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := validJSON([]byte(tt.in)), json.Valid([]byte(tt.in))
			if got != want {
				t.Errorf("validJSON(%.60q) = %v, json.Valid = %v", tt.in, got, want)
			}
		})
	}
}

func FuzzValidJSON(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range []string{`[1,2.5e-3,-0,"\u00e9\n",true,null,{}]`, `{"a":[{"b":"c"}]}`, "\"\x00\"", `[01]`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
		n, ok := validCount(b)
		if !ok {
			return
		}
		want := 0
		if open := skipWS(b, 0); b[open] == '[' {
			for it := newArrayIter(b, open); ; want++ {
				if _, ok := it.next(); !ok {
					break
				}
			}
		}
		if n != want {
			t.Fatalf("validCount(%q) = %d elements, the array has %d", b, n, want)
		}
	})
}

// BenchmarkValidJSON measures validJSON beside json.Valid, which it
// replaces in DecodeBatch, on the bodies of BenchmarkDecodeBatch.
func BenchmarkValidJSON(b *testing.B) {
	for _, v := range []struct {
		name  string
		valid func([]byte) bool
	}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
		for _, c := range decodeBenchBodies(b) {
			b.Run(v.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.body)))
				for b.Loop() {
					if !v.valid(c.body) {
						b.Fatal("not valid")
					}
				}
			})
		}
	}
}
