// Package secrets resolves the references to secrets a SLIPSTREAM_* value
// may hold instead of the secret itself (${secretsmanager:<ARN>#<key>},
// ${ssm:/param/name}), with direct SigV4-signed calls to AWS Secrets
// Manager's GetSecretValue
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html)
// and Systems Manager's GetParameter
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html),
// JSON 1.1 protocol, with the function's credentials.
//
// Concurrency: a [Resolver] fetches on one goroutine of its own, started
// by [Resolver.Start] once the first /event/next has been sent; callers
// read values under its lock ([Resolver.Value]) or wait for them
// ([Resolver.Wait]). Values stay in memory and are never logged.
package secrets
