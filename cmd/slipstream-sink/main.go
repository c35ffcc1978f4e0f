package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "slipstream-sink:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends or a signal arrives, then prints the table to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("slipstream-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4318", "listen address (host:port; port 0 picks one)")
	every := fs.Duration("every", 0, "also print the table at this interval (0: only at exit)")
	failStatus := fs.Int("fail-status", 0, "answer this HTTP status (e.g. 503) instead of accepting")
	failTimes := fs.Int("fail-times", 0, "number of requests -fail-status applies to (0: all)")
	retryAfter := fs.Duration("retry-after", 0, "Retry-After sent with -fail-status (whole seconds)")
	level := fs.String("log-level", "info", "debug|info|warn|error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	opts := sink.Options{Logger: log}
	if *failStatus != 0 {
		if *failStatus < 400 || *failStatus > 599 {
			return errors.New("-fail-status: want an HTTP error status, 400..599")
		}
		opts.Faults = []sink.Fault{{Status: *failStatus, Times: *failTimes, RetryAfter: *retryAfter}}
	}
	s := sink.New(opts)
	endpoint, err := s.Start(*addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "OTLP/HTTP sink at %s (set SLIPSTREAM_OTLP_ENDPOINT=%s); Ctrl-C prints the table\n", endpoint, endpoint)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-tick:
			if err := s.Table(stdout); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
		case <-ctx.Done():
			done = true
		}
	}

	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.Close(closeCtx), s.Table(stdout))
}
