package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/slipstream-otel/slipstream/telemetry"
)

type queue struct{}

func (queue) Enqueue(context.Context, []telemetry.Event) {} // the exporter's bounded queue: never blocks

// Start the listener before subscribing: Lambda replays the Init events
// to a new subscriber at once, and does not retry a failed delivery.
func Example() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	l := telemetry.NewListener(telemetry.ListenerConfig{Port: 4243, MaxBytes: 262144, Logger: log}, queue{})
	uri, err := l.Start()
	if err != nil {
		log.Error("telemetry listener", "error", err)
		return
	}
	defer l.Close(context.Background())

	hc := &http.Client{Timeout: 2 * time.Second} // never without a timeout
	schema, err := telemetry.Subscribe(context.Background(), hc, os.Getenv("AWS_LAMBDA_RUNTIME_API"), "extension-id",
		telemetry.Subscription{Types: []string{"platform", "function"}, MaxItems: 1000, MaxBytes: 262144, TimeoutMs: 25, URI: uri})
	switch {
	case errors.Is(err, telemetry.ErrNotSupported):
		log.Warn("telemetry API not available; continuing without it", "error", err)
	case err != nil:
		log.Error("telemetry subscription failed", "error", err)
	default:
		log.Info("subscribed to telemetry", "schema_version", schema)
	}
}
