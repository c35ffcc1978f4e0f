package sink

// This file is the one place that names the attributes the sink's views and table look up.
// The exporter is written in parallel with the sink: adjust these lists, not the code that uses
// them, when an attribute name or unit changes. Candidates are tried in order; the first one
// present wins.

// unit says how to read a numeric attribute.
type unit int

const (
	unitMillis    unit = iota // a duration in milliseconds
	unitSeconds               // a duration in seconds
	unitBytes                 // a size in bytes
	unitMegabytes             // a size in MiB, as Lambda reports memory
	// unitMegabytesOrBytes is for a memory attribute whose name carries no unit: a value above
	// 1 MiB cannot be MiB (Lambda allows at most 10,240 MB), so it is read as bytes.
	unitMegabytesOrBytes
)

// candidate is an attribute key and the unit of its value.
type candidate struct {
	key  string
	unit unit
}

// attributeKeys holds the candidate attribute keys for each column of the table.
type attributeKeys struct {
	// invocationID marks an invocation span: spans carrying it are the table's rows.
	invocationID []string
	// logInvocationID ties a log record to an invocation (besides its trace and span IDs).
	logInvocationID []string
	coldStart       []string
	errorType       []string
	outOfMemory     []string
	billedDuration  []candidate
	maxMemoryUsed   []candidate
	initDuration    []candidate
}

// keys returns the attribute names used by Invocations and Table (the README lists them).
func keys() attributeKeys {
	return attributeKeys{
		invocationID:    []string{"faas.invocation_id"},
		logInvocationID: []string{"faas.invocation_id", "requestId"},
		coldStart:       []string{"faas.coldstart"},
		errorType:       []string{"error.type"},
		outOfMemory:     []string{"slipstream.out_of_memory"},
		billedDuration:  []candidate{{"slipstream.billed_duration", unitSeconds}},
		maxMemoryUsed:   []candidate{{"slipstream.max_memory_used", unitBytes}},
		initDuration:    []candidate{{"slipstream.init_duration", unitSeconds}},
	}
}
