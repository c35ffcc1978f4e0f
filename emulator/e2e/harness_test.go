//go:build e2e

package e2e

// Helpers shared by the local emulator's harness (e2e_harness_test.go)
// and the RIE harness (rie_harness_test.go).

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// freePort returns a loopback TCP port that was free a moment ago, for a
// program the test does not control (AWS's emulator), a backend started
// later, or an address where nothing must listen. The agent is given port
// 0 instead: it binds a free port and subscribes with it.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// moduleRoot is the module root (this package is emulator/e2e).
func moduleRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	return root, nil
}

// goBuild builds pkg of the module at root into out as the layer ships
// the agent: static (CGO_ENABLED=0), trimmed, stripped.
func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
