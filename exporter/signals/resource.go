package signals

import (
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/slipstream-otel/slipstream/config"
)

// resourceInfo is what the resource is built from. instance and the
// function name/version fallbacks come from platform.initStart (or
// restoreStart), so the resource is rebuilt when they arrive.
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
