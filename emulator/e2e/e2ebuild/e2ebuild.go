// Package e2ebuild builds the programs the end-to-end tests run, as the
// layer ships them: static (CGO_ENABLED=0), trimmed, stripped, with the
// release build tags. It is used by the test packages under emulator/e2e
// only; the agent never imports it.
package e2ebuild

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot returns the directory of the module the current directory
// belongs to (go env GOMOD).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("module root: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// Build builds pkg of the module at root into out.
func Build(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Binaries are the agent and the example function in a directory laid
// out as the execution environment has them.
type Binaries struct {
	Dir      string
	Agent    string // Dir/extensions/slipstream
	Function string // Dir/bootstrap
}

// AgentAndFunction builds ./cmd/slipstream and ./examples/function into a
// new temporary directory whose name starts with prefix.
func AgentAndFunction(prefix string) (*Binaries, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	b := &Binaries{Dir: dir, Agent: filepath.Join(dir, "extensions", "slipstream"), Function: filepath.Join(dir, "bootstrap")}
	for _, x := range []struct{ pkg, out string }{{"./cmd/slipstream", b.Agent}, {"./examples/function", b.Function}} {
		if err := Build(root, x.out, x.pkg); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	return b, nil
}
