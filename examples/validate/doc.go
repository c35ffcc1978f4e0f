// Package validate checks the deployment examples offline, without a cloud
// provider, a provider download or Docker: the Terraform configuration
// (parsed with github.com/hashicorp/hcl/v2), the container image's
// Dockerfile, the SAM template and, when `make examples` has synthesized it,
// the CDK app's CloudFormation template. Each check holds an example to the
// facts a deployment depends on: Lambda's architecture names, the variables
// the agent reads (as the repository README's configuration reference lists
// them), the extension's place in /opt/extensions, and no secret written in
// a file. It is a module of its own so that the agent's go.mod never holds
// these dependencies. Tests only; nothing here runs concurrently.
package validate
