package main

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The function's own tracing, as a function running the OpenTelemetry Go
// SDK would have it: the invocation's X-Ray trace header (Lambda hands it
// to the runtime) is continued with an X-Ray propagator, spans go to an
// OTLP/HTTP exporter at http://localhost:4318 (unless OTEL_EXPORTER_OTLP_*
// say otherwise: the Go exporter's own default is https), which is
// Slipstream's local receiver, and the
// handler ends with ForceFlush: the export costs a loopback round trip,
// and Slipstream sends the spans on, nested under its invocation span.
// OTEL_SDK_DISABLED=true switches it off (the OpenTelemetry specification's
// variable); OTEL_EXPORTER_OTLP_* configure the exporter as usual.

// flushTimeout bounds ForceFlush at the end of an invocation.
const flushTimeout = time.Second

// tracing is the function's TracerProvider and what the handler needs of it.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// newTracing builds the function's tracing, or returns nil when the SDK is
// disabled.
func newTracing(ctx context.Context) (*tracing, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	var opts []otlptracehttp.Option
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		// The Go exporter's own default is https://localhost:4318; the
		// receiver speaks plain HTTP on the loopback interface.
		opts = append(opts, otlptracehttp.WithEndpointURL("http://localhost:4318/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{}
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		if fn := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" {
			attrs = append(attrs, attribute.String("service.name", fn))
		}
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil && res == nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &tracing{tp: tp, tracer: tp.Tracer("github.com/slipstream-otel/slipstream/examples/function")}, nil
}

// handler is the shape of the function's handler.
type handler func(context.Context, Payload) (Response, error)

// wrap traces each invocation: a server span continuing the invocation's
// X-Ray trace, a child span for the action, then ForceFlush.
func (t *tracing) wrap(h handler) handler {
	if t == nil {
		return h
	}
	return func(ctx context.Context, p Payload) (Response, error) {
		ctx = xrayPropagator{}.Extract(ctx, propagation.MapCarrier{xrayHeader: invocationTraceHeader(ctx)})
		ctx, span := t.tracer.Start(ctx, "handle", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("example.action", string(p.Action))))
		actx, action := t.tracer.Start(ctx, "action "+string(p.Action))
		resp, err := h(actx, p)
		if err != nil {
			action.RecordError(err)
			action.SetStatus(codes.Error, err.Error())
			span.SetStatus(codes.Error, err.Error())
		}
		action.End()
		span.End()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		// A failed flush (no receiver listening) must not fail the invocation.
		_ = t.tp.ForceFlush(fctx) //nolint:errcheck // see above
		return resp, err
	}
}

// shutdown flushes what is left (the runtime's SIGTERM, if it comes).
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// invocationTraceHeader is the invocation's X-Ray trace header:
// aws-lambda-go puts it in the context and in _X_AMZN_TRACE_ID.
func invocationTraceHeader(ctx context.Context) string {
	if v, ok := ctx.Value("x-amzn-trace-id").(string); ok && v != "" {
		return v
	}
	return os.Getenv("_X_AMZN_TRACE_ID")
}

// xrayHeader is the X-Ray trace header's name.
const xrayHeader = "X-Amzn-Trace-Id"

// xrayPropagator extracts and injects the X-Ray trace header
// (Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1), as described in
// https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader.
// (OpenTelemetry's contrib module go.opentelemetry.io/contrib/propagators/aws
// is deprecated; the format is small enough to keep here.)
type xrayPropagator struct{}

var errNoXRay = errors.New("no X-Ray trace header")

func (xrayPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	tid := sc.TraceID().String()
	sampled := "0"
	if sc.IsSampled() {
		sampled = "1"
	}
	c.Set(xrayHeader, "Root=1-"+tid[:8]+"-"+tid[8:]+";Parent="+sc.SpanID().String()+";Sampled="+sampled)
}

func (xrayPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	sc, err := parseXRay(c.Get(xrayHeader))
	if err != nil {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func (xrayPropagator) Fields() []string { return []string{xrayHeader} }

func parseXRay(h string) (trace.SpanContext, error) {
	var cfg trace.SpanContextConfig
	var hasRoot, hasParent bool
	for part := range strings.SplitSeq(h, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Root":
			if len(v) != 35 || !strings.HasPrefix(v, "1-") || v[10] != '-' {
				return trace.SpanContext{}, errNoXRay
			}
			b, err := hex.DecodeString(v[2:10] + v[11:])
			if err != nil {
				return trace.SpanContext{}, errNoXRay
			}
			copy(cfg.TraceID[:], b)
			hasRoot = true
		case "Parent":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != 8 {
				return trace.SpanContext{}, errNoXRay
			}
			copy(cfg.SpanID[:], b)
			hasParent = true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	if !hasRoot || !hasParent {
		return trace.SpanContext{}, errNoXRay
	}
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	if !sc.IsValid() {
		return trace.SpanContext{}, errNoXRay
	}
	return sc, nil
}
