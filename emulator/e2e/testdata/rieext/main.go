// Command rieext is the probe extension of the RIE end-to-end tests. It
// follows the Extensions API lifecycle like the Slipstream agent does
// (register, subscribe to the Telemetry API, long-poll /event/next until
// SHUTDOWN), but instead of exporting it reports everything it sees, as
// JSON, to the test's HTTP server named by RIEEXT_REPORT_URL: the
// register response and the environment it was given, the subscription
// answer, every event, every telemetry batch verbatim. The tests install it
// next to the agent, so they know what AWS's emulator sent independently of
// what the agent did with it; it also stands in for the agent while
// ./cmd/slipstream does not build (SLIPSTREAM_RIE_AGENT=standin).
//
// It logs JSON to stderr through log/slog, with the same warning text as
// the agent when the Telemetry API is unavailable.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const apiTimeout = 5 * time.Second

func main() {
	name := filepath.Base(os.Args[0])
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("extension", name)
	if err := run(name, log); err != nil {
		log.Error("rieext", "error", err.Error())
		os.Exit(1)
	}
}

// reporter posts observations to the test; a nil reporter drops them.
type reporter struct {
	url  string
	name string
	hc   *http.Client
}

func (r *reporter) report(kind string, data any) {
	if r == nil {
		return
	}
	body, err := json.Marshal(struct {
		Extension string `json:"extension"`
		Kind      string `json:"kind"`
		At        int64  `json:"atUnixMicro"`
		Data      any    `json:"data"`
	}{r.name, kind, time.Now().UnixMicro(), data})
	if err != nil {
		return
	}
	resp, err := r.hc.Post(r.url, "application/json", bytes.NewReader(body))
	if err != nil {
		return
	}
	resp.Body.Close()
}

type apiResult struct {
	Status  int             `json:"status"`
	Headers http.Header     `json:"headers"`
	Body    json.RawMessage `json:"body"`
}

func call(hc *http.Client, method, url string, hdr map[string]string, body any) (apiResult, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return apiResult{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return apiResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResult{}, err
	}
	if !json.Valid(b) {
		b, _ = json.Marshal(string(b)) // a string is always valid JSON
	}
	return apiResult{Status: resp.StatusCode, Headers: resp.Header, Body: b}, nil
}

func run(name string, log *slog.Logger) error {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		return errors.New("AWS_LAMBDA_RUNTIME_API is not set")
	}
	var rep *reporter
	if u := os.Getenv("RIEEXT_REPORT_URL"); u != "" {
		rep = &reporter{url: u, name: name, hc: &http.Client{Timeout: apiTimeout}}
	}
	managed := os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "lambda-managed-instances"
	events := []string{"INVOKE", "SHUTDOWN"}
	if managed {
		events = []string{"SHUTDOWN"}
	}
	hc := &http.Client{Timeout: apiTimeout}
	base := "http://" + api + "/2020-01-01/extension"

	reg, err := call(hc, http.MethodPost, base+"/register",
		map[string]string{"Lambda-Extension-Name": name, "Lambda-Extension-Accept-Feature": "accountId"},
		map[string]any{"events": events})
	if err != nil {
		return fmt.Errorf("register extension: %w", err)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") && !strings.Contains(k, "SECRET") && !strings.Contains(k, "TOKEN") && !strings.Contains(k, "KEY") {
			env[k] = v
		}
	}
	rep.report("register", map[string]any{"result": reg, "events": events, "env": env, "uid": os.Getuid(), "gid": os.Getgid()})
	if reg.Status != http.StatusOK {
		return fmt.Errorf("register extension: status %d: %s", reg.Status, reg.Body)
	}
	id := reg.Headers.Get("Lambda-Extension-Identifier")
	log.Info("registered", "events", events) // a line on stderr: does it come back as an "extension" record?

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: apiTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil || !json.Valid(b) {
				http.Error(w, "bad batch", http.StatusBadRequest)
				return
			}
			rep.report("telemetry", map[string]any{
				"method": r.Method, "path": r.URL.Path, "contentType": r.Header.Get("Content-Type"), "headers": r.Header,
				"batch": json.RawMessage(b),
			})
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	port := ln.Addr().(*net.TCPAddr).Port
	schema := "2022-12-13"
	if managed {
		schema = "2025-01-29"
	}
	sub, err := call(hc, http.MethodPut, "http://"+api+"/2022-07-01/telemetry",
		map[string]string{"Lambda-Extension-Identifier": id, "Content-Type": "application/json"},
		map[string]any{
			"schemaVersion": schema,
			"types":         []string{"platform", "function", "extension"},
			"buffering":     map[string]int{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
			"destination":   map[string]any{"protocol": "HTTP", "URI": fmt.Sprintf("http://sandbox.localdomain:%d", port)},
		})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	rep.report("subscribe", map[string]any{"result": sub, "schemaVersion": schema})
	if sub.Status != http.StatusOK {
		log.Warn("Telemetry API unavailable: following the lifecycle without platform data",
			"status", sub.Status, "body", string(sub.Body))
	}

	next := &http.Client{} // long poll: no timeout
	for {
		ev, err := call(next, http.MethodGet, base+"/event/next", map[string]string{"Lambda-Extension-Identifier": id}, nil)
		if err != nil {
			return fmt.Errorf("next event: %w", err)
		}
		rep.report("event", ev)
		if ev.Status != http.StatusOK {
			return fmt.Errorf("next event: status %d: %s", ev.Status, ev.Body)
		}
		var e struct {
			EventType      string `json:"eventType"`
			DeadlineMs     int64  `json:"deadlineMs"`
			ShutdownReason string `json:"shutdownReason"`
		}
		if err := json.Unmarshal(ev.Body, &e); err != nil {
			return fmt.Errorf("next event: %w", err)
		}
		if e.EventType != "SHUTDOWN" {
			continue
		}
		ctx, cancel := context.WithDeadline(context.Background(), time.UnixMilli(e.DeadlineMs).Add(-100*time.Millisecond))
		err = srv.Shutdown(ctx) // waits for telemetry POSTs in flight
		cancel()
		<-served
		log.Info("shutdown", "shutdown_reason", e.ShutdownReason)
		rep.report("exit", nil)
		return err
	}
}
