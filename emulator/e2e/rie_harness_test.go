//go:build e2e

package e2e

// Harness for running AWS's runtime interface emulator (RIE,
// github.com/aws/aws-lambda-runtime-interface-emulator, installed by
// `make tools` into ./.tools/aws-lambda-rie) as an independent peer of the
// agent; RIE_NOTES.md describes how it behaves. Every name here starts with
// "rie" so that the other end-to-end files of this package can coexist.
//
// Isolation: RIE hard-codes /opt/extensions and /var/task and runs the
// processes it starts as uid 993 in Managed Instances mode. Each instance
// therefore runs in a private mount namespace (unshare --mount) where tmpfs
// file systems cover /opt, /var and /tmp before anything is copied there:
// the host's directories are only hidden inside that namespace, and the
// namespace and its files disappear with its last process.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rieModule is what `make tools` installs; named in skip messages.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// Names of the files under /opt/extensions: RIE uses the file name as the
// extension name.
const (
	rieAgentName = "slipstream"
	rieProbeName = "rieprobe"
)

// Bounds of the waits. They are deadlines for things that take
// milliseconds, never durations anything is expected to last.
const (
	rieStartTimeout    = 60 * time.Second
	rieInvokeTimeout   = 30 * time.Second
	rieShutdownTimeout = 30 * time.Second
)

// TestMain removes the binaries built for the RIE tests (once per run, on
// first use) after all tests ran.
func TestMain(m *testing.M) {
	code := m.Run()
	rieRemoveBuilds()
	e2eRemoveBuilds()
	os.Exit(code)
}

// rieBinaries are the programs built once per test run.
type rieBinaries struct {
	dir string // every binary is a file directly in dir
	// agent is the file installed as /opt/extensions/slipstream and
	// agentKind what it was built from.
	agent, agentKind string
	// agentLogs: the agent logs JSON with "extension":"slipstream" to
	// stderr (the real agent and the stand-in; not the floor).
	// agentExports: it exports OTLP (the real agent only).
	agentLogs, agentExports bool
	// function is installed as /var/task/bootstrap.
	function rieFunction
	// probe is testdata/rieext, installed as /opt/extensions/rieprobe.
	probe string
}

// rieFunction is the function the tests run and how to talk to it.
type rieFunction struct {
	path string
	kind string
	// payload is the body of the i-th invocation; check verifies the
	// response the function gave to it.
	payload func(i int) []byte
	check   func(i int, requestID string, body []byte) error
}

var rieBuild struct {
	once sync.Once
	bins *rieBinaries
	err  error
}

// rieBuilt builds the binaries the first time it is called and returns
// them; a build failure fails the calling test.
func rieBuilt(t *testing.T) *rieBinaries {
	t.Helper()
	rieBuild.once.Do(func() { rieBuild.bins, rieBuild.err = rieBuildAll() })
	if rieBuild.err != nil {
		t.Fatalf("build the binaries of the RIE tests: %v", rieBuild.err)
	}
	return rieBuild.bins
}

func rieRemoveBuilds() {
	if rieBuild.bins != nil {
		if err := os.RemoveAll(rieBuild.bins.dir); err != nil {
			fmt.Fprintln(os.Stderr, "remove RIE test binaries:", err)
		}
	}
}

