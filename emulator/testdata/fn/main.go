// Command fn is the emulator's test function, built with aws-lambda-go. Its
// behaviour is chosen by the payload: {"action": "echo"|"log"|"error"|
// "panic"|"sleep"|"exit", "lines": n, "ms": n}.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Action string `json:"action"`
	Lines  int    `json:"lines"`
	Ms     int    `json:"ms"`
}

type response struct {
	Echo      string `json:"echo"`
	RequestID string `json:"requestId"`
	Function  string `json:"function"`
}

func handle(ctx context.Context, req request) (response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	switch req.Action {
	case "log":
		for i := range req.Lines {
			fmt.Printf("line %d of %s\n", i, lc.AwsRequestID)
		}
		fmt.Fprintln(os.Stderr, "stderr line")
	case "error":
		return response{}, errors.New("handler failed")
	case "panic":
		panic("boom")
	case "sleep":
		time.Sleep(time.Duration(req.Ms) * time.Millisecond)
	case "exit":
		os.Exit(3)
	}
	return response{Echo: req.Action, RequestID: lc.AwsRequestID, Function: lambdacontext.FunctionName}, nil
}

func main() {
	fmt.Println("fn init")
	lambda.Start(handle)
}
