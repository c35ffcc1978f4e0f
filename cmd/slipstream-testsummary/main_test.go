package main

import (
	"bytes"
	"strings"
	"testing"
)

// A go test -json stream with a pass, a skip with its reason, a failure and
// a package without tests, as cmd/test2json writes it.
const stream = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestPass"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"    a_test.go:9: chatter of a test that passed\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestPass","Elapsed":0}
{"Action":"run","Package":"example.com/a","Test":"TestRIE"}
{"Action":"output","Package":"example.com/a","Test":"TestRIE","Output":"=== RUN   TestRIE\n"}
{"Action":"output","Package":"example.com/a","Test":"TestRIE","Output":"    rie_test.go:20: needs root for a mount namespace\n"}
{"Action":"output","Package":"example.com/a","Test":"TestRIE","Output":"--- SKIP: TestRIE (0.00s)\n"}
{"Action":"skip","Package":"example.com/a","Test":"TestRIE","Elapsed":0}
{"Action":"output","Package":"example.com/a","Output":"PASS\n"}
{"Action":"output","Package":"example.com/a","Output":"ok  \texample.com/a\t0.01s\n"}
{"Action":"pass","Package":"example.com/a","Elapsed":0.01}
{"Action":"run","Package":"example.com/b","Test":"TestBroken"}
{"Action":"output","Package":"example.com/b","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"example.com/b","Test":"TestBroken","Output":"    b_test.go:5: got 1, want 2\n"}
{"Action":"output","Package":"example.com/b","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"example.com/b","Test":"TestBroken","Elapsed":0}
{"Action":"output","Package":"example.com/b","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/b","Output":"FAIL\texample.com/b\t0.01s\n"}
{"Action":"fail","Package":"example.com/b","Elapsed":0.01}
{"Action":"output","Package":"example.com/c","Output":"?   \texample.com/c\t[no test files]\n"}
{"Action":"skip","Package":"example.com/c","Elapsed":0}
`

func TestSummarize(t *testing.T) {
	var out bytes.Buffer
	failed, err := summarize(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, tc := range []struct {
		name string
		want string
		in   bool
	}{
		{"each package's closing line is printed", "ok  \texample.com/a\t0.01s\n", true},
		{"a package without tests is printed as go test prints it", "?   \texample.com/c\t[no test files]\n", true},
		{"a failed test's output is printed", "    b_test.go:5: got 1, want 2\n--- FAIL: TestBroken (0.00s)\n", true},
		{"a skipped test is listed with its reason", "  example.com/a TestRIE: rie_test.go:20: needs root for a mount namespace\n", true},
		{"the closing line counts tests, not packages", "\n1 passed, 1 failed, 1 skipped\n", true},
		{"a passing test's chatter is left out", "chatter of a test that passed", false},
		{"=== RUN lines are left out", "=== RUN", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(got, tc.want) != tc.in {
				t.Errorf("output contains %q = %v, want %v; output:\n%s", tc.want, !tc.in, tc.in, got)
			}
		})
	}
	if !failed {
		t.Error("failed = false for a stream with a failed test")
	}
}

func TestSummarizeStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		failed bool
	}{
		{"a stream of passes is a success", `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"pass","Package":"p"}`, false},
		{"a build failure is a failure though no test ran", `{"ImportPath":"p","Action":"build-output","Output":"p/x.go:1: syntax error\n"}` + "\n" + `{"ImportPath":"p","Action":"build-fail"}`, true},
		{"a package that fails outside any test is a failure", `{"Action":"fail","Package":"p"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed, err := summarize(strings.NewReader(tc.stream), &bytes.Buffer{})
			if err != nil || failed != tc.failed {
				t.Errorf("failed = %v, %v; want %v", failed, err, tc.failed)
			}
		})
	}
}
