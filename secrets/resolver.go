package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slipstream-otel/slipstream/internal/awsauth"
)

// State of a reference.
type State int

// States.
const (
	Pending  State = iota // not fetched yet: nothing that needs it is sent
	Resolved              // the value is known
	Failed                // fetching failed (one ERROR line said why): export that needs it stays off
)

// refetchEvery: a value is fetched again, after a 401 or 403 from the
// backend, at most this often.
const refetchEvery = 15 * time.Minute

// Options configure a Resolver.
type Options struct {
	// Refs maps each reference to the variable it was found in (for the
	// ERROR line).
	Refs map[Ref]string
	// Region is AWS_REGION: the region of references that are not ARNs.
	Region      string
	Credentials *awsauth.Credentials
	Log         *slog.Logger
	// Client makes the calls (default: a client with a 10 s timeout and
	// no proxy other than the caller's transport).
	Client *http.Client
	// Endpoint returns the URL of service in region; tests point it at
	// local fakes. Default https://<service>.<region>.amazonaws.com/.
	Endpoint func(service, region string) string
	Now      func() time.Time
}

// Resolver fetches the secrets the configuration refers to, once started,
// and keeps them in memory only. Its methods are safe for concurrent use:
// one lock guards the values; fetches run on the resolver's own goroutine,
// never on a caller's.
type Resolver struct {
	o       Options
	started sync.Once
	stop    context.CancelFunc // set by Start
	exited  chan struct{}      // closed when the goroutine returns
	wake    chan struct{}      // a refetch was asked for
	// done is closed when the first round of fetches has ended.
	done chan struct{}

	// mu guards vals, lastFetch.
	mu        sync.Mutex
	vals      map[Ref]*entry
	lastFetch time.Time
}

type entry struct {
	state  State
	value  string
	reason string
	// changed is closed and replaced when state leaves Pending.
	changed chan struct{}
}

// New returns a resolver for o.Refs; nothing is fetched before Start.
func New(o Options) *Resolver {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Endpoint == nil {
		o.Endpoint = func(service, region string) string { return "https://" + service + "." + region + ".amazonaws.com/" }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Resolver{o: o, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{}), vals: map[Ref]*entry{}}
	for ref := range o.Refs {
		r.vals[ref] = &entry{changed: make(chan struct{})}
	}
	return r
}

// Start begins fetching on a goroutine of the resolver's own (once; later
// calls do nothing). The agent calls it once the first /event/next has
// been sent: no network call before that. The goroutine ends with ctx or
// at Stop.
func (r *Resolver) Start(ctx context.Context) {
	if r == nil {
		return
	}
	r.started.Do(func() {
		ctx, r.stop = context.WithCancel(ctx)
		go func() {
			defer close(r.exited)
			r.run(ctx)
		}()
	})
}

// Stop ends the resolver's goroutine, if it was started, and waits for it.
func (r *Resolver) Stop() {
	if r == nil {
		return
	}
	r.started.Do(func() { close(r.exited) }) // never started: nothing to wait for
	if r.stop != nil {
		r.stop()
	}
	<-r.exited
}

// Value returns the state of ref and, when Resolved, its value.
func (r *Resolver) Value(ref Ref) (string, State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.vals[ref]
	if !ok {
		return "", Failed
	}
	return e.value, e.state
}

// Wait returns ref's value once it is no longer Pending, or ctx's error.
func (r *Resolver) Wait(ctx context.Context, ref Ref) (string, State, error) {
	for {
		r.mu.Lock()
		e, ok := r.vals[ref]
		if !ok {
			r.mu.Unlock()
			return "", Failed, nil
		}
		st, v, ch := e.state, e.value, e.changed
		r.mu.Unlock()
		if st != Pending {
			return v, st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", Pending, ctx.Err()
		}
	}
}

// Refetch asks for the values to be fetched again (the backend answered
// 401 or 403: the secret may have been rotated), at most every 15
// minutes, on the resolver's goroutine.
func (r *Resolver) Refetch() {
	if r == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Resolver) run(ctx context.Context) {
	r.fetchAll(ctx)
	close(r.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		due := r.o.Now().Sub(r.lastFetch) >= refetchEvery
		r.mu.Unlock()
		if due {
			r.fetchAll(ctx)
		}
	}
}

