package emulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"syscall"
	"time"
)

// ErrClosed is returned after Shutdown.
var ErrClosed = errors.New("emulator: shut down")

// InitError reports a failed Init phase (Lambda lifecycle).
type InitError struct {
	Phase     string // "init", or "invoke" for a suppressed init
	Status    Status
	ErrorType string
	Detail    string
}

func (e *InitError) Error() string {
	return fmt.Sprintf("emulator init (phase %s): %s %s: %s", e.Phase, e.Status, e.ErrorType, e.Detail)
}

// InvokeOptions are the invoke request's headers.
type InvokeOptions struct {
	RequestID   string // X-Amzn-RequestId; a new UUID when empty
	TraceHeader string // X-Amzn-Trace-Id; enables tracing in events (Extensions API, Telemetry schema)
}

// InvokeResult describes one finished Invoke phase (the platform.report).
type InvokeResult struct {
	RequestID       string
	Status          Status
	ErrorType       string
	Response        []byte        // the function's response, or its error JSON
	Duration        time.Duration // report durationMs: start → last extension's next
	RuntimeDuration time.Duration // runtimeDone durationMs: start → runtime's next
	PostRuntime     time.Duration // runtime's next → last extension's next (Lambda lifecycle)
	BilledDuration  time.Duration // ceil to 1 ms
	MaxMemoryUsedMB int           // VmHWM of the function process, MiB
	InitDuration    time.Duration // non-zero on the first invoke after a cold init
}

// ShutdownResult tells how the extensions left.
type ShutdownResult struct {
	Reason string
	// ExtensionExit is, per extension registered for SHUTDOWN, the time from
	// the SHUTDOWN event to its exit (or to its SIGKILL).
	ExtensionExit map[string]time.Duration
	// Killed lists processes that received SIGKILL (Lambda lifecycle).
	Killed []string
}

type failure struct {
	status  Status
	errType string
	detail  string
}

// Init runs the Init phase (Lambda lifecycle): extensions start in parallel and
// register, registration closes, the runtime starts, and Init completes when
// the runtime and every extension have called next, within InitTimeout.
func (e *Emulator) Init(ctx context.Context) error {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	if e.Stats().Inits > 0 {
		return errors.New("emulator: Init called twice")
	}
	if err := e.initLocked(ctx, phaseInit); err != nil {
		return err
	}
	e.freeze()
	return nil
}

