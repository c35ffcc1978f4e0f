package main

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestXRayPropagator(t *testing.T) {
	for _, c := range []struct {
		name, header     string
		trace, parent    string
		sampled, isValid bool
	}{
		{"a sampled header is continued", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true, true},
		{"an unsampled header is continued unsampled", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", false, true},
		{"unknown keys such as Lineage are ignored", "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:1;Parent=53995c3f42cd8ad8;Sampled=1", "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true, true},
		{"a header without Parent starts a new trace", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", "", "", false, false},
		{"a malformed Root starts a new trace", "Root=2-x;Parent=53995c3f42cd8ad8", "", "", false, false},
		{"no header starts a new trace", "", "", "", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := xrayPropagator{}.Extract(context.Background(), propagation.MapCarrier{xrayHeader: c.header})
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != c.isValid {
				t.Fatalf("valid %v", sc.IsValid())
			}
			if !c.isValid {
				return
			}
			if sc.TraceID().String() != c.trace || sc.SpanID().String() != c.parent || sc.IsSampled() != c.sampled || !sc.IsRemote() {
				t.Errorf("got %s/%s sampled %v", sc.TraceID(), sc.SpanID(), sc.IsSampled())
			}
			out := propagation.MapCarrier{}
			xrayPropagator{}.Inject(ctx, out)
			back := trace.SpanContextFromContext(xrayPropagator{}.Extract(context.Background(), out))
			if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || back.IsSampled() != sc.IsSampled() {
				t.Errorf("inject then extract gives %v", back)
			}
		})
	}
}
