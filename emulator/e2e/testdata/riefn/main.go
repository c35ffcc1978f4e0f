// Command riefn is the function the RIE end-to-end tests run as
// /var/task/bootstrap while examples/function is not available. It answers
// every invocation with {"echo": <payload echo field>, "requestId": <id>} and
// writes one log line per invocation to stdout.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Echo string `json:"echo"`
}

type response struct {
	Echo      string `json:"echo"`
	RequestID string `json:"requestId"`
}

func handle(ctx context.Context, req request) (response, error) {
	var id string
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id = lc.AwsRequestID
	}
	fmt.Printf("riefn handled %s\n", id)
	return response{Echo: req.Echo, RequestID: id}, nil
}

func main() { lambda.Start(handle) }
