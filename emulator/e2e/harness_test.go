//go:build e2e

package e2e

// Helpers shared by the local emulator's harness (e2e_harness_test.go)
// and the RIE harness (rie_harness_test.go).

import (
	"net"
	"testing"

	"github.com/slipstream-otel/slipstream/emulator/e2e/e2ebuild"
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

// moduleRoot and goBuild are e2ebuild's, under the names the harnesses use.
var (
	moduleRoot = e2ebuild.ModuleRoot
	goBuild    = e2ebuild.Build
)
