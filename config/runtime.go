package config

import (
	"runtime"
	"runtime/debug"
)

// ApplyRuntime sets the agent's own scheduler and garbage collector
// settings from c (SLIPSTREAM_GOMAXPROCS, SLIPSTREAM_GOGC and
// SLIPSTREAM_GOMEMLIMIT) over any GOMAXPROCS, GOGC or GOMEMLIMIT the
// function set for itself, which the agent inherits: a Go function's
// GOGC=off must not leave the agent without a collector. A zero MaxProcs
// counts as SLIPSTREAM_GOMAXPROCS's default, 1, a zero GCPercent as
// SLIPSTREAM_GOGC's default, 400, and a zero MemoryLimit as
// DefaultMemoryLimit(BufferMaxBytes), so a Config built by hand is safe
// too. Call it once, at start.
func (c *Config) ApplyRuntime() {
	procs := c.MaxProcs
	if procs <= 0 {
		procs = defaultMaxProcs
	}
	gc := c.GCPercent
	if gc == 0 {
		gc = defaultGCPercent
	}
	limit := c.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit(c.BufferMaxBytes)
	}
	runtime.GOMAXPROCS(procs)
	debug.SetGCPercent(gc)
	debug.SetMemoryLimit(limit)
}