func (e *Emulator) initLocked(ctx context.Context, phase string) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if phase != phaseInit || e.initStart.IsZero() {
		e.initStartLocked(phase) // the first one was emitted by New
	}
	start := e.initStart
	e.initializing, e.registrationOpen, e.subscriptionsOpen = true, true, true
	// The previous generation's processes and extensions were cleared by
	// stopProcesses; in-process extensions may have registered already.
	e.initFailed, e.runtimeReady, e.runtime, e.lastHWM = "", false, nil, 0
	e.mu.Unlock()
	e.stats.add(func(s *Stats) { s.Inits++ })
	ictx, cancel := context.WithDeadline(ctx, start.Add(e.cfg.InitTimeout))
	defer cancel()

	// Extensions API: every extension starts in parallel, before the runtime.
	for _, path := range e.cfg.Extensions {
		p, err := startProcess(path, e.environment(false), e.cgroupFD, e.cgroupProcs, e.lineSink(TypeExtensionLog), e.cfg.Stdout, e.cfg.Stderr)
		if err != nil {
			return e.initFailure(phase, start, failure{StatusError, "Extension.LaunchError", err.Error()})
		}
		e.mu.Lock()
		e.launched[p.name] = p
		e.mu.Unlock()
		e.watch(p)
	}
	var f *failure
	err := e.wait(ictx, func() bool {
		if f = e.initProblemLocked(); f != nil {
			return true
		}
		for _, n := range e.cfg.extensionNames() {
			if e.byName[n] == nil {
				return false
			}
		}
		return true
	})
	if f == nil && err != nil {
		f = e.initTimeout(err, "extensions not registered: "+strings.Join(e.missing(func(x *extension) bool { return x != nil }), ", "))
	}
	if f != nil {
		return e.initFailure(phase, start, *f)
	}

	e.mu.Lock()
	e.registrationOpen = false // Extensions API: Extension.RegistrationClosed afterwards
	e.mu.Unlock()
	rt, err := startProcess(e.cfg.Function, e.environment(true), e.cgroupFD, e.cgroupProcs, e.lineSink(TypeFunction), e.cfg.Stdout, e.cfg.Stderr)
	if err != nil {
		return e.initFailure(phase, start, failure{StatusError, "Runtime.InvalidEntrypoint", err.Error()})
	}
	e.mu.Lock()
	e.runtime = rt
	e.mu.Unlock()
	e.watch(rt)
	err = e.wait(ictx, func() bool {
		if f = e.initProblemLocked(); f != nil {
			return true
		}
		if !rt.alive() {
			f = &failure{StatusError, errRuntimeExit, "the runtime exited during init: " + exitText(rt)}
			return true
		}
		if !e.runtimeReady {
			return false
		}
		for _, x := range e.exts {
			if !x.ready {
				return false
			}
		}
		return true
	})
	if f == nil && err != nil {
		what := strings.Join(e.missing(func(x *extension) bool { return x != nil && x.ready }), ", ")
		e.mu.Lock()
		if !e.runtimeReady {
			what = strings.TrimPrefix(what+", runtime", ", ")
		}
		e.mu.Unlock()
		f = e.initTimeout(err, "not ready (no call to next): "+what)
	}
	if f != nil {
		return e.initFailure(phase, start, *f)
	}
	e.mu.Lock()
	d := time.Since(start)
	e.emitLocked(TypeInitReport, initReportRecord{InitializationType: onDemand, Phase: phase, Status: StatusSuccess, Metrics: durationMetrics{ms(d)}})
	// Telemetry API: subscriptions close once Init is over.
	e.initializing, e.subscriptionsOpen, e.initLog, e.needsInit = false, false, nil, false
	e.initDuration, e.reportInitDur = d, phase == phaseInit
	e.mu.Unlock()
	return nil
}

// initStartLocked begins an Init phase with platform.initStart (Telemetry schema).
func (e *Emulator) initStartLocked(phase string) {
	e.phase, e.initStart = phase, time.Now()
	e.emitLocked(TypeInitStart, initStartRecord{InitializationType: onDemand, Phase: phase,
		FunctionName: e.cfg.FunctionName, FunctionVersion: e.cfg.FunctionVersion,
		InstanceID: e.instanceID, InstanceMaxMemory: int64(e.cfg.MemoryMB) << 20})
}

func (e *Emulator) initTimeout(err error, detail string) *failure {
	if errors.Is(err, context.DeadlineExceeded) {
		return &failure{StatusTimeout, errSandboxTimedout, fmt.Sprintf("init exceeded %s; %s", e.cfg.InitTimeout, detail)}
	}
	return &failure{StatusFailure, "Sandbox.Failure", err.Error()}
}

// missing lists the configured extension names whose state fails ok.
func (e *Emulator) missing(ok func(*extension) bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for _, n := range e.cfg.extensionNames() {
		if !ok(e.byName[n]) {
			names = append(names, n)
		}
	}
	return names
}

// initProblemLocked reports an init/error call or an extension that died.
func (e *Emulator) initProblemLocked() *failure {
	if e.initFailed != "" {
		return &failure{StatusError, e.initFailed, "init/error reported"}
	}
	for _, n := range slices.Sorted(maps.Keys(e.launched)) {
		if p := e.launched[n]; !p.alive() {
			return &failure{StatusError, errExtensionCrash, "extension " + n + " exited during init: " + exitText(p)}
		}
	}
	return nil
}

func exitText(p *process) string {
	if p.exitErr != nil {
		return p.exitErr.Error()
	}
	return "exit status 0"
}

// initFailure emits the failed init's events and stops every process.
func (e *Emulator) initFailure(phase string, start time.Time, f failure) error {
	e.mu.Lock()
	if !e.runtimeReady {
		e.emitLocked(TypeInitRuntimeDone, initRuntimeDoneRecord{InitializationType: onDemand, Phase: phase, Status: f.status, ErrorType: f.errType})
	}
	e.emitLocked(TypeInitReport, initReportRecord{InitializationType: onDemand, Phase: phase, Status: f.status, ErrorType: f.errType, Metrics: durationMetrics{ms(time.Since(start))}})
	e.initializing, e.registrationOpen, e.subscriptionsOpen, e.initLog = false, false, false, nil
	e.mu.Unlock()
	e.stopProcesses(ReasonFailure)
	e.mu.Lock()
	e.needsInit = true
	e.mu.Unlock()
	e.log.Warn("init failed", "phase", phase, "error_type", f.errType, "detail", f.detail)
	return &InitError{Phase: phase, Status: f.status, ErrorType: f.errType, Detail: f.detail}
}