// rieBuildAll builds the agent, the function and the probe.
//
// The agent is ./cmd/slipstream. SLIPSTREAM_RIE_AGENT selects another one
// while the agent is being written: "floor" builds ./cmd/slipstream-floor,
// "standin" the probe program testdata/rieext (which follows the lifecycle
// like the agent but exports nothing). The function is ./examples/function
// when it exists (SLIPSTREAM_RIE_FUNCTION=riefn forces the small echo
// function in testdata/riefn).
func rieBuildAll() (*rieBinaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slipstream-rie-")
	if err != nil {
		return nil, err
	}
	b := &rieBinaries{dir: dir}
	fail := func(err error) (*rieBinaries, error) {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}

	b.agentKind, b.agentLogs, b.agentExports = "./cmd/slipstream", true, true
	switch v := os.Getenv("SLIPSTREAM_RIE_AGENT"); v {
	case "":
	case "floor":
		b.agentKind, b.agentLogs, b.agentExports = "./cmd/slipstream-floor", false, false
	case "standin":
		b.agentKind, b.agentLogs, b.agentExports = "./emulator/e2e/testdata/rieext", true, false
	default:
		return fail(fmt.Errorf("SLIPSTREAM_RIE_AGENT=%q: want floor, standin or nothing", v))
	}
	b.agent = filepath.Join(dir, "agent")
	if err := goBuild(root, b.agent, b.agentKind); err != nil {
		return fail(fmt.Errorf("%w\n(SLIPSTREAM_RIE_AGENT=standin runs the tests against a stand-in)", err))
	}

	b.probe = filepath.Join(dir, "probe")
	if err := goBuild(root, b.probe, "./emulator/e2e/testdata/rieext"); err != nil {
		return fail(err)
	}

	b.function = rieEchoFunction(filepath.Join(dir, "function"))
	pkg := "./emulator/e2e/testdata/riefn"
	if _, err := os.Stat(filepath.Join(root, "examples", "function")); err == nil && os.Getenv("SLIPSTREAM_RIE_FUNCTION") != "riefn" {
		b.function = rieExampleFunction(b.function.path)
		pkg = "./examples/function"
	}
	if err := goBuild(root, b.function.path, pkg); err != nil {
		return fail(err)
	}
	return b, nil
}

// rieEchoFunction is testdata/riefn: it answers {"echo":E,"requestId":ID}
// to {"echo":E}.
func rieEchoFunction(path string) rieFunction {
	return rieFunction{
		path: path,
		kind: "./emulator/e2e/testdata/riefn",
		payload: func(i int) []byte {
			return fmt.Appendf(nil, `{"echo":"call-%d"}`, i)
		},
		check: func(i int, requestID string, body []byte) error {
			var got struct{ Echo, RequestID string }
			if err := json.Unmarshal(body, &got); err != nil {
				return fmt.Errorf("response %q: %w", body, err)
			}
			if want := fmt.Sprintf("call-%d", i); got.Echo != want || got.RequestID != requestID {
				return fmt.Errorf("response %s, want echo %q and requestId %q", body, want, requestID)
			}
			return nil
		},
	}
}

// rieExampleFunction is examples/function: even invocations succeed,
// odd ones also write two JSON log lines carrying their request ID (so the
// Managed Instances test shows how RIE delivers them). It answers
// {"action":A,"requestId":ID,...}.
func rieExampleFunction(path string) rieFunction {
	action := func(i int) string { return []string{"succeed", "json-log"}[i%2] }
	return rieFunction{
		path: path,
		kind: "./examples/function",
		payload: func(i int) []byte {
			return fmt.Appendf(nil, `{"action":%q,"lines":2}`, action(i))
		},
		check: func(i int, requestID string, body []byte) error {
			var got struct{ Action, RequestID string }
			if err := json.Unmarshal(body, &got); err != nil {
				return fmt.Errorf("response %q: %w", body, err)
			}
			if got.Action != action(i) || got.RequestID != requestID {
				return fmt.Errorf("response %s, want action %q and requestId %q", body, action(i), requestID)
			}
			return nil
		},
	}
}

// rieRequire skips the test unless RIE is installed and can run isolated
// here (root or CAP_SYS_ADMIN for a mount namespace); it returns RIE's path.
func rieRequire(t *testing.T) (riePath string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	riePath = filepath.Join(root, ".tools", "aws-lambda-rie")
	if _, err := os.Stat(riePath); err != nil {
		t.Skipf("AWS's emulator is not installed (%v): run `make tools` (go install %s into ./.tools)", err, rieModule)
	}
	// A throw-away namespace: the tmpfs covers /opt only inside it.
	out, err := exec.Command("unshare", "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs rie-probe /opt").CombinedOutput()
	if err != nil {
		t.Skipf("cannot isolate RIE in a private mount namespace (needs root or CAP_SYS_ADMIN; unshare/mount said %q: %v)",
			strings.TrimSpace(string(out)), err)
	}
	return riePath
}

