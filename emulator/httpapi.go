package emulator

import (
	"encoding/json"
	"net/http"
)

// apiError is Lambda's error body: {"errorType","errorMessage"} (Extensions API, Telemetry API).
type apiError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) // a client that went away is not our error
}

func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	writeJSON(w, status, apiError{ErrorType: errorType, ErrorMessage: msg})
}

const invokePath = "/2015-03-31/functions/function/invocations"

// runtimeMux serves the three APIs on the Runtime API address (Extensions API, Telemetry API).
func (e *Emulator) runtimeMux() *http.ServeMux {
	m := http.NewServeMux()
	// Runtime API 2018-06-01.
	m.HandleFunc("GET /2018-06-01/runtime/invocation/next", e.handleRuntimeNext)
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", e.handleRuntimeResponse)
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", e.handleRuntimeError)
	m.HandleFunc("POST /2018-06-01/runtime/init/error", e.handleRuntimeInitError)
	// Extensions API 2020-01-01.
	m.HandleFunc("POST /2020-01-01/extension/register", e.handleRegister)
	m.HandleFunc("GET /2020-01-01/extension/event/next", e.handleExtensionNext)
	m.HandleFunc("POST /2020-01-01/extension/init/error", e.handleExtensionError(true))
	m.HandleFunc("POST /2020-01-01/extension/exit/error", e.handleExtensionError(false))
	// Telemetry API 2022-07-01.
	m.HandleFunc("PUT /2022-07-01/telemetry", e.handleTelemetrySubscribe)
	return m
}
