package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRunPrintsTheTableOnExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderrR, stderrW := io.Pipe()
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-level", "warn"}, &stdout, stderrW)
		stderrW.Close()
	}()

	// The banner names the endpoint; keep draining stderr afterwards.
	lines := bufio.NewScanner(stderrR)
	var endpoint string
	for endpoint == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "OTLP/HTTP sink at "); ok {
			endpoint, _, _ = strings.Cut(rest, " ")
		}
	}
	go io.Copy(io.Discard, stderrR)
	if endpoint == "" {
		t.Fatalf("no endpoint banner; run: %v", <-done)
	}

	body := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",` +
		`"spanId":"eee19b7ec3c1b174","name":"fn","startTimeUnixNano":"1000000","endTimeUnixNano":"3000000",` +
		`"attributes":[{"key":"faas.invocation_id","value":{"stringValue":"req-42"}}]}]}]}]}`
	resp, err := http.Post(endpoint+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	if !strings.Contains(out, "req-42") || !strings.Contains(out, "5b8efff798038103d269b633813fc60c") ||
		!strings.Contains(out, "1 invocations, 1 spans") {
		t.Errorf("table:\n%s", out)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fail-status", "200"},
		{"-log-level", "loud"},
		{"-nope"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
				t.Error("run succeeded")
			}
		})
	}
}
