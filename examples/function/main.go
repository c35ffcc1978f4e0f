package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	f := &function{
		stdout: os.Stdout,
		crash:  crashOnNewGoroutine,
		exit:   os.Exit,
	}
	lambda.Start(f.handle)
}

// crashOnNewGoroutine panics where no handler can recover it: the Go runtime prints the panic
// and every goroutine's stack, line by line, to stderr and exits with status 2.
func crashOnNewGoroutine(msg string) {
	go func() { panic(msg) }()
}
