package extension

import (
	"testing"
	"time"
)

func TestPlanShutdown(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	tests := []struct {
		name string
		ev   Event
		// want: the phases' ends from now, in plan order (Drain, Reports,
		// Flush, Spill, Close, Deadline).
		want [6]time.Duration
	}{
		{"the standard two seconds: a one-second report wait and every margin",
			Event{DeadlineMs: ms(2 * time.Second), ShutdownReason: "spindown"},
			[6]time.Duration{300 * time.Millisecond, time.Second, 1700 * time.Millisecond, 1800 * time.Millisecond, 1900 * time.Millisecond, 2 * time.Second}},
		{"a short budget cuts the report wait to keep the final flush",
			Event{DeadlineMs: ms(time.Second)},
			[6]time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 700 * time.Millisecond, 800 * time.Millisecond, 900 * time.Millisecond, time.Second}},
		{"a deadline already past gives every phase the minimum budget",
			Event{DeadlineMs: ms(-time.Second)},
			[6]time.Duration{MinShutdownBudget, MinShutdownBudget, MinShutdownBudget, MinShutdownBudget, MinShutdownBudget, -time.Second}},
		{"no deadlineMs: the fallback budget",
			Event{},
			[6]time.Duration{300 * time.Millisecond, 800 * time.Millisecond, 1400 * time.Millisecond, 1500 * time.Millisecond, 1600 * time.Millisecond, 1700 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanShutdown(tt.ev, now)
			got := [6]time.Duration{p.Drain.Sub(now), p.Reports.Sub(now), p.Flush.Sub(now), p.Spill.Sub(now), p.Close.Sub(now), p.Deadline.Sub(now)}
			if got != tt.want {
				t.Errorf("phases end at %v, want %v", got, tt.want)
			}
			if p.Reason != tt.ev.ShutdownReason || !p.Received.Equal(now) {
				t.Errorf("reason %q received %v, want %q %v", p.Reason, p.Received, tt.ev.ShutdownReason, now)
			}
			for i := 1; i < 5; i++ {
				if got[i] < got[i-1] {
					t.Errorf("phase %d ends before phase %d: %v", i, i-1, got)
				}
			}
		})
	}
}
