package secrets

import (
	"errors"
	"strings"
)

// Ref is a reference to a secret held by AWS: a SLIPSTREAM_* value
// written as ${secretsmanager:<secret ARN or name>[#<JSON key>]} or
// ${ssm:<parameter name or ARN>}.
type Ref struct {
	// Service is "secretsmanager" or "ssm".
	Service string
	// ID is the secret's ARN or name, or the parameter's name or ARN.
	ID string
	// Key, for Secrets Manager, names a key of a secret stored as a JSON
	// object; empty means the whole SecretString.
	Key string
}

// Services of a Ref.
const (
	SecretsManager = "secretsmanager"
	SSM            = "ssm"
)

// ErrSyntax: a value that starts a reference but is not one.
var ErrSyntax = errors.New("not a secret reference: accepted ${secretsmanager:<ARN or name>[#<JSON key>]} or ${ssm:<parameter name>}")

// Parse reads a whole value as a reference. ok is false when the value is
// not written as one (it does not start with "${secretsmanager:" or
// "${ssm:"); err is set when it starts like one but is malformed.
func Parse(v string) (ref Ref, ok bool, err error) {
	var body string
	switch {
	case strings.HasPrefix(v, "${"+SecretsManager+":"):
		ref.Service, body = SecretsManager, v[len("${"+SecretsManager+":"):]
	case strings.HasPrefix(v, "${"+SSM+":"):
		ref.Service, body = SSM, v[len("${"+SSM+":"):]
	default:
		return Ref{}, false, nil
	}
	body, closed := strings.CutSuffix(body, "}")
	if !closed || body == "" || strings.ContainsAny(body, "{}$ \t") {
		return Ref{}, true, ErrSyntax
	}
	if ref.Service == SecretsManager {
		// A secret ARN has no '#': what follows the last '#' is the key.
		if i := strings.LastIndexByte(body, '#'); i >= 0 {
			body, ref.Key = body[:i], body[i+1:]
			if body == "" || ref.Key == "" {
				return Ref{}, true, ErrSyntax
			}
		}
	} else if strings.ContainsRune(body, '#') {
		return Ref{}, true, ErrSyntax
	}
	ref.ID = body
	return ref, true, nil
}

// String is the reference as written.
func (r Ref) String() string {
	s := "${" + r.Service + ":" + r.ID
	if r.Key != "" {
		s += "#" + r.Key
	}
	return s + "}"
}

// region returns the region in an ARN (arn:aws:<service>:<region>:...), or "".
func (r Ref) region() string {
	if !strings.HasPrefix(r.ID, "arn:") {
		return ""
	}
	parts := strings.SplitN(r.ID, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}