// rieFeed is an append-only list that goroutines wait on: every add
// closes changed, so waitFor re-checks its condition only on change.
type rieFeed[T any] struct {
	mu      sync.Mutex // guards items, done, changed
	items   []T
	done    bool
	changed chan struct{}
}

func rieNewFeed[T any]() *rieFeed[T] { return &rieFeed[T]{changed: make(chan struct{})} }

func (f *rieFeed[T]) add(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append(f.items, v)
	close(f.changed)
	f.changed = make(chan struct{})
}

// finish marks the end of the feed: no more items will come.
func (f *rieFeed[T]) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.done = true
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

func (f *rieFeed[T]) snapshot() []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.items[:len(f.items):len(f.items)]
}

// waitFor blocks until cond holds for the items, the feed is finished
// without it holding, or ctx ends.
func (f *rieFeed[T]) waitFor(ctx context.Context, cond func([]T) bool) error {
	for {
		f.mu.Lock()
		items, done, changed := f.items[:len(f.items):len(f.items)], f.done, f.changed
		f.mu.Unlock()
		if cond(items) {
			return nil
		}
		if done {
			return errors.New("feed ended before the condition held")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rieLine is one line RIE (or a process it started) wrote to its stdout
// or stderr, which RIE shares with the runtime and the extensions.
type rieLine struct {
	at   time.Time
	text string
}

// rieOptions describe one RIE run.
type rieOptions struct {
	// maxConcurrency, when non-zero, sets AWS_LAMBDA_MAX_CONCURRENCY and so
	// selects RIE's Lambda Managed Instances mode (RIE_NOTES.md).
	maxConcurrency int
	// env is added to RIE's environment, which RIE passes on to the
	// runtime and the extensions.
	env []string
}

// rieInstance is one running RIE in its own mount namespace.
type rieInstance struct {
	t         *testing.T
	cmd       *exec.Cmd
	managed   bool
	invokeURL string
	out       *rieFeed[rieLine]
	// exited is closed when the process has been waited for; exitErr and
	// exitAt are written before.
	exited   chan struct{}
	exitErr  error
	exitAt   time.Time
	readDone chan struct{} // closed when out has been read to EOF
	mntNS    string        // the namespace, once known
	hostNS   string
}

// rieQuote quotes s for sh.
func rieQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// rieStart starts RIE with the binaries installed, waits until it can be
// invoked and registers the cleanup that kills whatever is left of it.
func rieStart(t *testing.T, bins *rieBinaries, opts rieOptions) *rieInstance {
	t.Helper()
	riePath := rieRequire(t)
	invokeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	// The binaries are reached relative to the build directory, entered
	// before the mounts: that keeps them reachable even when the build
	// directory sits under /tmp or /var. set -e: nothing is created unless
	// every mount succeeded, so the host's /opt and /var are never touched.
	installs := []string{
		"install -m 0755 " + rieQuote(filepath.Base(bins.function.path)) + " /var/task/bootstrap",
		"install -m 0755 " + rieQuote(filepath.Base(bins.agent)) + " /opt/extensions/" + rieAgentName,
		"install -m 0755 " + rieQuote(filepath.Base(bins.probe)) + " /opt/extensions/" + rieProbeName,
	}
	script := strings.Join([]string{
		"set -e",
		"cd " + rieQuote(bins.dir),
		"mount -t tmpfs -o mode=0755 rie-opt /opt",
		"mount -t tmpfs -o mode=0755 rie-var /var",
		"mkdir -m 0755 /opt/extensions /var/task",
		strings.Join(installs, "\n"),
		// As in Lambda, sandbox.localdomain names the loopback interface, so
		// the agent's telemetry listener binds 127.0.0.1 only.
		"if [ -f /etc/hosts ]; then",
		"  { cat /etc/hosts; echo '127.0.0.1 sandbox.localdomain sandbox'; } > /var/rie-hosts",
		"  chmod 0644 /var/rie-hosts",
		"  mount --bind /var/rie-hosts /etc/hosts",
		"fi",
		// RIE itself too may sit under /tmp (a CI clone there): copy it out
		// before /tmp is covered.
		`install -m 0755 "$1" /var/aws-lambda-rie`,
		"shift",
		"mount -t tmpfs -o mode=1777 rie-tmp /tmp", // the agent's spill directory and any /tmp use
		"cd /var/task",
		`exec /var/aws-lambda-rie "$@"`,
	}, "\n")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
		riePath, "--log-level", "debug",
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", apiAddr)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, opts.env...)
	if opts.maxConcurrency > 0 {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_MAX_CONCURRENCY="+strconv.Itoa(opts.maxConcurrency))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	r := &rieInstance{
		t: t, cmd: cmd, managed: opts.maxConcurrency > 0,
		invokeURL: "http://" + invokeAddr + "/2015-03-31/functions/function/invocations",
		out:       rieNewFeed[rieLine](),
		exited:    make(chan struct{}),
		readDone:  make(chan struct{}),
	}
	r.hostNS, _ = os.Readlink("/proc/self/ns/mnt")
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatalf("start RIE: %v", err)
	}
	pw.Close() // the children hold the write end now
	go func() {
		defer close(r.readDone)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			r.out.add(rieLine{at: time.Now(), text: sc.Text()})
		}
		r.out.finish()
	}()
	go func() {
		err := cmd.Wait()
		r.exitAt, r.exitErr = time.Now(), err
		close(r.exited)
	}()
	t.Cleanup(r.cleanup)

	ctx, cancel := context.WithTimeout(context.Background(), rieStartTimeout)
	defer cancel()
	if err := r.waitReady(ctx, invokeAddr); err != nil {
		t.Fatalf("RIE did not become ready: %v", err)
	}
	r.mntNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid))
	if r.mntNS == "" || r.mntNS == r.hostNS {
		t.Fatalf("RIE runs in mount namespace %q, the host's is %q: not isolated", r.mntNS, r.hostNS)
	}
	return r
}

