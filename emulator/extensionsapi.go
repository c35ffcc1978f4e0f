package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Extensions API headers.
const (
	hdrExtName      = "Lambda-Extension-Name"
	hdrExtID        = "Lambda-Extension-Identifier"
	hdrExtFeature   = "Lambda-Extension-Accept-Feature"
	hdrExtErrorType = "Lambda-Extension-Function-Error-Type"
	hdrExtEventID   = "Lambda-Extension-Event-Identifier"
	maxExtensions   = 10 // Extensions API
	eventInvoke     = "INVOKE"
	eventShutdown   = "SHUTDOWN"
	stateReady      = "Ready"
	stateInitError  = "InitError"
	stateExitError  = "ExitError"
)

// extension is one registered extension (external or in-process).
type extension struct {
	name      string
	id        string
	events    []string
	proc      *process // nil for in-process extensions
	ready     bool     // called /event/next at least once
	readyAt   time.Time
	waiting   bool     // blocked in /event/next with nothing queued
	queue     []queued // events waiting to be returned by /event/next
	errorType string   // set by init/error or exit/error
	closed    bool     // exit/error called: later calls are rejected (Extensions API)
	shutdown  bool     // SHUTDOWN returned by /event/next
	shutAt    time.Time
	sub       *subscriber
}

func (x *extension) has(ev string) bool { return slices.Contains(x.events, ev) }

// gone reports whether the extension no longer takes part in the lifecycle.
func (x *extension) gone() bool {
	if x.proc != nil {
		return !x.proc.alive()
	}
	return x.closed || x.shutdown
}

// idle reports whether the extension has finished the current invoke (Lambda lifecycle).
func (x *extension) idle() bool { return x.gone() || (x.waiting && len(x.queue) == 0) }

type registerRequest struct {
	Events            []string        `json:"events"`
	ConfigurationKeys json.RawMessage `json:"configurationKeys"`
}

type registerResponse struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	AccountID       string `json:"accountId,omitempty"`
}

// handleRegister serves POST /2020-01-01/extension/register (Extensions API).
func (e *Emulator) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(hdrExtName)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "read body: "+err.Error())
		return
	}
	var req registerRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "register body: "+err.Error())
			return
		}
	}
	if len(req.ConfigurationKeys) > 0 {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "configurationKeys are deprecated")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case name == "":
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "missing "+hdrExtName+" header")
		return
	case !e.registrationOpen:
		writeError(w, http.StatusForbidden, "Extension.RegistrationClosed", "extension registration is closed")
		return
	case e.byName[name] != nil:
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState", "extension "+name+" is already registered")
		return
	case !slices.Contains(e.cfg.extensionNames(), name):
		// Extensions API: the name must be the file name of a launched extension.
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "no extension named "+name+" was launched (the name must be the executable's file name)")
		return
	case len(e.exts) >= maxExtensions:
		writeError(w, http.StatusForbidden, "Extension.TooManyExtensions", "at most 10 extensions may register")
		return
	}
	for _, ev := range req.Events {
		if ev != eventInvoke && ev != eventShutdown {
			writeError(w, http.StatusForbidden, "Extension.InvalidEventType", "unknown event type "+ev)
			return
		}
	}
	x := &extension{name: name, id: newUUID(), events: slices.Compact(slices.Sorted(slices.Values(req.Events))), proc: e.launched[name]}
	e.exts[x.id] = x
	e.byName[name] = x
	e.notifyLocked()
	resp := registerResponse{FunctionName: e.cfg.FunctionName, FunctionVersion: e.cfg.FunctionVersion, Handler: e.cfg.Handler}
	for f := range strings.SplitSeq(r.Header.Get(hdrExtFeature), ",") {
		if strings.TrimSpace(f) == "accountId" {
			resp.AccountID = e.cfg.AccountID
		}
	}
	w.Header().Set(hdrExtID, x.id)
	writeJSON(w, http.StatusOK, resp)
}

