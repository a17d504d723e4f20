package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deploy/taxii-bridge.service keeps its hardening, and its command lines
// name commands and flags that exist: ExecStartPre passes on the example
// configuration, ExecStart's global flags and command parse.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "taxii-bridge.service"))
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("not a directive: %q", line)
			continue
		}
		directives[k] = append(directives[k], v)
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "taxii-bridge", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"WorkingDirectory": "/var/lib/taxii-bridge", "KillSignal": "SIGTERM",
	} {
		if got := directives[k]; len(got) == 0 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	args := func(key string) []string {
		v := directives[key]
		if len(v) != 1 {
			t.Fatalf("%s appears %d times", key, len(v))
		}
		f := strings.Fields(v[0])
		if f[0] != "/usr/local/bin/taxii-bridge" {
			t.Fatalf("%s runs %s", key, f[0])
		}
		for i := range f {
			if f[i] == "/etc/taxii-bridge/taxii-bridge.yaml" {
				f[i] = filepath.Join("..", "..", "config.example.yaml")
			}
		}
		return f[1:]
	}
	if code, out, errOut := runCmd(t, "", nil, args("ExecStartPre")...); code != exitOK {
		t.Errorf("ExecStartPre %v: exit %d\n%s%s", args("ExecStartPre"), code, out, errOut)
	}
	start := args("ExecStart")
	if len(start) < 3 || start[0] != "-log-format" || start[1] != "json" || start[2] != "serve" {
		t.Errorf("ExecStart = %v, want -log-format json serve -config …", start)
	}
	if code, _, errOut := runCmd(t, "", nil, append(start[:3:3], "-h")...); code != exitOK {
		t.Errorf("ExecStart's command line does not parse: %d %s", code, errOut)
	}
}