// waitReady waits for RIE's own word that it is ready: in Managed
// Instances mode "RIE server started" (logged after the invoke listener is
// bound) and the end of the eager Init; in classic mode, which logs
// nothing once its invoke server listens, the Runtime API server's start
// (logged just before) and then the invoke port accepting connections.
func (r *rieInstance) waitReady(ctx context.Context, invokeAddr string) error {
	if r.managed {
		return r.out.waitFor(ctx, func(lines []rieLine) bool {
			return rieCount(lines, "RIE server started") > 0 && rieCount(lines, "Received Init Success") > 0
		})
	}
	if err := r.out.waitFor(ctx, func(lines []rieLine) bool {
		return rieCount(lines, "Runtime API Server listening on") > 0
	}); err != nil {
		return err
	}
	// A bounded retry on connection refusals, with a short backoff.
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	var d net.Dialer
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("invoke port %s: %w", invokeAddr, ctx.Err())
		case <-r.exited:
			return fmt.Errorf("RIE exited: %v", r.exitErr)
		case <-backoff.C:
		}
		c, err := d.DialContext(ctx, "tcp", invokeAddr)
		if err == nil {
			return c.Close()
		}
		backoff.Reset(5 * time.Millisecond)
	}
}

// rieCount counts the lines containing substr.
func rieCount(lines []rieLine, substr string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l.text, substr) {
			n++
		}
	}
	return n
}

// rieInvokeResult is RIE's answer to one invocation.
type rieInvokeResult struct {
	status int
	header http.Header
	body   []byte
}

// invoke posts one invocation with the given request ID (and X-Ray trace
// header, when not empty) and returns RIE's answer.
func (r *rieInstance) invoke(ctx context.Context, requestID, traceHeader string, payload []byte) (rieInvokeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.invokeURL, bytes.NewReader(payload))
	if err != nil {
		return rieInvokeResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", requestID)
	if traceHeader != "" {
		req.Header.Set("X-Amzn-Trace-Id", traceHeader)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rieInvokeResult{}, fmt.Errorf("invoke %s: %w", requestID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rieInvokeResult{}, fmt.Errorf("invoke %s: read response: %w", requestID, err)
	}
	return rieInvokeResult{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// terminate sends SIGTERM to RIE, as the end of an execution environment,
// and waits for it to exit and for its output to end, which happens when
// every process it started has exited too (they share its stdout).
func (r *rieInstance) terminate(ctx context.Context) error {
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM RIE: %w", err)
	}
	select {
	case <-r.exited:
	case <-ctx.Done():
		return fmt.Errorf("RIE still running after SIGTERM: %w", ctx.Err())
	}
	select {
	case <-r.readDone:
		return nil
	case <-ctx.Done():
		var names []string
		for _, pid := range r.namespacePIDs() {
			names = append(names, rieProcessName(pid))
		}
		return fmt.Errorf("RIE exited but its output is still open; processes left: %s", strings.Join(names, "; "))
	}
}

// namespacePIDs lists the processes in RIE's mount namespace: RIE starts
// the runtime and the extensions in process groups of their own, so the
// namespace is what ties them together.
func (r *rieInstance) namespacePIDs() []int {
	ns := r.mntNS
	if ns == "" || ns == r.hostNS {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rieProcessName is the command line of a process, for messages.
func rieProcessName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return strconv.Itoa(pid)
	}
	return fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))))
}

