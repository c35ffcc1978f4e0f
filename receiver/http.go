package receiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Content types of OTLP/HTTP.
const (
	ctProtobuf = "application/x-protobuf"
	ctJSON     = "application/json"
)

// Paths of OTLP/HTTP.
var paths = map[string]Signal{"/v1/traces": Traces, "/v1/metrics": Metrics, "/v1/logs": Logs}

func (r *Receiver) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: min(readHeaderTimeout, r.cfg.ReadTimeout),
		// ReadTimeout bounds header and body together: a body dripped
		// slowly is cut off.
		ReadTimeout:    r.cfg.ReadTimeout,
		WriteTimeout:   r.cfg.ReadTimeout + writeTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
	}
}

// httpError is a 4xx answer, with the OTLP Status body.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	sig, ok := paths[req.URL.Path]
	if !ok {
		r.fail(w, ctProtobuf, &httpError{http.StatusNotFound, "not an OTLP path: use /v1/traces, /v1/metrics or /v1/logs"})
		return
	}
	ct := contentType(req.Header.Get("Content-Type"))
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(w, ct, &httpError{http.StatusMethodNotAllowed, "OTLP takes POST"})
		return
	}
	if ct != ctProtobuf && ct != ctJSON {
		r.fail(w, ctProtobuf, &httpError{http.StatusUnsupportedMediaType, "Content-Type must be application/x-protobuf or application/json"})
		return
	}
	if !acquire(req.Context(), r.httpSem) {
		return // the client went away while waiting
	}
	defer func() { <-r.httpSem }()
	body, err := r.readBody(w, req)
	if err != nil {
		r.fail(w, ct, err)
		return
	}
	res, err := r.dispatch(req.Context(), sig, ct, body)
	if err != nil {
		r.fail(w, ct, err)
		return
	}
	var out []byte
	if ct == ctJSON {
		out, err = protojson.Marshal(res)
	} else {
		out, err = proto.Marshal(res)
	}
	if err != nil {
		r.fail(w, ct, &httpError{http.StatusInternalServerError, "encode response"})
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(out) //nolint:errcheck // the client may be gone; nothing to do
}

// contentType returns the media type of a Content-Type value, lower-cased.
func contentType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(v))
	}
	return mt
}

// readBody reads the request body, gunzipped, within MaxBodyBytes before
// and after decompression: a larger body (or a gzip bomb) is refused 413.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	max := r.cfg.MaxBodyBytes
	if req.ContentLength > max {
		return nil, r.tooLarge()
	}
	src := http.MaxBytesReader(w, req.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, r.readErr(err)
		}
		defer zr.Close()
		src = io.NopCloser(zr)
	default:
		return nil, &httpError{http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or none"}
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		return nil, r.readErr(err)
	}
	if n > max {
		return nil, r.tooLarge()
	}
	return buf.Bytes(), nil
}

func (r *Receiver) tooLarge() error {
	r.st.oversized.Add(1)
	return &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
}

func (r *Receiver) readErr(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return r.tooLarge()
	}
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &httpError{http.StatusBadRequest, "malformed gzip body"}
	}
	// A body cut off by the read timeout (slow drip) or the client.
	return &httpError{http.StatusBadRequest, "request body not read: " + err.Error()}
}

// dispatch decodes body and hands it to the sink; it returns the response.
func (r *Receiver) dispatch(ctx context.Context, sig Signal, ct string, body []byte) (proto.Message, error) {
	switch sig {
	case Traces:
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := decode(ct, body, req); err != nil {
			return nil, err
		}
		return r.traces(ctx, req), nil
	case Metrics:
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err := decode(ct, body, req); err != nil {
			return nil, err
		}
		return r.metrics(ctx, req), nil
	default:
		req := &collogspb.ExportLogsServiceRequest{}
		if err := decode(ct, body, req); err != nil {
			return nil, err
		}
		return r.logs(ctx, req), nil
	}
}

func decode(ct string, body []byte, m proto.Message) error {
	var err error
	if ct == ctJSON {
		err = UnmarshalJSON(body, m)
	} else {
		err = proto.Unmarshal(body, m)
	}
	if err != nil {
		return &httpError{http.StatusBadRequest, "malformed OTLP " + ct + " body: " + err.Error()}
	}
	return nil
}

// fail answers err (an *httpError, else 400) with an OTLP Status body.
func (r *Receiver) fail(w http.ResponseWriter, ct string, err error) {
	he, ok := errors.AsType[*httpError](err)
	if !ok {
		he = &httpError{http.StatusBadRequest, err.Error()}
	}
	if he.code < 500 {
		r.st.bad.Add(1)
	}
	st := &spb.Status{Code: 3, Message: he.msg} // INVALID_ARGUMENT
	var out []byte
	if ct == ctJSON {
		out, _ = protojson.Marshal(st)
	} else {
		ct = ctProtobuf
		out, _ = proto.Marshal(st)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(he.code)
	w.Write(out) //nolint:errcheck // the client may be gone
}
