package sink

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Invocation is one invocation span as Table prints it. A zero BilledDuration, InitDuration or
// MaxMemoryMB means the span did not carry the attribute (Table prints "-").
type Invocation struct {
	RequestID      string
	ColdStart      bool
	Duration       time.Duration // span end − start
	BilledDuration time.Duration
	InitDuration   time.Duration
	MaxMemoryMB    float64
	Status         string // span status: "Unset", "Ok" or "Error"
	ErrorType      string
	OutOfMemory    bool
	TraceID        string
	SpanID         string
	// Logs counts the log records tied to the invocation: by invocation ID attribute, or by the
	// span's trace and span IDs.
	Logs int
	// Copies is how many times the span arrived (delivery is at-least-once).
	Copies int
	Span   SpanView
}

// Invocations returns one row per invocation span (a span carrying an invocation ID attribute;
// if SERVER spans carry it, only those), ordered by start time. A span received more than once is one row, the last copy winning.
func (s *Snapshot) Invocations() []Invocation {
	k := keys()
	var (
		rows  []Invocation
		index = make(map[string]int) // trace ID + span ID -> row
	)
	// A child span may carry the invocation ID too: where a SERVER span carries it, that is the row.
	hasServer := make(map[string]bool)
	for _, sp := range s.spans {
		if id, ok := lookupString(sp.Attributes, k.invocationID); ok && sp.Kind == "Server" {
			hasServer[id] = true
		}
	}
	for _, sp := range s.spans {
		id, ok := lookupString(sp.Attributes, k.invocationID)
		if !ok || (sp.Kind != "Server" && hasServer[id]) {
			continue
		}
		inv := Invocation{
			RequestID:      id,
			Duration:       sp.Duration(),
			BilledDuration: lookupDuration(sp.Attributes, k.billedDuration),
			InitDuration:   lookupDuration(sp.Attributes, k.initDuration),
			MaxMemoryMB:    lookupMemoryMB(sp.Attributes, k.maxMemoryUsed),
			Status:         sp.Status,
			TraceID:        sp.TraceID,
			SpanID:         sp.SpanID,
			Copies:         1,
			Span:           sp,
		}
		inv.ColdStart, _ = lookupBool(sp.Attributes, k.coldStart)
		inv.OutOfMemory, _ = lookupBool(sp.Attributes, k.outOfMemory)
		inv.ErrorType, _ = lookupString(sp.Attributes, k.errorType)
		key := sp.TraceID + "/" + sp.SpanID
		if i, seen := index[key]; seen {
			inv.Copies = rows[i].Copies + 1
			rows[i] = inv
			continue
		}
		index[key] = len(rows)
		rows = append(rows, inv)
	}
	byRequest := make(map[string][]int)
	bySpan := make(map[string]int)
	for i, r := range rows {
		byRequest[r.RequestID] = append(byRequest[r.RequestID], i)
		bySpan[r.TraceID+"/"+r.SpanID] = i
	}
	// The report's figures may come on another span of the invocation (Slipstream's postRuntime
	// span, beside the invocation span): fill in what the invocation span lacks.
	for _, sp := range s.spans {
		id, ok := lookupString(sp.Attributes, k.invocationID)
		if !ok || sp.Kind == "Server" || !hasServer[id] || len(byRequest[id]) == 0 {
			continue
		}
		r := &rows[byRequest[id][0]]
		if r.BilledDuration == 0 {
			r.BilledDuration = lookupDuration(sp.Attributes, k.billedDuration)
		}
		if r.InitDuration == 0 {
			r.InitDuration = lookupDuration(sp.Attributes, k.initDuration)
		}
		if r.MaxMemoryMB == 0 {
			r.MaxMemoryMB = lookupMemoryMB(sp.Attributes, k.maxMemoryUsed)
		}
		if oom, _ := lookupBool(sp.Attributes, k.outOfMemory); oom {
			r.OutOfMemory = true
		}
	}
	for _, lr := range s.records {
		if id, ok := lookupString(lr.Attributes, k.logInvocationID); ok && len(byRequest[id]) > 0 {
			rows[byRequest[id][0]].Logs++
			continue
		}
		if i, ok := bySpan[lr.TraceID+"/"+lr.SpanID]; ok && lr.SpanID != "" {
			rows[i].Logs++
		}
	}
	slices.SortStableFunc(rows, func(a, b Invocation) int { return a.Span.Start.Compare(b.Span.Start) })
	return rows
}

