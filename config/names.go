package config

import (
	"fmt"
	"slices"
	"strings"
)

// devPrefix marks development-only variables read outside Load (such as
// SLIPSTREAM_DEV_CPUPROFILE in profiling builds): never reported as unknown.
const devPrefix = "SLIPSTREAM_DEV_"

// LoadEnviron is Load over environ, a list of KEY=value entries as
// os.Environ returns (the first entry of a name wins, as with os.Getenv).
// It also adds one Warning per SLIPSTREAM_* name Load does not read,
// naming the closest known name: a misspelt variable is otherwise
// silently ignored.
func LoadEnviron(environ []string) *Config {
	m := make(map[string]string, len(environ))
	var names []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; !dup {
			m[k] = v
			names = append(names, k)
		}
	}
	c := Load(func(k string) string { return m[k] })
	known := knownNames()
	slices.Sort(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "SLIPSTREAM_") || strings.HasPrefix(n, devPrefix) || slices.Contains(known, n) {
			continue
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s is not a Slipstream setting and is ignored: did you mean %s?", clip(n), closest(n, known)))
	}
	return c
}

// knownNames returns the SLIPSTREAM_* variables Load reads, recorded
// through getenv on an empty environment (where no fallback is skipped).
func knownNames() []string {
	var names []string
	Load(func(k string) string {
		if strings.HasPrefix(k, "SLIPSTREAM_") && !slices.Contains(names, k) {
			names = append(names, k)
		}
		return ""
	})
	slices.Sort(names)
	return names
}

// closest returns the name in candidates (sorted; the first wins a tie)
// nearest to name by edit distance.
func closest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := editDistance(name, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