func (r *Resolver) fetchAll(ctx context.Context) {
	r.mu.Lock()
	r.lastFetch = r.o.Now()
	r.mu.Unlock()
	for ref, name := range r.o.Refs {
		v, err := r.fetch(ctx, ref)
		r.mu.Lock()
		e := r.vals[ref]
		was := e.state
		switch {
		case err == nil:
			e.state, e.value, e.reason = Resolved, v, ""
		case was == Resolved:
			// Keep the value we have: the next 401/403 asks again.
			r.o.Log.Warn("secret reference not refetched: the value fetched before stays in use", "variable", name, "reason", reason(err))
		default:
			e.state, e.reason = Failed, reason(err)
			r.o.Log.Error("secret reference not resolved: export that needs it stays off", "variable", name, "reference", ref.Service, "reason", e.reason)
		}
		if was == Pending && e.state != Pending {
			close(e.changed)
		}
		r.mu.Unlock()
	}
}

// awsError is an error answer of a JSON 1.1 protocol service.
type awsError struct {
	Status int
	Type   string
}

func (e *awsError) Error() string { return fmt.Sprintf("status %d %s", e.Status, e.Type) }

// reason classifies an error for the ERROR line (never the value, never
// the service's message, which may quote the request).
func reason(err error) string {
	var ae *awsError
	if errors.As(err, &ae) {
		switch ae.Type {
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "ExpiredTokenException":
			return "no permission (" + ae.Type + ")"
		case "ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound":
			return "not found (" + ae.Type + ")"
		case "ThrottlingException", "TooManyUpdates", "ThrottledException":
			return "throttled (" + ae.Type + ")"
		case "DecryptionFailure", "KMSAccessDeniedException":
			return "no permission to decrypt (" + ae.Type + ")"
		}
		if ae.Type != "" {
			return ae.Type
		}
		return fmt.Sprintf("status %d", ae.Status)
	}
	if errors.Is(err, errNoKey) {
		return err.Error()
	}
	if errors.Is(err, awsauth.ErrNoCredentials) {
		return "no credentials"
	}
	return "request failed: " + err.Error()
}

var errNoKey = errors.New("the secret is not a JSON object holding the key")

// fetch calls GetSecretValue or GetParameter (WithDecryption) with the
// JSON 1.1 protocol, signed with the function's credentials.
func (r *Resolver) fetch(ctx context.Context, ref Ref) (string, error) {
	region := ref.region()
	if region == "" {
		region = r.o.Region
	}
	var target string
	var in any
	switch ref.Service {
	case SecretsManager:
		target, in = "secretsmanager.GetSecretValue", map[string]string{"SecretId": ref.ID}
	default:
		target, in = "AmazonSSM.GetParameter", map[string]any{"Name": ref.ID, "WithDecryption": true}
	}
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.o.Endpoint(ref.Service, region), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	if err := awsauth.Sign(ctx, r.o.Credentials, req, body, ref.Service, region, r.o.Now()); err != nil {
		return "", err
	}
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(out, &e) //nolint:errcheck // the type is optional
		// "__type" may be "namespace#Code".
		if i := bytes.LastIndexByte([]byte(e.Type), '#'); i >= 0 {
			e.Type = e.Type[i+1:]
		}
		if e.Type == "" {
			e.Type = resp.Header.Get("X-Amzn-ErrorType")
		}
		return "", &awsError{Status: resp.StatusCode, Type: e.Type}
	}
	switch ref.Service {
	case SecretsManager:
		var v struct{ SecretString string }
		if err := json.Unmarshal(out, &v); err != nil {
			return "", errors.New("GetSecretValue answer is not JSON")
		}
		if ref.Key == "" {
			return v.SecretString, nil
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(v.SecretString), &obj) != nil {
			return "", errNoKey
		}
		raw, ok := obj[ref.Key]
		if !ok {
			return "", errNoKey
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
		return string(raw), nil
	default:
		var v struct{ Parameter struct{ Value string } }
		if err := json.Unmarshal(out, &v); err != nil {
			return "", errors.New("GetParameter answer is not JSON")
		}
		return v.Parameter.Value, nil
	}
}
