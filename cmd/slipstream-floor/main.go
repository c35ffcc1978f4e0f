// Command slipstream-floor is the benchmark floor: the least a Telemetry API
// extension can do. It registers, subscribes like Slipstream's defaults
// (schema 2025-01-29; platform, function, extension; 1000 items, 256 KiB,
// 25 ms), answers every telemetry POST with 200 and discards it, and loops on
// /event/next until SHUTDOWN. Standard library only; frozen once written.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const api = "/2020-01-01/extension"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "slipstream-floor:", err)
		os.Exit(1)
	}
}

func run() error {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API")
	hc := &http.Client{Timeout: 5 * time.Second}
	events := []string{"INVOKE", "SHUTDOWN"}
	if os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "lambda-managed-instances" {
		events = []string{"SHUTDOWN"} // INVOKE is rejected on managed instances
	}
	body, _ := json.Marshal(map[string]any{"events": events}) // cannot fail
	req, err := http.NewRequest(http.MethodPost, base+api+"/register", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Lambda-Extension-Name", filepath.Base(os.Args[0]))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")
	if resp.StatusCode != http.StatusOK || id == "" {
		return fmt.Errorf("register: status %d", resp.StatusCode)
	}

	port := 4243
	if p, err := strconv.Atoi(os.Getenv("SLIPSTREAM_LISTENER_PORT")); err == nil {
		port = p
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("sandbox.localdomain", strconv.Itoa(port)))
	if err != nil { // outside Lambda the name does not resolve: all interfaces
		if ln, err = net.Listen("tcp", ":"+strconv.Itoa(port)); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	// Subscribe with the port bound (the OS picks one when 0 was asked).
	port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // discard everything
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln) // ends with srv.Close at exit

	sub, _ := json.Marshal(map[string]any{ // cannot fail
		"schemaVersion": "2025-01-29",
		"types":         []string{"platform", "function", "extension"},
		"buffering":     map[string]int{"maxItems": 1000, "maxBytes": 1048576, "timeoutMs": 25},
		"destination":   map[string]string{"protocol": "HTTP", "URI": "http://sandbox.localdomain:" + strconv.Itoa(port)},
	})
	req, err = http.NewRequest(http.MethodPut, base+"/2022-07-01/telemetry", bytes.NewReader(sub))
	if err != nil {
		return err
	}
	req.Header.Set("Lambda-Extension-Identifier", id)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = hc.Do(req); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // 202 Telemetry.NotSupported is fine: keep looping

	next := &http.Client{} // long poll: no timeout
	for {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+api+"/event/next", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := next.Do(req)
		if err != nil {
			return fmt.Errorf("next: %w", err)
		}
		var ev struct {
			EventType string `json:"eventType"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return errors.Join(fmt.Errorf("next: status %d", resp.StatusCode), err)
		}
		if ev.EventType == "SHUTDOWN" {
			return srv.Close()
		}
	}
}
