package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/slipstream-otel/slipstream/emulator"
)

func build(t *testing.T, out, pkg string) string {
	t.Helper()
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func TestFloor(t *testing.T) {
	t.Run("the floor stays under 150 lines of standard library code", func(t *testing.T) {
		src, err := os.ReadFile("main.go")
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(src, []byte("\n")); n >= 150 {
			t.Errorf("main.go has %d lines", n)
		}
		if bytes.Contains(src, []byte(`"github.com/`)) {
			t.Error("main.go imports a non-standard package")
		}
	})

	t.Run("the floor subscribes, acknowledges every batch and exits on SHUTDOWN", func(t *testing.T) {
		dir := t.TempDir()
		fn := build(t, filepath.Join(dir, "bootstrap"), "../../emulator/testdata/fn")
		floor := build(t, filepath.Join(dir, "ext", "slipstream-floor"), ".")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		e, err := emulator.Start(t.Context(), emulator.Config{
			Function: fn, Extensions: []string{floor}, Freeze: true, TelemetrySupported: true,
			Env: []string{"SLIPSTREAM_LISTENER_PORT=" + strconv.Itoa(port)},
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if res, err := e.Invoke(t.Context(), []byte(`{"action":"log","lines":5}`), emulator.InvokeOptions{}); err != nil || res.Status != emulator.StatusSuccess {
				t.Fatalf("invoke: %+v %v", res, err)
			}
		}
		res, err := e.Shutdown(context.Background(), emulator.ReasonSpindown)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.ExtensionExit["slipstream-floor"]; !ok || len(res.Killed) != 0 {
			t.Errorf("shutdown %+v", res)
		}
		if st := e.Stats(); st.Events == 0 || st.FailedBatches != 0 || st.DroppedRecords != 0 {
			t.Errorf("telemetry stats %+v", st)
		}
	})
}
