package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorded is one request the fake Lambda API received.
type recorded struct {
	Method, Path, Authorization string
	Body                        map[string]any
}

// fakeLambda answers PublishLayerVersion and AddLayerVersionPermission as
// the Lambda API does (https://docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html,
// https://docs.aws.amazon.com/lambda/latest/api/API_AddLayerVersionPermission.html)
// and records every request.
type fakeLambda struct {
	mu       sync.Mutex // guards requests
	requests []recorded
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // a short read leaves the body empty: the test then fails on it
	rec := recorded{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization")}
	_ = json.Unmarshal(body, &rec.Body) // idem
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // 2018-10-31 layers <name> versions [<n> policy]
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "layers" && parts[3] == "versions":
		arn := "arn:aws:lambda:eu-west-1:123456789012:layer:" + parts[2]
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"LayerArn":%q,"LayerVersionArn":%q,"Version":7,"CompatibleArchitectures":["arm64"]}`, arn, arn+":7")
	case r.Method == http.MethodPost && len(parts) == 6 && parts[1] == "layers" && parts[5] == "policy":
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"Statement":"{\"Sid\":\"public\"}","RevisionId":"r1"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"Type":"User","message":"not found"}`)
	}
}

// layerZip returns a layer zip holding a stand-in binary.
func layerZip(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeLayer(&b, strings.NewReader("not really a binary")); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// publish runs make publish-layer against the fake API with fake
// credentials and returns the requests it made and make's output.
func publish(t *testing.T, vars ...string) ([]recorded, string, error) {
	t.Helper()
	fake := &fakeLambda{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	zip := filepath.Join(dir, "slipstream-arm64.zip")
	if err := os.WriteFile(zip, layerZip(t), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-s", "-C", "..", "publish-layer", "ZIP=" + zip, "AWS_FLAGS=--endpoint-url " + srv.URL}, vars...)
	cmd := exec.Command("make", args...)
	env := []string{
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLEFAKE", "AWS_SECRET_ACCESS_KEY=fake-secret-for-a-local-test",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "MAKEFLAGS=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	return fake.requests, string(out), err
}

func TestPublishLayer(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("no AWS CLI on PATH (make tools installs the Debian package awscli when run as root): make publish-layer not tested")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on PATH: make publish-layer not tested")
	}
	t.Run("a private layer is one PublishLayerVersion call with the zip, the architecture and the region", func(t *testing.T) {
		reqs, out, err := publish(t, "REGION=eu-west-1", "ARCH=arm64")
		if err != nil {
			t.Fatalf("make publish-layer: %v\n%s", err, out)
		}
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1: %+v\n%s", len(reqs), reqs, out)
		}
		r := reqs[0]
		if r.Method != http.MethodPost || r.Path != "/2018-10-31/layers/slipstream-arm64/versions" {
			t.Errorf("request %s %s", r.Method, r.Path)
		}
		if !strings.Contains(r.Authorization, "/eu-west-1/lambda/aws4_request") || !strings.Contains(r.Authorization, "AKIDEXAMPLEFAKE") {
			t.Errorf("Authorization %q: want a SigV4 signature for eu-west-1 with the fake key", r.Authorization)
		}
		content, _ := r.Body["Content"].(map[string]any)
		zip, _ := base64.StdEncoding.DecodeString(fmt.Sprint(content["ZipFile"]))
		if !bytes.Equal(zip, layerZip(t)) {
			t.Errorf("Content.ZipFile = %q, want the zip's bytes", zip)
		}
		if got := fmt.Sprint(r.Body["CompatibleArchitectures"]); got != "[arm64]" {
			t.Errorf("CompatibleArchitectures = %s", got)
		}
		if r.Body["LicenseInfo"] != "Apache-2.0" || r.Body["CompatibleRuntimes"] != nil {
			t.Errorf("LicenseInfo = %v, CompatibleRuntimes = %v; want Apache-2.0 and none (every runtime)", r.Body["LicenseInfo"], r.Body["CompatibleRuntimes"])
		}
		if !strings.Contains(out, "published arn:aws:lambda:eu-west-1:123456789012:layer:slipstream-arm64:7") {
			t.Errorf("output does not name the new version's ARN:\n%s", out)
		}
	})
	t.Run("PUBLIC=true grants lambda:GetLayerVersion to every account on the new version", func(t *testing.T) {
		reqs, out, err := publish(t, "REGION=us-east-1", "ARCH=x86_64", "LAYER_NAME=slipstream", "PUBLIC=true")
		if err != nil {
			t.Fatalf("make publish-layer: %v\n%s", err, out)
		}
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2: %+v\n%s", len(reqs), reqs, out)
		}
		if got := fmt.Sprint(reqs[0].Body["CompatibleArchitectures"]); got != "[x86_64]" {
			t.Errorf("CompatibleArchitectures = %s", got)
		}
		p := reqs[1]
		if p.Path != "/2018-10-31/layers/slipstream/versions/7/policy" {
			t.Errorf("policy request path %s, want version 7 of slipstream", p.Path)
		}
		if p.Body["Action"] != "lambda:GetLayerVersion" || p.Body["Principal"] != "*" || p.Body["StatementId"] != "public" {
			t.Errorf("policy request body %v", p.Body)
		}
	})
	for _, tc := range []struct {
		name string
		vars []string
		want string
	}{
		{"a missing region stops before any request", []string{"ARCH=arm64"}, "set REGION"},
		{"Go's architecture name is refused: Lambda says x86_64", []string{"REGION=eu-west-1", "ARCH=amd64"}, "want x86_64 or arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, out, err := publish(t, tc.vars...)
			if err == nil || len(reqs) != 0 || !strings.Contains(out, tc.want) {
				t.Errorf("err %v, %d requests, output:\n%s", err, len(reqs), out)
			}
		})
	}
}
