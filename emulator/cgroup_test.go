//go:build e2e

package emulator

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCgroupV1 needs root and a cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu
// (the benchmark's CPU limit on such machines); elsewhere it is skipped.
func TestCgroupV1(t *testing.T) {
	parent := "/sys/fs/cgroup/cpu"
	if !isCgroup1(parent) {
		t.Skip("no cgroup v1 cpu hierarchy at " + parent)
	}
	name := "emulator-test-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip("cannot create a cgroup (not root?): " + err.Error())
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Logf("remove cgroup %s: %v", dir, err)
		}
	})

	cfg := baseConfig(t)
	cfg.CgroupDir = dir
	e := start(t, cfg)
	t.Run("every child runs in the cgroup", func(t *testing.T) {
		ps := e.Processes()
		if len(ps) != 2 {
			t.Fatalf("processes %+v, want the function and the floor", ps)
		}
		for _, p := range ps {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), ":/"+name+"\n") {
				t.Errorf("%s (pid %d) is not in %s:\n%s", p.Name, p.PID, dir, b)
			}
		}
	})
	shutdown(t, e)
}

func TestCgroupDirThatIsNoCgroup(t *testing.T) {
	cfg := baseConfig(t)
	cfg.CgroupDir = t.TempDir() // neither v1 nor v2: the clone into it fails
	if _, err := Start(t.Context(), cfg); err == nil {
		t.Fatal("Start succeeded with a plain directory as CgroupDir")
	}
	if _, err := os.Stat(filepath.Join(cfg.CgroupDir, "cgroup.procs")); err == nil {
		t.Error("a cgroup.procs file was created in a plain directory")
	}
}
