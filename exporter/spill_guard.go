package exporter

import (
	"log/slog"

	"github.com/slipstream-otel/slipstream/internal/privdir"
)

// spillDirUsable checks SLIPSTREAM_SPILL_DIR before anything is written
// there: created 0700 when missing; a symbolic link, a directory of
// another user (root excepted) or one writable by others without the
// sticky bit switches spill off with one ERROR line. Spill files hold
// telemetry; they must not be readable by, or redirected by, someone else.
func spillDirUsable(dir string, log *slog.Logger) bool {
	if err := privdir.Prepare(dir); err != nil {
		log.Error("SLIPSTREAM_SPILL_DIR cannot hold spill files: spill off (what cannot be sent at shutdown is dropped)",
			"dir", dir, "error", err.Error())
		return false
	}
	return true
}