// Invoke runs one Invoke phase (Lambda lifecycle) and returns when it is over: the
// runtime responded and called next, every extension called next, and the
// platform.report was produced. After a timeout or a crash the environment
// is reset (SHUTDOWN with reason timeout/failure) and the next Invoke runs a
// suppressed init (phase "invoke").
func (e *Emulator) Invoke(ctx context.Context, payload []byte, opts InvokeOptions) (InvokeResult, error) {
	return e.invoke(ctx, payload, opts, nil)
}

// invoke is Invoke with a callback as soon as the response is known (the
// invoke endpoint answers the client then, like Lambda).
func (e *Emulator) invoke(ctx context.Context, payload []byte, opts InvokeOptions, onResponse func(InvokeResult)) (InvokeResult, error) {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	e.mu.Lock()
	closed, needsInit := e.closed, e.needsInit
	e.mu.Unlock()
	if closed {
		return InvokeResult{}, ErrClosed
	}
	ctx = context.WithoutCancel(ctx) // a client going away does not stop a Lambda invocation
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	id := opts.RequestID
	if id == "" {
		id = newUUID()
	}
	e.thaw(false)
	if needsInit {
		if err := e.initLocked(ctx, phaseInvoke); err != nil {
			var ie *InitError
			errors.As(err, &ie)
			res := InvokeResult{RequestID: id, Status: StatusError, ErrorType: ie.ErrorType, Response: mustJSON(apiError{ie.ErrorType, ie.Detail})}
			return res, err
		}
	}
	e.stats.add(func(s *Stats) { s.Invocations++ })
	now := time.Now()
	inv := &invocation{id: id, payload: payload, start: now, deadline: now.Add(e.cfg.Timeout), invokedARN: e.FunctionARN()}
	if opts.TraceHeader != "" {
		inv.trace = &traceContext{SpanID: randomHex(8), Type: tracingType, Value: opts.TraceHeader}
	}
	e.mu.Lock()
	rt := e.runtime
	e.emitLocked(TypeStart, startRecord{RequestID: id, Version: e.cfg.FunctionVersion, Tracing: inv.trace})
	for _, x := range e.exts {
		if x.has(eventInvoke) && !x.gone() {
			ev := invokeEvent{EventType: eventInvoke, DeadlineMs: inv.deadline.UnixMilli(), RequestID: id, InvokedFunctionARN: inv.invokedARN}
			if inv.trace != nil {
				ev.Tracing = &traceContext{Type: tracingType, Value: inv.trace.Value}
			}
			x.queueLocked(eventInvoke, ev)
		}
	}
	e.pending, e.cur = inv, inv
	e.notifyLocked()
	e.mu.Unlock()

	dctx, cancel := context.WithDeadline(ctx, inv.deadline)
	defer cancel()
	crashed := false
	alive := func() bool {
		if !rt.alive() {
			crashed = true
		}
		return crashed
	}
	// The runtime responds (or posts an error).
	err := e.wait(dctx, func() bool { return alive() || inv.responded })
	if err == nil && !crashed && onResponse != nil {
		onResponse(e.partialResult(inv))
	}
	// The runtime calls next: platform.runtimeDone (emitted by its handler).
	if err == nil && !crashed {
		err = e.wait(dctx, func() bool {
			e.sampleMemoryLocked()
			return alive() || inv.runtimeDone
		})
	}
	// Every extension calls next: only then platform.report (Telemetry API).
	if err == nil && !crashed {
		err = e.wait(dctx, func() bool {
			for _, x := range e.exts {
				if !x.idle() {
					return false
				}
			}
			return true
		})
	}
	if errors.Is(err, ErrClosed) {
		return InvokeResult{}, err
	}
	if crashed || err != nil {
		rt.sync(logSyncWait) // the last lines before runtimeDone
	}
	end := time.Now()
	e.mu.Lock()
	e.sampleMemoryLocked()
	reset, extDied := "", ""
	for _, n := range slices.Sorted(maps.Keys(e.launched)) {
		if !e.launched[n].alive() && extDied == "" {
			extDied = errExtensionCrash
			if x := e.byName[n]; x != nil && x.closed {
				extDied = "Extension.ExitError"
			}
		}
	}
	switch {
	case crashed:
		reset = ReasonFailure
		e.runtimeDoneLocked(inv, end, StatusError, errRuntimeExit)
		inv.status, inv.doneErrType = StatusError, errRuntimeExit
		if !inv.isError {
			inv.response = mustJSON(apiError{errRuntimeExit, fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", id, exitText(rt))})
		}
	case err != nil:
		reset = ReasonTimeout
		e.runtimeDoneLocked(inv, end, StatusTimeout, errSandboxTimedout)
		inv.status, inv.doneErrType = StatusTimeout, errSandboxTimedout
		inv.response = mustJSON(apiError{errSandboxTimedout, fmt.Sprintf("%s %s Task timed out after %.2f seconds", end.UTC().Format(time.RFC3339Nano), id, e.cfg.Timeout.Seconds())})
	case extDied != "":
		// An extension died during the invoke: the environment is reset
		// (Lambda lifecycle) and the invoke reports the extension's failure.
		reset = ReasonFailure
		inv.status, inv.doneErrType = StatusError, extDied
	}
	e.pending = nil
	res := e.reportLocked(inv, end)
	e.cur = nil
	e.mu.Unlock()
	if reset != "" {
		e.stopProcesses(reset)
		e.mu.Lock()
		e.needsInit = true
		e.mu.Unlock()
	} else {
		e.freeze()
	}
	if onResponse != nil {
		onResponse(res)
	}
	return res, nil
}

func (e *Emulator) partialResult(inv *invocation) InvokeResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := InvokeResult{RequestID: inv.id, Status: StatusSuccess, Response: inv.response}
	if inv.isError {
		r.Status, r.ErrorType = StatusError, inv.errorType
	}
	return r
}

// sampleMemoryLocked keeps the function's peak RSS while it is alive.
func (e *Emulator) sampleMemoryLocked() {
	if e.runtime != nil && e.runtime.alive() {
		if m := maxMemoryUsedMB(e.runtime.pid); m > e.lastHWM {
			e.lastHWM = m
		}
	}
}

// reportLocked emits platform.report (Telemetry schema ReportMetrics).
func (e *Emulator) reportLocked(inv *invocation, end time.Time) InvokeResult {
	d := end.Sub(inv.start)
	durMs := ms(d)
	m := reportMetrics{DurationMs: durMs, BilledDurationMs: int64(math.Ceil(durMs)), MemorySizeMB: e.cfg.MemoryMB, MaxMemoryUsedMB: e.lastHWM}
	res := InvokeResult{RequestID: inv.id, Status: inv.status, ErrorType: inv.doneErrType, Response: inv.response,
		Duration: d, RuntimeDuration: inv.doneAt.Sub(inv.start), PostRuntime: end.Sub(inv.doneAt),
		BilledDuration: time.Duration(m.BilledDurationMs) * time.Millisecond, MaxMemoryUsedMB: m.MaxMemoryUsedMB}
	if e.reportInitDur {
		v := ms(e.initDuration)
		m.InitDurationMs = &v
		res.InitDuration = e.initDuration
		e.reportInitDur = false
	}
	e.emitLocked(TypeReport, reportRecord{RequestID: inv.id, Status: inv.status, ErrorType: inv.doneErrType, Metrics: m, Tracing: inv.trace})
	return res
}

// Shutdown runs the Shutdown phase (Extensions API, Lambda lifecycle) with reason (default
// spindown), then closes the listeners and waits for every goroutine.
func (e *Emulator) Shutdown(ctx context.Context, reason string) (ShutdownResult, error) {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ShutdownResult{}, ErrClosed
	}
	e.mu.Unlock()
	if reason == "" {
		reason = ReasonSpindown
	}
	res := e.stopProcesses(reason)
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	close(e.closing)
	err := errors.Join(e.rtSrv.Shutdown(ctx), e.invSrv.Shutdown(ctx))
	e.client.CloseIdleConnections()
	e.wg.Wait()
	return res, err
}

