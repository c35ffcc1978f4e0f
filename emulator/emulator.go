package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config describes the emulated function and environment. Zero values take
// the defaults documented on each field.
type Config struct {
	// Function is the path of the runtime bootstrap (the function binary).
	Function string
	// Extensions are paths of external extension executables; each one's file
	// name is the name it must register with (Extensions API).
	Extensions []string
	// InProcessExtensions are extension names allowed to register without a
	// launched process (e.g. a test acting as an extension over HTTP). Init
	// waits for them like for launched extensions.
	InProcessExtensions []string

	FunctionName    string // default "function"
	FunctionVersion string // default "$LATEST"
	Handler         string // _HANDLER; default "bootstrap"
	Region          string // default "us-east-1"
	AccountID       string // default "123456789012"
	MemoryMB        int    // default 128

	Timeout         time.Duration // function timeout; default 3 s
	InitTimeout     time.Duration // Lambda lifecycle: default 10 s
	ShutdownTimeout time.Duration // Lambda lifecycle: default 2 s with external extensions
	RuntimeShutdown time.Duration // Lambda lifecycle: the runtime's share; default 300 ms

	// Env holds extra "KEY=value" customer variables for the function and extensions.
	Env []string

	// Freeze stops (SIGSTOP) all processes between invocations (Lambda lifecycle).
	Freeze bool
	// ReportAfterShutdown delivers the telemetry still pending at shutdown
	// (typically the last invocation's platform.report) only after
	// SHUTDOWN has been sent, as Lambda does (Telemetry API "Timing relative
	// to /next"). False flushes it before SHUTDOWN, as AWS's emulator does.
	ReportAfterShutdown bool
	// TelemetrySupported serves the Telemetry API; false answers 202
	// Telemetry.NotSupported like AWS's classic emulator (Telemetry API).
	TelemetrySupported bool
	// TelemetryBufferBytes caps each subscriber's buffer of log records
	// (function/extension); beyond it records are dropped and counted in a
	// platform.logsDropped event (Telemetry API). Default 1 MiB.
	TelemetryBufferBytes int
	// TelemetryMaxAttempts bounds delivery tries of one batch. Default 4.
	TelemetryMaxAttempts int
	// TelemetryPOSTTimeout bounds one POST. Default 5 s.
	TelemetryPOSTTimeout time.Duration

	// RuntimeAddr is the Runtime API listen address; default 127.0.0.1:0.
	RuntimeAddr string
	// InvokeAddr is the invoke endpoint's listen address; default 127.0.0.1:0.
	InvokeAddr string
	// CgroupDir, when set, is a cgroup directory every child starts in. On
	// cgroup v2 children are cloned straight into it (CLONE_INTO_CGROUP); on a
	// cgroup v1 hierarchy (e.g. /sys/fs/cgroup/cpu/<name>) each child's PID is
	// written to <dir>/cgroup.procs right after it starts.
	CgroupDir string

	// Stdout and Stderr, when set, receive a copy of the children's output.
	Stdout, Stderr io.Writer
	// OnEvent, when set, is called (under the emulator's lock: do not call
	// back into the Emulator) with every telemetry event produced, in order.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// Event is one telemetry event as produced (an element of a Telemetry API POST body).
type Event struct {
	Type string
	JSON []byte // {"time","type","record"}
}

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.FunctionName, "function")
	def(&c.FunctionVersion, "$LATEST")
	def(&c.Handler, "bootstrap")
	def(&c.Region, "us-east-1")
	def(&c.AccountID, "123456789012")
	def(&c.RuntimeAddr, "127.0.0.1:0")
	def(&c.InvokeAddr, "127.0.0.1:0")
	if c.MemoryMB <= 0 {
		c.MemoryMB = 128
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&c.Timeout, 3*time.Second)
	dur(&c.InitTimeout, 10*time.Second)
	dur(&c.ShutdownTimeout, 2*time.Second)
	dur(&c.RuntimeShutdown, 300*time.Millisecond)
	dur(&c.TelemetryPOSTTimeout, 5*time.Second)
	if c.TelemetryBufferBytes <= 0 {
		c.TelemetryBufferBytes = 1 << 20
	}
	if c.TelemetryMaxAttempts <= 0 {
		c.TelemetryMaxAttempts = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Function == "" {
		errs = append(errs, errors.New("function: the bootstrap path (Config.Function) is required"))
	}
	seen := map[string]bool{}
	for _, n := range c.extensionNames() {
		if seen[n] {
			errs = append(errs, fmt.Errorf("extensions: duplicate extension name %q (names are file names)", n))
		}
		seen[n] = true
	}
	return errors.Join(errs...)
}

func (c Config) extensionNames() []string {
	var names []string
	for _, p := range c.Extensions {
		names = append(names, filepath.Base(p))
	}
	return append(names, c.InProcessExtensions...)
}

