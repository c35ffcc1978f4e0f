package sink

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Content types of OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp-request).
const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// gRPC status codes carried in the google.rpc.Status of an error answer
// (https://opentelemetry.io/docs/specs/otlp/#failures-1).
const (
	codeInvalidArgument   = 3
	codeResourceExhausted = 8
	codeUnavailable       = 14
	codeUnknown           = 2
)

// serve handles one export request for sig.
func (s *Sink) serve(w http.ResponseWriter, r *http.Request, sig Signal) {
	s.arrive(sig, r)

	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != contentTypeProto && mediaType != contentTypeJSON) {
		s.reject(sig, "unsupported content type", "content_type", r.Header.Get("Content-Type"))
		http.Error(w, fmt.Sprintf("415 unsupported media type, supported: [%s, %s]", contentTypeJSON, contentTypeProto),
			http.StatusUnsupportedMediaType)
		return
	}

	// The body is read before any fault holds the request: only then does net/http notice a
	// client that goes away (and cancel r.Context()).
	body, status, err := s.readBody(w, r)
	if err != nil {
		s.reject(sig, "bad request body", "error", err.Error())
		writeStatus(w, mediaType, status, codeInvalidArgument, err.Error(), 0)
		return
	}

	if f, ok := s.takeFault(sig); ok {
		if done := s.applyFault(w, r, sig, f); done {
			return
		}
	}

	if err := s.store(sig, mediaType, body); err != nil {
		s.reject(sig, "bad request body", "error", err.Error())
		writeStatus(w, mediaType, http.StatusBadRequest, codeInvalidArgument, err.Error(), 0)
		return
	}
	s.count(sig, func(c *RequestCount) { c.Accepted++ })
	writeResponse(w, sig, mediaType)
}

// reject counts a rejected request and logs why.
func (s *Sink) reject(sig Signal, msg string, args ...any) {
	s.count(sig, func(c *RequestCount) { c.Rejected++ })
	s.log.Warn("sink: "+msg, append([]any{"signal", string(sig)}, args...)...)
}

// readBody reads the request body, decompressing gzip, bounded by maxBody before and after
// decompression. On error it returns the status to answer.
func (s *Sink) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.maxBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("read gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported content encoding %q", enc)
	}
	b, err := io.ReadAll(io.LimitReader(body, s.maxBody+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || int64(len(b)) > s.maxBody:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", s.maxBody)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return b, 0, nil
}

// store decodes body as an export request for sig and keeps it.
func (s *Sink) store(sig Signal, mediaType string, body []byte) error {
	unmarshal := func(proto, json func([]byte) error) error {
		if mediaType == contentTypeJSON {
			return json(body)
		}
		return proto(body)
	}
	switch sig {
	case SignalTraces:
		req := ptraceotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return fmt.Errorf("decode traces: %w", err)
		}
		s.addTraces(req.Traces())
	case SignalMetrics:
		req := pmetricotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return fmt.Errorf("decode metrics: %w", err)
		}
		s.addMetrics(req.Metrics())
	case SignalLogs:
		req := plogotlp.NewExportRequest()
		if err := unmarshal(req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return fmt.Errorf("decode logs: %w", err)
		}
		s.addLogs(req.Logs())
	}
	return nil
}

func (s *Sink) addTraces(td ptrace.Traces) {
	views := spanViews(td)
	td.MarkReadOnly() // shared by every Snapshot: a mutation panics instead of racing
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.traces = append(s.data.traces, td)
	s.data.spans = append(s.data.spans, views...)
	s.notifyLocked()
}

func (s *Sink) addMetrics(md pmetric.Metrics) {
	views := metricPoints(md)
	md.MarkReadOnly() // shared by every Snapshot: a mutation panics instead of racing
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.metrics = append(s.data.metrics, md)
	s.data.points = append(s.data.points, views...)
	s.notifyLocked()
}

func (s *Sink) addLogs(ld plog.Logs) {
	views := logViews(ld)
	ld.MarkReadOnly() // shared by every Snapshot: a mutation panics instead of racing
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.logs = append(s.data.logs, ld)
	s.data.records = append(s.data.records, views...)
	s.notifyLocked()
}

// writeResponse answers 200 with an empty Export*ServiceResponse in the request's encoding.
func writeResponse(w http.ResponseWriter, sig Signal, mediaType string) {
	type marshaler interface {
		MarshalProto() ([]byte, error)
		MarshalJSON() ([]byte, error)
	}
	var resp marshaler
	switch sig {
	case SignalTraces:
		resp = ptraceotlp.NewExportResponse()
	case SignalMetrics:
		resp = pmetricotlp.NewExportResponse()
	default:
		resp = plogotlp.NewExportResponse()
	}
	marshal := resp.MarshalProto
	if mediaType == contentTypeJSON {
		marshal = resp.MarshalJSON
	}
	b, err := marshal()
	if err != nil { // an empty message always marshals; answer like a collector would anyway
		writeStatus(w, mediaType, http.StatusInternalServerError, codeUnknown, err.Error(), 0)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	w.Write(b) //nolint:errcheck // the client may be gone; nothing to do about it
}

// writeStatus answers an error status with a google.rpc.Status body in the request's encoding,
// as the OTLP specification asks, and Retry-After in whole seconds when retryAfter > 0.
func writeStatus(w http.ResponseWriter, mediaType string, status, code int, msg string, retryAfterSeconds int64) {
	if retryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(retryAfterSeconds))
	}
	var b []byte
	if mediaType == contentTypeJSON {
		quoted, _ := json.Marshal(msg) // a string always marshals
		b = fmt.Appendf(nil, `{"code":%d,"message":%s}`, code, quoted)
	} else {
		mediaType = contentTypeProto
		b = encodeRPCStatus(code, msg)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client may be gone; nothing to do about it
}

// encodeRPCStatus encodes google.rpc.Status{code: 1, message: 2} in protobuf wire format.
func encodeRPCStatus(code int, msg string) []byte {
	var b bytes.Buffer
	if code != 0 {
		b.WriteByte(1 << 3) // field 1, wire type 0 (varint)
		b.Write(appendVarint(nil, uint64(code)))
	}
	if msg != "" {
		b.WriteByte(2<<3 | 2) // field 2, length-delimited
		b.Write(appendVarint(nil, uint64(len(msg))))
		b.WriteString(msg)
	}
	return b.Bytes()
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// grpcCode maps an HTTP status to the gRPC code of its google.rpc.Status body.
func grpcCode(status int) int {
	switch status {
	case http.StatusTooManyRequests:
		return codeResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codeUnavailable
	case http.StatusBadRequest:
		return codeInvalidArgument
	default:
		return codeUnknown
	}
}
