package receiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func post(t *testing.T, r *Receiver, path, ct, enc string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.HTTPAddr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func TestHTTPAccepts(t *testing.T) {
	var tr coltracepb.ExportTraceServiceRequest
	trJSON := fixture(t, "traces", &tr)
	trPB, _ := proto.Marshal(&tr)
	var lg collogspb.ExportLogsServiceRequest
	lgJSON := fixture(t, "logs", &lg)
	lgPB, _ := proto.Marshal(&lg)
	var mt colmetricpb.ExportMetricsServiceRequest
	mtJSON := fixture(t, "metrics", &mt)
	mtPB, _ := proto.Marshal(&mt)
	for _, c := range []struct {
		name, path, ct, enc string
		body                []byte
		want                proto.Message
	}{
		{"protobuf traces are handed over as sent", "/v1/traces", "application/x-protobuf", "", trPB, &tr},
		{"gzipped protobuf traces are handed over as sent", "/v1/traces", "application/x-protobuf", "gzip", gz(t, trPB), &tr},
		{"JSON traces with hex IDs are handed over with the right IDs", "/v1/traces", "application/json", "", trJSON, &tr},
		{"JSON with a charset parameter is JSON", "/v1/traces", "application/json; charset=utf-8", "", trJSON, &tr},
		{"protobuf logs are handed over as sent", "/v1/logs", "application/x-protobuf", "", lgPB, &lg},
		{"gzipped JSON logs are handed over as sent", "/v1/logs", "application/json", "gzip", gz(t, lgJSON), &lg},
		{"protobuf metrics are handed over as sent", "/v1/metrics", "application/x-protobuf", "", mtPB, &mt},
		{"JSON metrics are handed over as sent", "/v1/metrics", "application/json", "", mtJSON, &mt},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &fakeSink{}
			r := start(t, sink, Config{})
			resp, body := post(t, r, c.path, c.ct, c.enc, c.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got proto.Message
			switch {
			case len(sink.traces) == 1:
				got = sink.traces[0]
			case len(sink.logs) == 1:
				got = sink.logs[0]
			case len(sink.metrics) == 1:
				got = sink.metrics[0]
			}
			if !proto.Equal(got, c.want) {
				t.Errorf("the sink got %v", got)
			}
			if wantCT := contentType(c.ct); resp.Header.Get("Content-Type") != wantCT {
				t.Errorf("response Content-Type %q, want %q", resp.Header.Get("Content-Type"), wantCT)
			}
		})
	}
}

func TestHTTPFullBufferIsAPartialSuccess(t *testing.T) {
	var tr coltracepb.ExportTraceServiceRequest
	fixture(t, "traces", &tr)
	pb, _ := proto.Marshal(&tr)
	sink := &fakeSink{full: true}
	r := start(t, sink, Config{})
	t.Run("protobuf: 200 with every span rejected and the full buffer named", func(t *testing.T) {
		resp, body := post(t, r, "/v1/traces", "application/x-protobuf", "", pb)
		var out coltracepb.ExportTraceServiceResponse
		if err := proto.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		ps := out.GetPartialSuccess()
		if resp.StatusCode != http.StatusOK || ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), "buffer is full") {
			t.Errorf("status %d, partial success %v", resp.StatusCode, ps)
		}
	})
	t.Run("JSON: 200 with rejectedLogRecords in the JSON answer", func(t *testing.T) {
		resp, body := post(t, r, "/v1/logs", "application/json", "", fixture(t, "logs", nil))
		var out collogspb.ExportLogsServiceResponse
		if err := protojson.Unmarshal(body, &out); err != nil {
			t.Fatal(err, string(body))
		}
		if resp.StatusCode != http.StatusOK || out.GetPartialSuccess().GetRejectedLogRecords() != 2 {
			t.Errorf("status %d, body %s", resp.StatusCode, body)
		}
	})
	if st := r.Stats(); st.Rejected != 2 || st.Requests != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPRefuses(t *testing.T) {
	var tr coltracepb.ExportTraceServiceRequest
	fixture(t, "traces", &tr)
	pb, _ := proto.Marshal(&tr)
	big := bytes.Repeat([]byte{0}, 2<<20) // 2 MiB of zeros: a 2 KiB gzip body
	for _, c := range []struct {
		name, method, path, ct, enc string
		body                        []byte
		want                        int
	}{
		{"an unknown path is 404", "POST", "/v1/spans", "application/x-protobuf", "", pb, 404},
		{"a GET is 405", "GET", "/v1/traces", "application/x-protobuf", "", nil, 405},
		{"an unknown content type is 415", "POST", "/v1/traces", "text/plain", "", pb, 415},
		{"an unknown content encoding is 415", "POST", "/v1/traces", "application/x-protobuf", "br", pb, 415},
		{"a protobuf body that does not parse is 400", "POST", "/v1/traces", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400},
		{"a JSON body that does not parse is 400", "POST", "/v1/logs", "application/json", "", []byte(`{"resourceLogs":`), 400},
		{"a body claiming gzip that is not is 400", "POST", "/v1/traces", "application/x-protobuf", "gzip", pb, 400},
		{"a body over the limit is 413", "POST", "/v1/traces", "application/x-protobuf", "", big, 413},
		{"a gzip bomb is 413", "POST", "/v1/traces", "application/x-protobuf", "gzip", gz(t, big), 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &fakeSink{}
			r := start(t, sink, Config{MaxBodyBytes: 1 << 20})
			req, _ := http.NewRequest(c.method, "http://"+r.HTTPAddr()+c.path, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.ct)
			if c.enc != "" {
				req.Header.Set("Content-Encoding", c.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, c.want, body)
			}
			var st spb.Status
			unmarshal := proto.Unmarshal
			if resp.Header.Get("Content-Type") == "application/json" {
				unmarshal = protojson.Unmarshal
			}
			if err := unmarshal(body, &st); err != nil || st.Message == "" {
				t.Errorf("body is not an OTLP Status: %v %q", err, body)
			}
			if tr, m, l := sink.received(); tr+m+l != 0 {
				t.Error("the sink was called")
			}
			// The receiver still serves the next request.
			if resp, _ := post(t, r, "/v1/traces", "application/x-protobuf", "", pb); resp.StatusCode != 200 {
				t.Errorf("next request: status %d", resp.StatusCode)
			}
		})
	}
}

func TestHTTPCutsOffASlowDripBody(t *testing.T) {
	sink := &fakeSink{}
	r := start(t, sink, Config{ReadTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", r.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise 1000 bytes; 10 come, then nothing.
	fmt.Fprintf(conn, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	} // else: the server closed the connection without an answer, also a cut
	if tr, _, _ := sink.received(); tr != 0 {
		t.Error("a partial body reached the sink")
	}
}

func TestListenOnATakenPortLeavesThatProtocolOut(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	r := New(Config{HTTPAddr: taken.Addr().String(), GRPCAddr: "127.0.0.1:0"})
	herr, gerr := r.Listen()
	if herr == nil || gerr != nil {
		t.Fatalf("http error %v, grpc error %v", herr, gerr)
	}
	r.Serve(&fakeSink{})
	if r.HTTPAddr() != "" || r.GRPCAddr() == "" {
		t.Errorf("http %q grpc %q", r.HTTPAddr(), r.GRPCAddr())
	}
	if err := r.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestCloseBeforeServeReleasesThePorts(t *testing.T) {
	r := New(Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if herr, gerr := r.Listen(); herr != nil || gerr != nil {
		t.Fatal(herr, gerr)
	}
	addr := r.HTTPAddr()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still bound: %v", err)
	}
	ln.Close()
}
