package config

import "runtime/debug"

// ApplyRuntime sets the agent's own garbage collector settings from c
// (SLIPSTREAM_GOGC and SLIPSTREAM_GOMEMLIMIT) over any GOGC or GOMEMLIMIT
// the function set for itself, which the agent inherits: a Go function's
// GOGC=off must not leave the agent without a collector. A zero GCPercent
// counts as SLIPSTREAM_GOGC's default, 400, and a zero MemoryLimit as
// DefaultMemoryLimit(BufferMaxBytes), so a Config built by hand is safe
// too. Call it once, at start.
func (c *Config) ApplyRuntime() {
	gc := c.GCPercent
	if gc == 0 {
		gc = defaultGCPercent
	}
	limit := c.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit(c.BufferMaxBytes)
	}
	debug.SetGCPercent(gc)
	debug.SetMemoryLimit(limit)
}
