package signals

import (
	"crypto/sha1"
	"encoding/hex"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/slipstream-otel/slipstream/config"
)

// resourceInfo is what the resource is built from. instance and the
// function name/version fallbacks come from platform.initStart (or
// restoreStart), so the resource is rebuilt when they arrive. Until the
// instance is known the resource has no service.instance.id, faas.instance
// or aws.log.stream.names: initStart is in the first batch the Telemetry
// API delivers, and a made-up ID would change when it arrives, leaving a
// stray series behind in the backend.
type resourceInfo struct {
	cfg       *config.Config
	accountID string
	arch      string // host.arch value
	version   string // telemetry.distro.version
	// From initStart / restoreStart.
	instance        string
	functionName    string
	functionVersion string
	instanceMaxMem  int64
}

// hostArch maps runtime.GOARCH to the semantic-convention host.arch value.
func hostArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "amd64"
	case "arm64":
		return "arm64"
	case "arm":
		return "arm32"
	case "386":
		return "x86"
	case "ppc64", "ppc64le":
		return "ppc64"
	case "s390x":
		return "s390x"
	}
	return goarch
}

func (ri *resourceInfo) fnName() string {
	if ri.cfg.FunctionName != "" {
		return ri.cfg.FunctionName
	}
	return ri.functionName
}

func (ri *resourceInfo) fnVersion() string {
	if ri.cfg.FunctionVersion != "" {
		return ri.cfg.FunctionVersion
	}
	return ri.functionVersion
}

// instanceNamespace is the namespace UUID the semantic conventions give for
// a service.instance.id derived from an inherent unique ID
// (https://opentelemetry.io/docs/specs/semconv/registry/attributes/service/).
var instanceNamespace = [16]byte{0x4d, 0x63, 0x00, 0x9a, 0x8d, 0x0f, 0x11, 0xee, 0xaa, 0xd7, 0x4c, 0x79, 0x6e, 0xd8, 0xe3, 0x20}

// serviceInstanceID is service.instance.id for an execution environment:
// the UUID version 5 (RFC 9562, section 5.5) of its log stream name, which
// names one environment and only one. A backend keys its series on it
// (Prometheus makes it the instance label), so environments running side
// by side no longer write into each other's cumulative series.
func serviceInstanceID(stream string) string {
	h := sha1.New()
	h.Write(instanceNamespace[:])
	h.Write([]byte(stream))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// build returns the resource: the AWS Lambda attributes of the semantic
// conventions, then OTEL_RESOURCE_ATTRIBUTES (which override them, except
// service.name when OTEL_SERVICE_NAME is set, as the specification says).
func (ri *resourceInfo) build() *resource.Resource {
	cfg := ri.cfg
	fn := ri.fnName()
	attrs := make([]attribute.KeyValue, 0, 20+len(cfg.ResourceAttributes))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	service := fn
	if service == "" {
		service = "unknown_service"
	}
	if v, ok := cfg.ResourceAttributes["service.name"]; ok && v != "" {
		service = v
	}
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	add("service.name", service)
	add("cloud.provider", "aws")
	add("cloud.platform", "aws_lambda")
	add("cloud.region", cfg.Region)
	add("cloud.account.id", ri.accountID)
	add("faas.name", fn)
	add("faas.version", ri.fnVersion())
	if ri.instance != "" {
		add("service.instance.id", serviceInstanceID(ri.instance))
		add("faas.instance", ri.instance)
		attrs = append(attrs, attribute.StringSlice("aws.log.stream.names", []string{ri.instance}))
	}
	group := cfg.LogGroup
	if group == "" && fn != "" {
		group = "/aws/lambda/" + fn
	}
	if group != "" {
		attrs = append(attrs, attribute.StringSlice("aws.log.group.names", []string{group}))
	}
	switch {
	case cfg.MemorySizeMB > 0:
		attrs = append(attrs, attribute.Int64("faas.max_memory", int64(cfg.MemorySizeMB)<<20))
	case ri.instanceMaxMem > 0:
		attrs = append(attrs, attribute.Int64("faas.max_memory", ri.instanceMaxMem))
	}
	add("host.arch", ri.arch)
	add("telemetry.distro.name", "slipstream")
	add("telemetry.distro.version", ri.version)

	keys := make([]string, 0, len(cfg.ResourceAttributes))
	for k := range cfg.ResourceAttributes {
		if k != "service.name" && k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, attribute.String(k, cfg.ResourceAttributes[k]))
	}
	// NewWithAttributes de-duplicates keys, the last value winning.
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...)
}
