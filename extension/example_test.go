package extension_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstream-otel/slipstream/extension"
)

type nop struct{}

func (nop) Invoke(context.Context, extension.Event)                {}
func (nop) Shutdown(context.Context, extension.ShutdownPlan) error { return nil }

// A minimal extension: register under the executable's file name, follow the
// lifecycle, and report an unexpected failure before exiting.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	c := extension.NewClient(os.Getenv("AWS_LAMBDA_RUNTIME_API"), &http.Client{Timeout: 2 * time.Second})
	managed := os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "lambda-managed-instances"
	if _, err := c.Register(ctx, filepath.Base(os.Args[0]), extension.EventsFor(managed)); err != nil {
		log.Error("register", "error", err.Error())
		os.Exit(1)
	}
	ev, err := extension.Run(ctx, c, nop{}, log)
	if err != nil && !errors.Is(err, context.Canceled) {
		if xerr := c.ExitError(ctx, "Extension.UnknownReason", err); xerr != nil {
			log.Error("report exit error", "error", xerr.Error())
		}
		os.Exit(1)
	}
	log.Info("shut down", "shutdown_reason", string(ev.Reason()))
}
