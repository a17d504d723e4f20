package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// runCmd runs the program in-process with the given stdin and environment.
func runCmd(t *testing.T, stdin string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

func TestHelpAndUnknownCommand(t *testing.T) {
	code, out, _ := runCmd(t, "", nil, "help")
	if code != exitOK {
		t.Fatalf("help exit = %d", code)
	}
	for _, c := range []string{"check", "hash-password", "version"} {
		if !strings.Contains(out, "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
	code, _, errOut := runCmd(t, "", nil, "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "hash-password") {
		t.Errorf("unknown command: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, _ := runCmd(t, "", nil); code != exitUsage {
		t.Errorf("no command: exit %d; want 2", code)
	}
	code, _, errOut = runCmd(t, "", nil, "check", "-h")
	if code != exitOK || !strings.Contains(errOut, "-config") {
		t.Errorf("check -h: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, _ := runCmd(t, "", nil, "check", "-bogus"); code != exitUsage {
		t.Errorf("unknown flag: exit %d; want 2", code)
	}
	if code, _, _ := runCmd(t, "", nil, "-log-level", "loud", "version"); code != exitUsage {
		t.Errorf("bad -log-level: exit %d; want 2", code)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "", nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "taxii-bridge ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, out %q", code, out)
	}
}

func TestHashPassword(t *testing.T) {
	code, out, _ := runCmd(t, "correct horse\n", nil, "hash-password")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	h := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse")); err != nil {
		t.Errorf("printed hash does not verify the password: %v", err)
	}
	if strings.Contains(out, "correct horse") {
		t.Error("password echoed")
	}
	for _, in := range []string{"", "\n", "\r\n"} {
		if code, _, errOut := runCmd(t, in, nil, "hash-password"); code != exitUsage || !strings.Contains(errOut, "empty password") {
			t.Errorf("hash-password with %q: exit %d, %s", in, code, errOut)
		}
	}
	if code, _, _ := runCmd(t, "", nil, "hash-password", "secret-on-argv"); code != exitUsage {
		t.Errorf("password as an argument: exit %d; want 2", code)
	}
}

func TestCheckExampleConfig(t *testing.T) {
	code, out, errOut := runCmd(t, "", nil, "check", "-config-only", "-config", filepath.Join("..", "..", "config.example.yaml"))
	if code != exitOK || !strings.Contains(out, "config") {
		t.Errorf("check example: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// One message names every bad key, exit 2 (issue 2 acceptance).
func TestCheckBadConfigNamesEveryKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := `sync:
  intervall: 15m
  first_fetch: 3 weeks
  confidence_threshold: 150
stix:
  default_tlp: ORANGE
taxii:
  users:
    - name: analyst
      password_hash: $2a$12$S5hOcwr/hgf8h8og1GdQ3.AcD9JYvCNF9Byll20U/jLrPavq3nUZi
      max_tlp: AMBR
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "", nil, "check", "-config", path)
	if code != exitUsage {
		t.Fatalf("exit %d; want 2\n%s", code, errOut)
	}
	for _, k := range []string{"sync.intervall", "sync.first_fetch", "sync.confidence_threshold", "stix.default_tlp", "taxii.users[0].max_tlp"} {
		if !strings.Contains(errOut, k) {
			t.Errorf("message does not name %s:\n%s", k, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", nil, "check", "-config", filepath.Join(t.TempDir(), "missing.yaml")); code != exitUsage || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d, %s", code, errOut)
	}
}

// Secrets from the file or the environment never reach stdout, stderr or logs.
func TestSecretsNeverInOutput(t *testing.T) {
	const fileSecret, envSecret = "file-secret-XYZZY-123", "env-secret-PLUGH-456"
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := "threatconnect:\n  base_url: \"\"\n  access_id: id\n  secret_key: " + fileSecret + "\n  api_token: " + fileSecret +
		"\ntaxii:\n  cursor_secret: " + fileSecret + "\n  listen: nonsense\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TC_SECRET_KEY": envSecret, "TC_API_TOKEN": envSecret, "TAXII_BRIDGE_CURSOR_SECRET": envSecret}
	for _, args := range [][]string{
		{"-log-level", "debug", "check", "-config", path},
		{"-log-level", "debug", "-log-format", "json", "check", "-config", path},
	} {
		_, out, errOut := runCmd(t, "", env, args...)
		for _, s := range []string{fileSecret, envSecret} {
			if strings.Contains(out+errOut, s) {
				t.Errorf("%v printed a secret:\n%s%s", args, out, errOut)
			}
		}
	}
}
