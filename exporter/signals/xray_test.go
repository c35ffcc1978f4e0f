package signals

import (
	"strings"
	"testing"
)

func TestParseXRay(t *testing.T) {
	tests := []struct {
		name, in      string
		trace, parent string // "" = absent
		sampled       sampled
	}{
		{"a full header gives trace, parent and Sampled=1",
			"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
			"5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", sampledYes},
		{"keys in any order with Lineage and spaces",
			"Sampled=0; Lineage=a87bd80c:1|68fd508a:5 ;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793",
			"5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", sampledNo},
		{"Sampled=? is deferred", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?",
			"5759e988bd862e3fe1be46a994272793", "", sampledDeferred},
		{"no Sampled key is absent", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
			"5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", sampledAbsent},
		{"upper-case hex is accepted", "Root=1-5759E988-BD862E3FE1BE46A994272793",
			"5759e988bd862e3fe1be46a994272793", "", sampledAbsent},
		{"a short root is ignored", "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",
			"", "53995c3f42cd8ad8", sampledAbsent},
		{"a version other than 1 is ignored", "Root=2-5759e988-bd862e3fe1be46a994272793", "", "", sampledAbsent},
		{"non-hex is ignored", "Root=1-5759e98g-bd862e3fe1be46a994272793;Parent=53995c3f42cd8adz", "", "", sampledAbsent},
		{"an all-zero trace ID is ignored", "Root=1-00000000-000000000000000000000000", "", "", sampledAbsent},
		{"an empty header is empty", "", "", "", sampledAbsent},
		{"Self and unknown keys are ignored", "Self=1-5759e988-bd862e3fe1be46a994272793;Foo;=;Sampled=1", "", "", sampledYes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := parseXRay(tt.in)
			if got := hexOr(h.HasTrace, h.TraceID.String()); got != tt.trace {
				t.Errorf("trace = %q, want %q", got, tt.trace)
			}
			if got := hexOr(h.HasParent, h.Parent.String()); got != tt.parent {
				t.Errorf("parent = %q, want %q", got, tt.parent)
			}
			if h.Sampled != tt.sampled {
				t.Errorf("sampled = %d, want %d", h.Sampled, tt.sampled)
			}
		})
	}
}

func hexOr(ok bool, s string) string {
	if !ok {
		return ""
	}
	return s
}

func TestParseXRayDoesNotAllocate(t *testing.T) {
	h := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:fe460cdd:0"
	if n := testing.AllocsPerRun(100, func() { parseXRay(h) }); n != 0 {
		t.Errorf("parseXRay allocates %v times", n)
	}
}

func FuzzParseXRay(f *testing.F) {
	for _, s := range []string{
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5",
		"Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=?",
		"Sampled=0", ";;;", "Root=", "Parent=0000000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := parseXRay(s)
		if h.HasTrace {
			id := h.TraceID.String()
			if !h.TraceID.IsValid() || !strings.Contains(strings.ToLower(s), id[:8]+"-"+id[8:]) {
				t.Fatalf("trace %s not taken from %q", id, s)
			}
		}
		if h.HasParent && !strings.Contains(strings.ToLower(s), h.Parent.String()) {
			t.Fatalf("parent %s not taken from %q", h.Parent, s)
		}
	})
}