// Table prints one row per invocation (see Invocations) with text/tabwriter, then a footer:
// the number of spans, the metric names and the number of log records received.
func (s *Snapshot) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tCOLD START\tDURATION ms\tBILLED ms\tMEMORY MB\tSTATUS\tTRACE ID\tLOGS")
	invs := s.Invocations()
	for _, inv := range invs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			inv.RequestID,
			yesNo(inv.ColdStart),
			fmt.Sprintf("%.1f", float64(inv.Duration)/float64(time.Millisecond)), // known even when 0
			formatMillis(inv.BilledDuration),
			formatMB(inv.MaxMemoryMB),
			inv.statusText(),
			orDash(inv.TraceID),
			inv.Logs,
		)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("sink: table: %w", err)
	}
	names := s.MetricNames()
	metricList := ""
	if len(names) > 0 {
		metricList = ": " + strings.Join(names, ", ")
	}
	_, err := fmt.Fprintf(w, "\n%d invocations, %d spans; %d metric names%s; %d log records\n",
		len(invs), len(s.spans), len(names), metricList, len(s.records))
	if err != nil {
		return fmt.Errorf("sink: table: %w", err)
	}
	return nil
}

// statusText is the status column: "Ok", "Error (Runtime.ExitError, OOM)"...
func (inv Invocation) statusText() string {
	var details []string
	if inv.ErrorType != "" {
		details = append(details, inv.ErrorType)
	}
	if inv.OutOfMemory {
		details = append(details, "OOM")
	}
	if len(details) == 0 {
		return inv.Status
	}
	return inv.Status + " (" + strings.Join(details, ", ") + ")"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string { return cmp.Or(s, "-") }

// formatMillis formats an attribute's duration in whole milliseconds, "-" when absent (0).
func formatMillis(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
}

func formatMB(mb float64) string {
	if mb == 0 {
		return "-"
	}
	if mb == math.Trunc(mb) {
		return fmt.Sprintf("%.0f", mb)
	}
	return fmt.Sprintf("%.1f", mb)
}

// lookupString returns the first candidate key present, as a string.
func lookupString(attrs map[string]any, candidates []string) (string, bool) {
	for _, k := range candidates {
		if v, ok := attrs[k]; ok {
			if s, isString := v.(string); isString {
				return s, true
			}
			return fmt.Sprint(v), true
		}
	}
	return "", false
}

// lookupBool returns the first candidate key present, as a bool (also from "true"/"false").
func lookupBool(attrs map[string]any, candidates []string) (value, ok bool) {
	for _, k := range candidates {
		switch v := attrs[k].(type) {
		case bool:
			return v, true
		case string:
			return v == "true", true
		}
	}
	return false, false
}

// lookupNumber returns the first candidate present with a numeric value, and its unit.
func lookupNumber(attrs map[string]any, candidates []candidate) (float64, unit, bool) {
	for _, c := range candidates {
		switch v := attrs[c.key].(type) {
		case int64:
			return float64(v), c.unit, true
		case float64:
			return v, c.unit, true
		}
	}
	return 0, 0, false
}

func lookupDuration(attrs map[string]any, candidates []candidate) time.Duration {
	v, u, ok := lookupNumber(attrs, candidates)
	if !ok {
		return 0
	}
	// Rounded: 0.121 s is 120999999.99… ns in binary floating point.
	if u == unitSeconds {
		return time.Duration(math.Round(v * float64(time.Second)))
	}
	return time.Duration(math.Round(v * float64(time.Millisecond)))
}

func lookupMemoryMB(attrs map[string]any, candidates []candidate) float64 {
	v, u, ok := lookupNumber(attrs, candidates)
	if !ok {
		return 0
	}
	const mib = 1 << 20
	if u == unitBytes || (u == unitMegabytesOrBytes && v > mib) {
		return v / mib
	}
	return v
}