// cleanup kills RIE's process group and every process left in its
// namespace, waits for the output to end, dumps RIE's output when the
// test failed, and checks the host's /opt and /var were left alone.
func (r *rieInstance) cleanup() {
	t := r.t
	if r.mntNS == "" {
		r.mntNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", r.cmd.Process.Pid))
	}
	select {
	case <-r.exited:
	default:
		if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill RIE's process group: %v", err)
		}
	}
	for _, pid := range r.namespacePIDs() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill %s: %v", rieProcessName(pid), err)
		}
	}
	timeout := time.NewTimer(rieShutdownTimeout)
	defer timeout.Stop()
	select {
	case <-r.exited:
	case <-timeout.C:
		t.Errorf("RIE (pid %d) did not exit after SIGKILL", r.cmd.Process.Pid)
	}
	select {
	case <-r.readDone:
	case <-timeout.C:
		t.Errorf("RIE's output did not end: a process outside its namespace holds it")
	}
	if t.Failed() || os.Getenv("SLIPSTREAM_RIE_VERBOSE") != "" {
		var b strings.Builder
		for _, l := range r.out.snapshot() {
			fmt.Fprintf(&b, "%s | %s\n", l.at.UTC().Format("15:04:05.000000"), l.text)
		}
		t.Logf("RIE output:\n%s", b.String())
	}
	for _, p := range []string{"/opt/extensions", "/var/task"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists on the host after the test (err %v): the isolation leaked", p, err)
		}
	}
}

// rieAgentLine is one JSON log record from an extension's stderr.
type rieAgentLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Extension string `json:"extension"`
	raw       string
}

// rieAgentLog returns the JSON log records the named extension wrote (the
// agent adds "extension":"slipstream" to each).
func rieAgentLog(lines []rieLine, name string) []rieAgentLine {
	var recs []rieAgentLine
	for _, l := range lines {
		if !strings.HasPrefix(l.text, "{") {
			continue
		}
		var rec rieAgentLine
		if json.Unmarshal([]byte(l.text), &rec) != nil || rec.Extension != name || rec.Msg == "" {
			continue
		}
		rec.raw = l.text
		recs = append(recs, rec)
	}
	return recs
}

var (
	rieClassicRegistered = regexp.MustCompile(`External agent (\S+) \(([0-9a-f-]+)\) registered, subscribed to \[([A-Z ]*)\]`)
	rieManagedRegistered = regexp.MustCompile(`msg="External agent registered" agentName=(\S+) agent="\S+ \(([0-9a-f-]+)\)" events=\[([A-Z ]*)\]`)
)

// rieRegistration is what RIE logged about an extension's registration.
type rieRegistration struct {
	id     string
	events []string
}

// rieRegistrations returns the extensions RIE logged as registered, by name.
func rieRegistrations(lines []rieLine) map[string]rieRegistration {
	regs := map[string]rieRegistration{}
	for _, l := range lines {
		for _, re := range []*regexp.Regexp{rieClassicRegistered, rieManagedRegistered} {
			if m := re.FindStringSubmatch(l.text); m != nil {
				regs[m[1]] = rieRegistration{id: m[2], events: strings.Fields(m[3])}
			}
		}
	}
	return regs
}