// Emulator is one running execution environment. Its methods are safe for
// concurrent use; invocations are serialised like in Lambda.
type Emulator struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client // telemetry POSTs

	rtLn, invLn   net.Listener
	rtSrv, invSrv *http.Server
	cgroupFD      int
	cgroupProcs   string // cgroup v1: <CgroupDir>/cgroup.procs; "" on v2 or without a cgroup
	instanceID    string

	lifeMu  sync.Mutex    // serialises init, invocations and shutdown
	closing chan struct{} // closed by Shutdown
	wg      sync.WaitGroup
	stats   statsBox

	mu sync.Mutex // guards every field below
	// changed is closed and replaced on every state change (see notifyLocked).
	changed chan struct{}
	closed  bool
	// init state (Lambda lifecycle)
	initializing      bool
	registrationOpen  bool
	subscriptionsOpen bool
	needsInit         bool // a reset happened: next invoke runs a suppressed init
	initLog           []loggedEvent
	initFailed        string // errorType of a failure reported by init/error
	initDuration      time.Duration
	reportInitDur     bool   // the next report carries initDurationMs
	phase             string // phase of the current or last init: init | invoke
	lastHWM           int    // the function's peak RSS seen (MiB)
	initStart         time.Time
	// processes and extensions
	runtime      *process
	runtimeReady bool // the runtime called /next at least once in this generation
	launched     map[string]*process
	exts         map[string]*extension // by identifier
	byName       map[string]*extension
	subs         []*subscriber
	frozen       bool
	// invocations
	pending *invocation // waiting for the runtime's /next
	cur     *invocation // the invocation in progress
}

type loggedEvent struct {
	typ string
	raw []byte
}

// New validates cfg and binds the Runtime API and invoke listeners without
// starting any process; call Init to run the Init phase. Start does both.
func New(cfg Config) (*Emulator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("emulator config: %w", err)
	}
	e := &Emulator{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}},
		cgroupFD: -1,
		closing:  make(chan struct{}),
		changed:  make(chan struct{}),
		launched: map[string]*process{},
		exts:     map[string]*extension{},
		byName:   map[string]*extension{},
		// Registration is open from the start so that in-process extensions
		// can register while Init runs (launched ones start within Init).
		initializing: true, registrationOpen: true, subscriptionsOpen: true,
	}
	e.instanceID = time.Now().UTC().Format("2006/01/02") + "/[" + cfg.FunctionVersion + "]" + randomHex(16)
	// The Init phase starts now, so that in-process extensions registering
	// before Init runs still see platform.initStart first (Telemetry API).
	e.initStartLocked(phaseInit)
	if cfg.CgroupDir != "" {
		f, err := os.Open(cfg.CgroupDir)
		if err != nil {
			return nil, fmt.Errorf("emulator cgroup: %w", err)
		}
		if isCgroup1(cfg.CgroupDir) {
			// cgroup v1: CLONE_INTO_CGROUP needs v2; join by PID after start.
			f.Close()
			e.cgroupProcs = filepath.Join(cfg.CgroupDir, "cgroup.procs")
		} else {
			e.cgroupFD = int(f.Fd())
			// f stays open for the Emulator's lifetime (closed in Shutdown).
			e.wg.Go(func() { <-e.closing; f.Close() })
		}
	}
	var err error
	if e.rtLn, err = net.Listen("tcp", cfg.RuntimeAddr); err != nil {
		close(e.closing)
		e.wg.Wait()
		return nil, fmt.Errorf("runtime API listen: %w", err)
	}
	if e.invLn, err = net.Listen("tcp", cfg.InvokeAddr); err != nil {
		e.rtLn.Close()
		close(e.closing)
		e.wg.Wait()
		return nil, fmt.Errorf("invoke endpoint listen: %w", err)
	}
	e.rtSrv = &http.Server{Handler: e.runtimeMux(), ReadHeaderTimeout: 10 * time.Second}
	e.invSrv = &http.Server{Handler: e.invokeMux(), ReadHeaderTimeout: 10 * time.Second}
	e.wg.Go(func() { e.serve(e.rtSrv, e.rtLn) })
	e.wg.Go(func() { e.serve(e.invSrv, e.invLn) })
	return e, nil
}

func (e *Emulator) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.log.Error("emulator server stopped", slog.String("addr", ln.Addr().String()), slog.String("error", err.Error()))
	}
}

// Start is New followed by Init: it returns once the Init phase completed.
// When Init fails the environment is shut down and the error returned.
func Start(ctx context.Context, cfg Config) (*Emulator, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.Init(ctx); err != nil {
		_, serr := e.Shutdown(context.WithoutCancel(ctx), ReasonFailure)
		return nil, errors.Join(err, serr)
	}
	return e, nil
}

// RuntimeAPI returns host:port of the Runtime API (AWS_LAMBDA_RUNTIME_API).
func (e *Emulator) RuntimeAPI() string { return e.rtLn.Addr().String() }

// InvokeURL returns the URL of the invoke endpoint compatible with AWS's
// emulator: http://host:port/2015-03-31/functions/function/invocations.
func (e *Emulator) InvokeURL() string {
	return "http://" + e.invLn.Addr().String() + invokePath
}

