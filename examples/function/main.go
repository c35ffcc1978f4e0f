package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	f := &function{
		stdout: os.Stdout,
		crash:  crashOnNewGoroutine,
		exit:   os.Exit,
	}
	tr, err := newTracing(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "OpenTelemetry SDK not started:", err)
	}
	// Lambda sends the runtime SIGTERM at shutdown when an extension is
	// registered: flush what is left then.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		tr.shutdown(context.Background()) //nolint:errcheck // exiting anyway
		os.Exit(0)
	}()
	lambda.Start(tr.wrap(f.handle))
}

// crashOnNewGoroutine panics where no handler can recover it: the Go runtime prints the panic
// and every goroutine's stack, line by line, to stderr and exits with status 2.
func crashOnNewGoroutine(msg string) {
	go func() { panic(msg) }()
}
