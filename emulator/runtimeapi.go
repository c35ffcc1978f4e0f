package emulator

import (
	"io"
	"net/http"
	"strconv"
	"time"
)

// Runtime API headers (Runtime API 2018-06-01, as aws-lambda-go reads them).
const (
	hdrRequestID   = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline    = "Lambda-Runtime-Deadline-Ms"
	hdrInvokedARN  = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID     = "Lambda-Runtime-Trace-Id"
	hdrFnErrorType = "Lambda-Runtime-Function-Error-Type"
	maxResponse    = 6 << 20                // synchronous response payload limit
	logSyncWait    = 250 * time.Millisecond // bound of the log sync before runtimeDone
)

// invocation is one Invoke phase (Lambda lifecycle).
type invocation struct {
	id          string
	payload     []byte
	trace       *traceContext
	invokedARN  string
	start       time.Time // platform.start
	deadline    time.Time
	received    time.Time // the runtime's /next returned it
	respStart   time.Time
	respEnd     time.Time
	responded   bool
	response    []byte
	errorType   string // set when the runtime posted /error
	isError     bool
	runtimeDone bool // platform.runtimeDone was emitted
	doneAt      time.Time
	status      Status
	doneErrType string
}

// handleRuntimeNext serves GET /runtime/invocation/next. Calling it ends the
// runtime's init (platform.initRuntimeDone) or its current invocation
// (platform.runtimeDone, Telemetry API timing), then long-polls for an invoke.
func (e *Emulator) handleRuntimeNext(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	rt := e.runtime
	e.mu.Unlock()
	if rt != nil {
		// Lines the runtime wrote before asking for its next event become
		// records before initRuntimeDone/runtimeDone.
		rt.sync(logSyncWait)
	}
	e.mu.Lock()
	now := time.Now()
	if !e.runtimeReady && e.initializing {
		e.runtimeReady = true
		e.emitLocked(TypeInitRuntimeDone, initRuntimeDoneRecord{InitializationType: onDemand, Phase: e.initPhase(), Status: StatusSuccess})
	}
	e.runtimeReady = true
	if inv := e.cur; inv != nil && inv.received.After(time.Time{}) && !inv.runtimeDone {
		if !inv.responded { // next without a response: Lambda treats it as an empty response
			inv.responded, inv.respStart, inv.respEnd = true, now, now
		}
		st, et := StatusSuccess, ""
		if inv.isError {
			st, et = StatusError, inv.errorType
		}
		e.runtimeDoneLocked(inv, now, st, et)
	}
	e.notifyLocked()
	e.mu.Unlock()

	var inv *invocation
	err := e.wait(r.Context(), func() bool {
		if e.pending != nil {
			inv, e.pending = e.pending, nil
			inv.received = time.Now()
			e.notifyLocked()
			return true
		}
		return false
	})
	if err != nil {
		return // the runtime went away or the emulator is closing
	}
	h := w.Header()
	h.Set(hdrRequestID, inv.id)
	h.Set(hdrDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(hdrInvokedARN, inv.invokedARN)
	if inv.trace != nil {
		h.Set(hdrTraceID, inv.trace.Value)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(inv.payload) // a vanished runtime is detected by its process exit
}

// runtimeDoneLocked emits platform.runtimeDone (Telemetry schema) once.
func (e *Emulator) runtimeDoneLocked(inv *invocation, now time.Time, st Status, errType string) {
	if inv.runtimeDone {
		return
	}
	inv.runtimeDone, inv.doneAt, inv.status, inv.doneErrType = true, now, st, errType
	rec := runtimeDoneRecord{RequestID: inv.id, Status: st, ErrorType: errType, Tracing: inv.trace,
		Metrics: runtimeDoneMetrics{DurationMs: ms(now.Sub(inv.start)), ProducedBytes: len(inv.response)}}
	if inv.responded {
		rec.Spans = []span{
			newSpan("responseLatency", inv.start, inv.respStart.Sub(inv.start)),
			newSpan("responseDuration", inv.respStart, inv.respEnd.Sub(inv.respStart)),
		}
	}
	e.emitLocked(TypeRuntimeDone, rec)
}

// currentLocked finds the invocation the runtime answers, or writes Lambda's error.
func (e *Emulator) currentLocked(w http.ResponseWriter, id string) (*invocation, bool) {
	inv := e.cur
	if inv == nil || inv.id != id || inv.received.IsZero() {
		writeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown request ID "+id)
		return nil, false
	}
	if inv.responded || inv.runtimeDone {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" already has a response")
		return nil, false
	}
	return inv, true
}

// handleRuntimeResponse serves POST /runtime/invocation/{id}/response.
func (e *Emulator) handleRuntimeResponse(w http.ResponseWriter, r *http.Request) {
	respStart := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponse+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "read response: "+err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inv, ok := e.currentLocked(w, r.PathValue("id"))
	if !ok {
		return
	}
	inv.responded, inv.respStart, inv.respEnd = true, respStart, time.Now()
	if len(body) > maxResponse {
		inv.isError, inv.errorType = true, "Function.ResponseSizeTooLarge"
		inv.response = mustJSON(apiError{inv.errorType, "Response payload size exceeded maximum allowed payload size (6291556 bytes)."})
		e.notifyLocked()
		writeError(w, http.StatusRequestEntityTooLarge, inv.errorType, "response too large")
		return
	}
	inv.response = body
	e.notifyLocked()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// handleRuntimeError serves POST /runtime/invocation/{id}/error.
func (e *Emulator) handleRuntimeError(w http.ResponseWriter, r *http.Request) {
	respStart := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponse))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "read error: "+err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inv, ok := e.currentLocked(w, r.PathValue("id"))
	if !ok {
		return
	}
	typ := r.Header.Get(hdrFnErrorType)
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	inv.responded, inv.respStart, inv.respEnd = true, respStart, time.Now()
	inv.isError, inv.errorType, inv.response = true, typ, body
	e.notifyLocked()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// handleRuntimeInitError serves POST /runtime/init/error: Init fails.
func (e *Emulator) handleRuntimeInitError(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)) // the body is informational
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.initializing {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "init/error is only valid during Init")
		return
	}
	typ := r.Header.Get(hdrFnErrorType)
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	e.initFailed = typ
	e.notifyLocked()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}
