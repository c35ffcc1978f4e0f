// Command slipstream-testsummary reads `go test -json` on stdin and prints
// what plain `go test` prints (one line per package, the output of the
// tests that failed, build errors), then every test that skipped with its
// reason, and one closing line: "N passed, N failed, N skipped". It exits 1
// when a test or a build failed. `make test` runs it, so that a test that
// skipped (for want of root, a tool or a network namespace) is never taken
// for one that passed. Stdlib only; the format is cmd/test2json's
// (https://pkg.go.dev/cmd/test2json).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json`.
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Output     string
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipstream-testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize reads events from r, writes the summary to w and reports
// whether anything failed.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	var (
		output  = map[string][]string{} // package + test -> its output lines
		skipped []string                // "pkg TestX: reason"
		passed  int
		nfailed int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			fmt.Fprintf(w, "%s\n", line) // not an event: go test's own error output
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "build-output":
			fmt.Fprint(w, ev.Output)
		case ev.Action == "build-fail":
			failed = true
		case ev.Test == "": // the package's own events
			if o := ev.Output; ev.Action == "output" && o != "PASS\n" && o != "FAIL\n" && !strings.HasPrefix(o, "=== ") && !strings.HasPrefix(o, "testing: warning: no tests to run") {
				fmt.Fprint(w, o)
			}
			if ev.Action == "fail" {
				failed = true
			}
		case ev.Action == "output":
			output[key] = append(output[key], ev.Output)
		case ev.Action == "pass":
			passed++
			delete(output, key)
		case ev.Action == "skip":
			skipped = append(skipped, fmt.Sprintf("%s %s: %s", ev.Package, ev.Test, reason(output[key])))
			delete(output, key)
		case ev.Action == "fail":
			nfailed++
			failed = true
			for _, o := range output[key] {
				if !strings.HasPrefix(o, "=== ") {
					fmt.Fprint(w, o)
				}
			}
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		return true, fmt.Errorf("read go test -json: %w", err)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "\nskipped tests (%d), with the reason each gave:\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", passed, nfailed, len(skipped))
	return failed || nfailed > 0, nil
}

// reason returns what a skipped test logged, on one line, without the
// "=== RUN" and "--- SKIP" lines.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}