// stopProcesses is the Shutdown phase of one environment generation: pending
// telemetry is flushed (≤1 s), the runtime is stopped (SIGTERM, RuntimeShutdown,
// SIGKILL), extensions registered for SHUTDOWN get it with deadline = start +
// ShutdownTimeout and are SIGKILLed at the deadline (Lambda lifecycle).
func (e *Emulator) stopProcesses(reason string) ShutdownResult {
	lateReport := e.cfg.ReportAfterShutdown
	e.thaw(lateReport)
	start := time.Now()
	deadline := start.Add(e.cfg.ShutdownTimeout)
	res := ShutdownResult{Reason: reason, ExtensionExit: map[string]time.Duration{}}
	if !lateReport {
		fctx, cancel := context.WithTimeout(context.Background(), min(time.Second, e.cfg.ShutdownTimeout/2))
		e.wait(fctx, func() bool { // best effort: a slow subscriber only delays by the bound
			idle := true
			for _, s := range e.subs {
				if !s.flush() {
					idle = false
				}
			}
			return idle
		})
		cancel()
	}

	e.mu.Lock()
	rt := e.runtime
	e.mu.Unlock()
	if rt != nil && rt.alive() {
		rt.signal(syscall.SIGTERM)
		if !rt.waitExit(e.cfg.RuntimeShutdown) {
			rt.kill()
			res.Killed = append(res.Killed, rt.name)
		}
	}

	e.mu.Lock()
	sentAt := time.Now()
	var kill []*process
	for _, n := range slices.Sorted(maps.Keys(e.launched)) {
		p, x := e.launched[n], e.byName[n]
		if p.alive() && (x == nil || !x.has(eventShutdown)) {
			kill = append(kill, p) // not registered for SHUTDOWN: SIGKILL
		}
	}
	for _, x := range e.exts {
		if x.has(eventShutdown) && !x.gone() {
			x.queueLocked(eventShutdown, shutdownEvent{EventType: eventShutdown, ShutdownReason: reason, DeadlineMs: deadline.UnixMilli()})
		}
	}
	e.notifyLocked()
	e.mu.Unlock()
	if lateReport {
		// Telemetry API: the last invocation's report reaches extensions after
		// SHUTDOWN in Lambda; RIE flushes before it (RIE_NOTES item 27).
		e.releaseTelemetry()
	}
	for _, p := range kill {
		p.kill()
		res.Killed = append(res.Killed, p.name)
	}
	dctx, cancel := context.WithDeadline(context.Background(), deadline)
	e.wait(dctx, func() bool { // ends at the deadline at the latest
		for _, x := range e.exts {
			if x.has(eventShutdown) && !x.gone() {
				return false
			}
		}
		return true
	})
	cancel()

	e.mu.Lock()
	var late []*extension
	for _, x := range e.exts {
		if x.has(eventShutdown) && !x.gone() {
			late = append(late, x)
		}
	}
	e.mu.Unlock()
	for _, x := range late {
		if x.proc != nil {
			x.proc.kill()
		}
		res.Killed = append(res.Killed, x.name)
	}
	killedAt := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.exts {
		if !x.has(eventShutdown) {
			continue
		}
		switch {
		case slices.Contains(late, x):
			res.ExtensionExit[x.name] = killedAt.Sub(sentAt)
		case x.proc != nil:
			res.ExtensionExit[x.name] = max(0, x.proc.exitedAt.Sub(sentAt))
		case x.shutdown:
			res.ExtensionExit[x.name] = max(0, x.shutAt.Sub(sentAt))
		}
	}
	for _, x := range e.exts {
		x.closed = true
	}
	for _, s := range e.subs {
		s.close()
	}
	e.subs, e.runtime, e.pending = nil, nil, nil
	e.launched, e.exts, e.byName = map[string]*process{}, map[string]*extension{}, map[string]*extension{}
	// Registration reopens for the next generation's init (Lambda lifecycle reset).
	e.initLog, e.initializing, e.registrationOpen, e.subscriptionsOpen = nil, true, true, true
	e.notifyLocked()
	slices.Sort(res.Killed)
	return res
}
