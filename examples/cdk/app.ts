// A Node.js function with the Slipstream layer, exporting OTLP to your backend.
//
//   make layer                                  # dist/slipstream-arm64.zip and dist/slipstream-x86_64.zip
//   cd examples/cdk && npm ci && npm run build
//   export SLIPSTREAM_OTLP_HEADERS='authorization=Bearer%20<token>'   # read at synth time, never written in a file
//   npx cdk deploy -c architecture=arm64 -c otlpEndpoint=https://otlp.example.com
//
// The layer is the zip that make layer built, used as it is (no bundling). Context values:
// architecture (x86_64 or arm64), otlpEndpoint, layerZip (another path of the zip).
import * as path from "path";
import { App, CfnOutput, Stack, StackProps } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

const architectures: Record<string, lambda.Architecture> = {
  x86_64: lambda.Architecture.X86_64,
  arm64: lambda.Architecture.ARM_64,
};

interface SlipstreamExampleProps extends StackProps {
  architecture: string;
  layerZip: string;
  otlpEndpoint: string;
  otlpHeaders: string;
}

class SlipstreamExample extends Stack {
  constructor(scope: Construct, id: string, props: SlipstreamExampleProps) {
    super(scope, id, props);
    const architecture = architectures[props.architecture];
    if (!architecture) {
      throw new Error(`architecture ${props.architecture}: want x86_64 or arm64`);
    }

    const layer = new lambda.LayerVersion(this, "Slipstream", {
      layerVersionName: `slipstream-${props.architecture}`,
      description: "Slipstream: Lambda Telemetry API to OpenTelemetry (OTLP)",
      code: lambda.Code.fromAsset(props.layerZip), // a .zip is uploaded as it is
      compatibleArchitectures: [architecture], // runtimes left out: it works with every runtime
      license: "Apache-2.0",
    });

    const fn = new lambda.Function(this, "Example", {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture,
      handler: "index.handler",
      code: lambda.Code.fromInline(
        'exports.handler = async (event) => { console.log("hello from a function observed by Slipstream"); return { ok: true }; };',
      ),
      memorySize: 256,
      tracing: lambda.Tracing.ACTIVE, // an X-Ray trace header for each invocation, which the spans join
      layers: [layer],
      environment: {
        OTEL_SERVICE_NAME: "slipstream-cdk-example",
        SLIPSTREAM_OTLP_ENDPOINT: props.otlpEndpoint,
        SLIPSTREAM_OTLP_HEADERS: props.otlpHeaders,
        SLIPSTREAM_FLUSH: "adaptive",
      },
    });

    new CfnOutput(this, "FunctionName", { value: fn.functionName });
    new CfnOutput(this, "LayerVersionArn", { value: layer.layerVersionArn });
  }
}

const app = new App();
const architecture = String(app.node.tryGetContext("architecture") ?? "arm64");
new SlipstreamExample(app, "SlipstreamExample", {
  architecture,
  layerZip: String(
    app.node.tryGetContext("layerZip") ?? path.join(__dirname, "..", "..", "..", "dist", `slipstream-${architecture}.zip`),
  ),
  otlpEndpoint: String(app.node.tryGetContext("otlpEndpoint") ?? "http://localhost:4318"),
  otlpHeaders: process.env.SLIPSTREAM_OTLP_HEADERS ?? "",
});
app.synth();
