package emulator

import (
	"errors"
	"io"
	"net/http"
	"strconv"
)

// invokeMux serves the invoke endpoint of AWS's runtime interface emulator
// (RIE_NOTES.md): POST /2015-03-31/functions/function/invocations with optional
// X-Amzn-RequestId and X-Amzn-Trace-Id; the body is the payload.
func (e *Emulator) invokeMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST "+invokePath, e.handleInvoke)
	return m
}

func (e *Emulator) handleInvoke(w http.ResponseWriter, r *http.Request) {
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxResponse+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "read payload: "+err.Error())
		return
	}
	if len(payload) > maxResponse {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "payload exceeds 6 MB")
		return
	}
	opts := InvokeOptions{RequestID: r.Header.Get("X-Amzn-RequestId"), TraceHeader: r.Header.Get("X-Amzn-Trace-Id")}
	wrote := false
	write := func(res InvokeResult) {
		if wrote {
			return
		}
		wrote = true
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-RequestId", res.RequestID)
		if res.Status != StatusSuccess {
			h.Set("X-Amz-Function-Error", "Unhandled")
		}
		h.Set("Content-Length", strconv.Itoa(len(res.Response)))
		w.WriteHeader(http.StatusOK)
		w.Write(res.Response) // the client may have gone; the invocation goes on
		if err := http.NewResponseController(w).Flush(); err != nil {
			e.log.Debug("invoke response flush", "error", err.Error())
		}
	}
	res, err := e.invoke(r.Context(), payload, opts, write)
	switch {
	case errors.Is(err, ErrClosed):
		if !wrote {
			writeError(w, http.StatusServiceUnavailable, "ServiceException", "emulator is shut down")
		}
	default: // an init failure still yields an error result
		write(res)
	}
}
