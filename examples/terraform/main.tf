# A function with the Slipstream layer, exporting OTLP to your backend.
#
#   make layer
#   GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./examples/function && zip function.zip bootstrap
#   cd examples/terraform
#   export TF_VAR_otlp_headers='authorization=Bearer%20<token>'   # kept out of files
#   terraform init && terraform apply -var function_zip=../../function.zip -var otlp_endpoint=https://otlp.example.com
#
# The headers end up in the function's configuration (Lambda encrypts environment variables at rest)
# and in the Terraform state: keep the state encrypted.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

locals {
  layer_zip = var.layer_zip != "" ? var.layer_zip : "${path.module}/../../dist/slipstream-${var.architecture}.zip"
}

resource "aws_lambda_layer_version" "slipstream" {
  layer_name               = "slipstream-${var.architecture}"
  description              = "Slipstream: Lambda Telemetry API to OpenTelemetry (OTLP)"
  filename                 = local.layer_zip
  source_code_hash         = filebase64sha256(local.layer_zip)
  compatible_architectures = [var.architecture]
  license_info             = "Apache-2.0"

  # Retention, chosen on purpose: a new zip replaces this version and the old one is deleted.
  # A function already deployed with the old version keeps it (Lambda keeps a copy for the
  # functions that use it), and this configuration's function moves to the new one. For a layer
  # shared with other stacks or accounts, set skip_destroy = true instead, and delete old
  # versions by hand once nothing refers to them.
  skip_destroy = false
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name_prefix        = "slipstream-example-"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# Active tracing needs the role to write to X-Ray.
resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_lambda_function" "example" {
  function_name    = "slipstream-example"
  role             = aws_iam_role.function.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.function_zip
  source_code_hash = filebase64sha256(var.function_zip)
  memory_size      = 256
  timeout          = 10
  layers           = [aws_lambda_layer_version.slipstream.arn]

  tracing_config {
    mode = "Active" # gives each invocation an X-Ray trace header that the spans join
  }

  environment {
    variables = {
      OTEL_SERVICE_NAME        = "slipstream-example"
      SLIPSTREAM_OTLP_ENDPOINT = var.otlp_endpoint
      SLIPSTREAM_OTLP_HEADERS  = var.otlp_headers
      SLIPSTREAM_FLUSH         = "adaptive"
      SLIPSTREAM_LOG_LEVEL     = "info"
    }
  }
}

output "function_name" {
  value = aws_lambda_function.example.function_name
}

output "layer_version_arn" {
  value = aws_lambda_layer_version.slipstream.arn
}
