//go:build e2e

package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestScripted(t *testing.T) {
	t.Run("the scripted mode runs N invocations, shuts down and prints a summary", func(t *testing.T) {
		dir := t.TempDir()
		fn := filepath.Join(dir, "bootstrap")
		floor := filepath.Join(dir, "ext", "slipstream-floor")
		for _, b := range [][2]string{{fn, "../../emulator/testdata/fn"}, {floor, "../slipstream-floor"}} {
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				t.Fatalf("build %s: %v\n%s", b[1], err, out)
			}
		}
		o, err := parse([]string{"-function", fn, "-extension", floor, "-addr", "127.0.0.1:0", "-invocations", "3", "-rate", "0", "-payload", `{"action":"echo"}`}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o.cfg.Env = []string{"SLIPSTREAM_LISTENER_PORT=0"}
		var out bytes.Buffer
		if err := run(context.Background(), o, &out, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		s := out.String()
		if strings.Count(s, " success ") != 3 || !strings.Contains(s, "invocations: 3") || !strings.Contains(s, "extension slipstream-floor exited") {
			t.Errorf("output:\n%s", s)
		}
	})
}
