variable "region" {
  description = "AWS region to deploy in. Layers are regional: the layer is published in this region."
  type        = string
  default     = "eu-west-1"
}

variable "architecture" {
  description = "Lambda architecture of the function and the layer: x86_64 or arm64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "layer_zip" {
  description = "Path of the layer zip built by `make layer` (dist/slipstream-<architecture>.zip)."
  type        = string
  default     = ""
}

variable "function_zip" {
  description = "Path of the function's deployment package (a zip holding bootstrap for provided.al2023)."
  type        = string
}

variable "otlp_endpoint" {
  description = "Base OTLP/HTTP endpoint of your collector or backend; /v1/traces, /v1/metrics and /v1/logs are appended."
  type        = string
}

variable "otlp_headers" {
  description = "Export headers, key=value pairs separated by commas with percent-encoded values (for example authorization=Bearer%20<token>). Pass it with TF_VAR_otlp_headers; never write it in a file."
  type        = string
  default     = ""
  sensitive   = true
}
