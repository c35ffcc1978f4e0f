//go:build e2e

package main

import (
	"context"
	"os/exec"
	"path/filepath"
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

func TestFloorInTheEmulator(t *testing.T) {
	t.Run("the floor subscribes, acknowledges every batch and exits on SHUTDOWN", func(t *testing.T) {
		dir := t.TempDir()
		fn := build(t, filepath.Join(dir, "bootstrap"), "../../emulator/testdata/fn")
		floor := build(t, filepath.Join(dir, "ext", "slipstream-floor"), ".")
		e, err := emulator.Start(t.Context(), emulator.Config{
			Function: fn, Extensions: []string{floor}, Freeze: true, TelemetrySupported: true,
			// Port 0: the floor binds a free port and subscribes with it.
			Env: []string{"SLIPSTREAM_LISTENER_PORT=0"},
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