// extensionFromHeader resolves Lambda-Extension-Identifier or writes the
// 403 Lambda answers (Telemetry API). e.mu must be held.
func (e *Emulator) extensionFromHeader(w http.ResponseWriter, r *http.Request) (*extension, bool) {
	id := r.Header.Get(hdrExtID)
	if id == "" {
		writeError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "missing "+hdrExtID+" header")
		return nil, false
	}
	x := e.exts[id]
	if x == nil {
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionIdentifier", "unknown extension identifier")
		return nil, false
	}
	if x.closed {
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState", "extension "+x.name+" reported an error and may make no further calls")
		return nil, false
	}
	return x, true
}

// handleExtensionNext serves GET /2020-01-01/extension/event/next (Extensions API):
// a long poll that ends with the next INVOKE or SHUTDOWN event.
func (e *Emulator) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	x, ok := e.extensionFromHeader(w, r)
	if !ok {
		e.mu.Unlock()
		return
	}
	if !x.ready {
		x.ready, x.readyAt = true, time.Now()
		// Telemetry schema platform.extension: emitted when the extension is ready.
		e.emitLocked(TypeExtension, extensionRecord{Name: x.name, State: stateReady, Events: x.events})
	}
	x.waiting = true
	e.notifyLocked()
	e.mu.Unlock()

	var ev queued
	err := e.wait(r.Context(), func() bool {
		if len(x.queue) > 0 && !x.closed {
			ev, x.queue = x.queue[0], x.queue[1:]
			x.waiting = false
			if ev.kind == eventShutdown {
				x.shutdown, x.shutAt = true, time.Now()
			}
			e.notifyLocked()
			return true
		}
		return x.closed
	})
	if err != nil || ev.raw == nil {
		e.mu.Lock()
		x.waiting = false
		e.notifyLocked()
		e.mu.Unlock()
		if ev.raw == nil && err == nil {
			writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState", "extension closed")
		}
		return
	}
	if ev.kind == eventInvoke {
		w.Header().Set(hdrExtEventID, newUUID())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(ev.raw) // a vanished extension is detected by its process exit
}

type errorBody struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

// handleExtensionError serves init/error and exit/error (Extensions API): 202,
// then the extension may make no further call.
func (e *Emulator) handleExtensionError(initErr bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "read body: "+err.Error())
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		x, ok := e.extensionFromHeader(w, r)
		if !ok {
			return
		}
		typ := r.Header.Get(hdrExtErrorType)
		if typ == "" {
			writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "missing "+hdrExtErrorType+" header")
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "error body: "+err.Error())
				return
			}
		}
		if initErr && !e.initializing {
			writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState", "init/error is only valid during Init")
			return
		}
		x.errorType, x.closed = typ, true
		state := stateExitError
		if initErr {
			state = stateInitError
			e.initFailed = errExtensionInit
		}
		e.emitLocked(TypeExtension, extensionRecord{Name: x.name, State: state, Events: x.events, ErrorType: typ})
		e.notifyLocked()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
	}
}

// queued is an event waiting for the extension's /event/next.
type queued struct {
	kind string // eventInvoke or eventShutdown
	raw  []byte
}

// queueLocked hands an event to an extension's /event/next.
func (x *extension) queueLocked(kind string, v any) {
	x.queue = append(x.queue, queued{kind, mustJSON(v)})
}

type invokeEvent struct {
	EventType          string        `json:"eventType"`
	DeadlineMs         int64         `json:"deadlineMs"`
	RequestID          string        `json:"requestId"`
	InvokedFunctionARN string        `json:"invokedFunctionArn"`
	Tracing            *traceContext `json:"tracing,omitempty"`
}

type shutdownEvent struct {
	EventType      string `json:"eventType"`
	ShutdownReason string `json:"shutdownReason"`
	DeadlineMs     int64  `json:"deadlineMs"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("emulator: " + err.Error())
	}
	return b
}
