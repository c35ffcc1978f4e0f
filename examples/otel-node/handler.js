// A Node.js Lambda handler that exports its own spans with the OpenTelemetry
// JS SDK to Slipstream's local receiver (the OTLP/HTTP default,
// http://localhost:4318; OTEL_EXPORTER_OTLP_ENDPOINT overrides it) and
// flushes at the end of each invocation: the export costs a loopback round
// trip, and Slipstream sends the spans on after the function is answered.
// The X-Ray trace header Lambda hands the runtime (_X_AMZN_TRACE_ID) is
// continued, so Slipstream nests the handler span under its invocation span.
'use strict';

const api = require('@opentelemetry/api');
const { TracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const provider = new TracerProvider({
  resource: resourceFromAttributes({
    'service.name': process.env.OTEL_SERVICE_NAME || process.env.AWS_LAMBDA_FUNCTION_NAME || 'node-example',
  }),
  // OTEL_EXPORTER_OTLP_ENDPOINT is read by the exporter; its default is the receiver.
  spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
});
const tracer = provider.getTracer('slipstream-example-node');

// xrayContext turns "Root=1-<8>-<24>;Parent=<16>;Sampled=1" into a remote
// parent (the format of https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader).
function xrayContext(header) {
  const kv = Object.fromEntries((header || '').split(';').map((p) => p.trim().split('=')));
  const root = kv.Root || '';
  if (!/^1-[0-9a-f]{8}-[0-9a-f]{24}$/i.test(root) || !/^[0-9a-f]{16}$/i.test(kv.Parent || '')) {
    return api.context.active();
  }
  return api.trace.setSpanContext(api.context.active(), {
    traceId: (root.slice(2, 10) + root.slice(11)).toLowerCase(),
    spanId: kv.Parent.toLowerCase(),
    traceFlags: kv.Sampled === '1' ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
    isRemote: true,
  });
}

exports.handler = async (event) => {
  const parent = xrayContext(process.env._X_AMZN_TRACE_ID);
  const span = tracer.startSpan('handle', { kind: api.SpanKind.SERVER }, parent);
  try {
    const child = tracer.startSpan('work', {}, api.trace.setSpan(parent, span));
    child.setAttribute('example.items', (event && event.items) || 0);
    child.end();
    return { ok: true };
  } finally {
    span.end();
    await provider.forceFlush(); // a loopback round trip to Slipstream's receiver
  }
};
