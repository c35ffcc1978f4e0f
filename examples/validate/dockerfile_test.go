package validate

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined
// (https://docs.docker.com/reference/dockerfile/).
type instruction struct {
	Cmd   string   // upper case: FROM, COPY...
	Flags []string // --from=build, --chmod=0755
	Args  []string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		fields := strings.Fields(cur.String())
		cur.Reset()
		in := instruction{Cmd: strings.ToUpper(fields[0])}
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "--") && len(in.Args) == 0 {
				in.Flags = append(in.Flags, f)
				continue
			}
			in.Args = append(in.Args, f)
		}
		out = append(out, in)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continued line", path)
	}
	return out
}

func (in instruction) flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../container/Dockerfile")
	// The instructions of the final stage: what the image holds.
	last := 0
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	final := ins[last:]
	t.Run("the image is built on an AWS Lambda base image", func(t *testing.T) {
		if len(final[0].Args) == 0 || !strings.HasPrefix(final[0].Args[0], "public.ecr.aws/lambda/") {
			t.Errorf("final stage FROM %v", final[0].Args)
		}
	})
	t.Run("the agent is copied to /opt/extensions/ as an executable", func(t *testing.T) {
		found := false
		for _, in := range final {
			if in.Cmd != "COPY" && in.Cmd != "ADD" || len(in.Args) < 2 {
				continue
			}
			dest := in.Args[len(in.Args)-1]
			if !strings.HasPrefix(dest, "/opt/extensions/") {
				continue
			}
			found = true
			if dest == "/opt/extensions/" {
				t.Errorf("%s %v: name the file (/opt/extensions/slipstream): Lambda starts each executable there", in.Cmd, in.Args)
			}
			mode, ok := in.flag("chmod")
			if !ok {
				t.Errorf("%s %v has no --chmod: the executable bit would depend on the build context", in.Cmd, in.Args)
				continue
			}
			m, err := strconv.ParseUint(mode, 8, 32)
			if err != nil || m&0o111 != 0o111 {
				t.Errorf("--chmod=%s does not make the extension executable for all", mode)
			}
		}
		if !found {
			t.Error("nothing is copied into /opt/extensions/")
		}
	})
	t.Run("the agent is the release build of ./cmd/slipstream", func(t *testing.T) {
		found := false
		for _, in := range ins {
			s := strings.Join(in.Args, " ")
			if in.Cmd == "RUN" && strings.Contains(s, "./cmd/slipstream") {
				found = true
				for _, want := range []string{"CGO_ENABLED=0", "-tags grpcnotrace", "-trimpath"} {
					if !strings.Contains(s, want) {
						t.Errorf("the agent's build lacks %s: %s", want, s)
					}
				}
			}
		}
		if !found {
			t.Error("no RUN builds ./cmd/slipstream")
		}
	})
	t.Run("no Slipstream or OTLP setting is baked into the image", func(t *testing.T) {
		for _, in := range ins {
			if in.Cmd != "ENV" && in.Cmd != "ARG" {
				continue
			}
			for _, a := range in.Args {
				if strings.HasPrefix(a, "SLIPSTREAM_") || strings.HasPrefix(a, "OTEL_") {
					t.Errorf("%s %s: set it on the function, not in the image", in.Cmd, a)
				}
			}
		}
	})
}
