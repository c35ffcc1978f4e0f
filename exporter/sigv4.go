package exporter

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/slipstream-otel/slipstream/internal/awsauth"
)

// sigv4Transport signs each request with AWS Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html),
// for AWS's OTLP endpoints. It sits below gzipTransport, so it signs the
// bytes actually sent, and above observingTransport, whose notion of
// "the body was written" must not see the signer read it. Every attempt,
// retries included, passes here: each is signed when it is sent, with the
// credentials of that moment.
type sigv4Transport struct {
	base            http.RoundTripper
	creds           *awsauth.Credentials
	service, region string
	now             func() time.Time
}

func (t *sigv4Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sigv4: read request body: %w", err)
		}
		body = b
	}
	r2 := req.Clone(req.Context())
	if err := awsauth.Sign(req.Context(), t.creds, r2, body, t.service, t.region, t.now()); err != nil {
		return nil, fmt.Errorf("sigv4: %w", err)
	}
	return t.base.RoundTrip(r2)
}