// FunctionARN returns the unqualified function ARN.
func (e *Emulator) FunctionARN() string {
	return "arn:aws:lambda:" + e.cfg.Region + ":" + e.cfg.AccountID + ":function:" + e.cfg.FunctionName
}

// Process describes one running child.
type Process struct {
	Name    string
	PID     int
	Runtime bool // the function bootstrap; otherwise an extension
}

// Processes lists the children alive now.
func (e *Emulator) Processes() []Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ps []Process
	if e.runtime != nil && e.runtime.alive() {
		ps = append(ps, Process{Name: e.runtime.name, PID: e.runtime.pid, Runtime: true})
	}
	for _, n := range slices.Sorted(maps.Keys(e.launched)) {
		if p := e.launched[n]; p.alive() {
			ps = append(ps, Process{Name: n, PID: p.pid})
		}
	}
	return ps
}

// ExtensionReady returns, for each extension of the current environment that
// has called /event/next, the time from its exec to that first call (for
// in-process extensions: from the start of Init). Benchmarks report it as
// the extension's ready time.
func (e *Emulator) ExtensionReady() map[string]time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]time.Duration{}
	for _, x := range e.exts {
		if !x.ready {
			continue
		}
		from := e.initStart
		if x.proc != nil {
			from = x.proc.startedAt
		}
		m[x.name] = x.readyAt.Sub(from)
	}
	return m
}

// Stats are counters of the environment and of the Telemetry API delivery.
type Stats struct {
	POSTs             int64 // POST attempts to subscribers
	Retries           int64 // attempts after a failed one
	FailedBatches     int64 // batches dropped after the last attempt
	Events            int64 // events delivered with a 2xx
	DroppedRecords    int64 // records dropped (overflow or failed batch)
	DroppedBytes      int64 // bytes of records dropped on overflow
	LogsDroppedEvents int64 // platform.logsDropped events queued
	Invocations       int64
	Inits             int64 // init phases run (1 + suppressed inits)
}

type statsBox struct {
	mu sync.Mutex // guards s
	s  Stats
}

func (b *statsBox) add(f func(*Stats)) {
	b.mu.Lock()
	f(&b.s)
	b.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.s
}

func (e *Emulator) initPhase() string { return e.phase }

// notifyLocked wakes every waiter; e.mu must be held.
func (e *Emulator) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Emulator) notify() {
	e.mu.Lock()
	e.notifyLocked()
	e.mu.Unlock()
}

// wait blocks until pred (called with e.mu held) is true or ctx ends.
func (e *Emulator) wait(ctx context.Context, pred func() bool) error {
	for {
		e.mu.Lock()
		if pred() {
			e.mu.Unlock()
			return nil
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.closing:
			return ErrClosed
		}
	}
}

// emitLocked produces one telemetry event to every subscriber (Telemetry API).
func (e *Emulator) emitLocked(typ string, record any) {
	e.emitRawLocked(typ, encodeEvent(time.Now(), typ, record))
}

func (e *Emulator) emitRawLocked(typ string, raw []byte) {
	if e.initializing {
		e.initLog = append(e.initLog, loggedEvent{typ, raw})
	}
	for _, s := range e.subs {
		s.add(typ, raw)
	}
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(Event{Type: typ, JSON: raw})
	}
}

// lineSink turns child output lines into function/extension events (Telemetry schema).
func (e *Emulator) lineSink(typ string) lineFunc {
	return func(line string) {
		raw := encodeEvent(time.Now(), typ, line)
		e.mu.Lock()
		e.emitRawLocked(typ, raw)
		e.mu.Unlock()
	}
}

// watch wakes waiters when p exits, and makes Shutdown wait for the last
// output lines of p (its readers end when the process group is gone).
func (e *Emulator) watch(p *process) {
	e.wg.Go(func() {
		<-p.exited
		e.notify()
		p.readers.Wait()
	})
}

// runtime-only variables hidden from extensions (Extensions API).
var runtimeOnlyEnv = []string{"AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT",
	"_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT", "_HANDLER"}

func (e *Emulator) environment(runtime bool) []string {
	c := e.cfg
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"TZ=:UTC",
		"AWS_LAMBDA_RUNTIME_API=" + e.RuntimeAPI(),
		"AWS_LAMBDA_FUNCTION_NAME=" + c.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=" + c.FunctionVersion,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE=" + onDemand,
		"AWS_REGION=" + c.Region,
		"AWS_DEFAULT_REGION=" + c.Region,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + c.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=" + e.instanceID,
		"LAMBDA_TASK_ROOT=" + filepath.Dir(c.Function),
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"_HANDLER=" + c.Handler,
	}
	env = append(env, c.Env...)
	if runtime {
		return env
	}
	// Extensions API: extensions get the function's environment minus the
	// runtime-only variables (RIE also strips every "_"-prefixed one).
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := cutEnv(kv)
		return slices.Contains(runtimeOnlyEnv, k) || (len(k) > 0 && k[0] == '_')
	})
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