// rieAPICalls counts the API requests RIE logged for path from the
// extension with the given identifier.
func rieAPICalls(lines []rieLine, path, id string) int {
	n := 0
	for _, l := range lines {
		t := l.text
		if strings.Contains(t, "API request") && (strings.Contains(t, path+" ") || strings.Contains(t, path+",")) &&
			strings.Contains(t, "Lambda-Extension-Identifier:["+id+"]") {
			n++
		}
	}
	return n
}

// rieReport is one observation the probe extension posted.
type rieReport struct {
	Extension string          `json:"extension"`
	Kind      string          `json:"kind"`
	At        int64           `json:"atUnixMicro"`
	Data      json.RawMessage `json:"data"`
}

// rieAPIResult is an API answer inside a report.
type rieAPIResult struct {
	Status  int             `json:"status"`
	Headers http.Header     `json:"headers"`
	Body    json.RawMessage `json:"body"`
}

// rieProbe receives the probe extension's reports.
type rieProbe struct {
	srv     *httptest.Server
	reports *rieFeed[rieReport]
}

func rieStartProbe(t *testing.T) *rieProbe {
	t.Helper()
	p := &rieProbe{reports: rieNewFeed[rieReport]()}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep rieReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.reports.add(rep)
	}))
	t.Cleanup(func() {
		p.srv.Close()
		if t.Failed() || os.Getenv("SLIPSTREAM_RIE_VERBOSE") != "" {
			var b strings.Builder
			for _, rep := range p.reports.snapshot() {
				fmt.Fprintf(&b, "%s %s %s %s\n", time.UnixMicro(rep.At).UTC().Format("15:04:05.000000"), rep.Extension, rep.Kind, rep.Data)
			}
			t.Logf("probe reports:\n%s", b.String())
		}
	})
	return p
}

// of returns the probe's reports of one kind (the stand-in agent, the
// same program, reports too, under its own name).
func (p *rieProbe) of(kind string) []rieReport {
	var out []rieReport
	for _, r := range p.reports.snapshot() {
		if r.Kind == kind && r.Extension == rieProbeName {
			out = append(out, r)
		}
	}
	return out
}

// rieEvent is an Extensions API event as the probe received it.
type rieEvent struct {
	EventType          string `json:"eventType"`
	DeadlineMs         int64  `json:"deadlineMs"`
	RequestID          string `json:"requestId"`
	InvokedFunctionARN string `json:"invokedFunctionArn"`
	ShutdownReason     string `json:"shutdownReason"`
	Tracing            *struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tracing"`
}

// events decodes the probe's "event" reports.
func (p *rieProbe) events(t *testing.T) []rieEvent {
	t.Helper()
	var evs []rieEvent
	for _, rep := range p.of("event") {
		var res rieAPIResult
		var ev rieEvent
		if err := json.Unmarshal(rep.Data, &res); err != nil {
			t.Fatalf("probe event report %s: %v", rep.Data, err)
		}
		if err := json.Unmarshal(res.Body, &ev); err != nil {
			t.Fatalf("probe event %s: %v", res.Body, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// rieTelemetryEvent is one Telemetry API event as the probe received it.
type rieTelemetryEvent struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// telemetry decodes every telemetry batch the probe received, in order.
func (p *rieProbe) telemetry(t *testing.T) []rieTelemetryEvent {
	t.Helper()
	var out []rieTelemetryEvent
	for _, rep := range p.of("telemetry") {
		var tb struct {
			Batch []rieTelemetryEvent `json:"batch"`
		}
		if err := json.Unmarshal(rep.Data, &tb); err != nil {
			t.Fatalf("probe telemetry report %s: %v", rep.Data, err)
		}
		out = append(out, tb.Batch...)
	}
	return out
}

// rieRequestID returns a random UUID, the shape of Lambda's request IDs.
func rieRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// rieTraceHeader returns an X-Ray trace header with a random root.
func rieTraceHeader() (header, traceID string) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	epoch, unique := fmt.Sprintf("%08x", uint32(time.Now().Unix())), fmt.Sprintf("%x", b)
	return fmt.Sprintf("Root=1-%s-%s;Parent=53995c3f42cd8ad8;Sampled=1", epoch, unique), epoch + unique
}
