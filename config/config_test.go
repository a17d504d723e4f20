package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

func noEnv(string) string { return "" }

func TestExampleFileIsValid(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "config.example.yaml"), noEnv)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	// The example documents the defaults: spot-check that it says what Default says.
	def := config.Default()
	if cfg.Sync.Interval != def.Sync.Interval || cfg.Sync.FirstFetch != def.Sync.FirstFetch ||
		cfg.TAXII.MaxPageSize != def.TAXII.MaxPageSize || cfg.TAXII.MaxContentLength != def.TAXII.MaxContentLength ||
		cfg.ThreatConnect.Timeout != def.ThreatConnect.Timeout || cfg.Sync.PageSize != def.Sync.PageSize {
		t.Errorf("example file disagrees with Default(): %+v vs %+v", cfg.Sync, def.Sync)
	}
	if got := cfg.TAXII.Collections[0].Filter.MaxTLP.Level; got != tlp.Green {
		t.Errorf("collections[0].filter.max_tlp = %v; want GREEN", got)
	}
	if got := cfg.TAXII.Users[0].MaxTLP.Level; got != tlp.Amber {
		t.Errorf("users[0].max_tlp = %v; want AMBER", got)
	}
}

func TestParseDefaultsAndDurations(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("sync:\n  interval: 90s\n  first_fetch: 7d\n  indicator_types: [Host, URL]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sync.Interval.D(); got != 90*time.Second {
		t.Errorf("interval = %v; want 90s", got)
	}
	if got := cfg.Sync.FirstFetch.D(); got != 7*24*time.Hour {
		t.Errorf("first_fetch = %v; want 168h", got)
	}
	if got := strings.Join(cfg.Sync.IndicatorTypes, ","); got != "Host,URL" {
		t.Errorf("indicator_types = %q; want the list to replace the default, not merge", got)
	}
	if got := strings.Join(cfg.Sync.GroupTypes, ","); got != "All" {
		t.Errorf("group_types = %q; want default All", got)
	}
	if !cfg.Sync.ActiveOnly || cfg.TAXII.Listen != "127.0.0.1:8080" {
		t.Errorf("defaults lost: active_only=%v listen=%q", cfg.Sync.ActiveOnly, cfg.TAXII.Listen)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// Every bad key is named, all in one error (issue 2 acceptance).
func TestValidationNamesEveryBadKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, each must appear
	}{
		{"misspelled key", "sync:\n  intervall: 15m\n", []string{`sync.intervall: unknown key (line 2); did you mean "interval"?`}},
		{"unknown section", "taxi:\n  listen: x\n", []string{"taxi: unknown key"}},
		{"unknown nested in list", "taxii:\n  users:\n    - name: a\n      pasword_hash: x\n", []string{"taxii.users[0].pasword_hash: unknown key"}},
		{"bad duration", "sync:\n  interval: 15 minutes\n", []string{`sync.interval: invalid duration "15 minutes"`}},
		{"bad days", "sync:\n  first_fetch: 1.5d\n", []string{"sync.first_fetch: invalid duration"}},
		{"threshold out of range", "sync:\n  confidence_threshold: 150\n", []string{"sync.confidence_threshold: must be between 0 and 100, got 150"}},
		{"star owner is alone", "sync:\n  owners: [\"*\", Demo Source]\n", []string{`sync.owners[0]: "*" (every readable owner) must be the only entry`}},
		{"threat assess out of range", "sync:\n  threat_assess_score_threshold: -1\n", []string{"sync.threat_assess_score_threshold: must be between 0 and 1000, got -1"}},
		{"unknown TLP", "stix:\n  default_tlp: PURPLE\n", []string{`stix.default_tlp: unknown TLP level "PURPLE"`}},
		{"max_tlp typo", "taxii:\n  users:\n    - name: a\n      password_hash: $2a$12$abc\n      max_tlp: AMBR\n", []string{`taxii.users[0].max_tlp: unknown TLP level "AMBR"`}},
		{"bad tlp mode", "stix:\n  tlp_mode: tlp3\n", []string{"stix.tlp_mode: must be compat, tlp2 or v1-only"}},
		{"bad reputation", "stix:\n  indicator_reputation: Evil\n", []string{`stix.indicator_reputation: must be empty, Bad, Suspicious, Good`}},
		{"bad indicator type", "sync:\n  indicator_types: [Hostname]\n", []string{`sync.indicator_types[0]: unknown type "Hostname"`}},
		{"HMAC half set", "threatconnect:\n  base_url: https://tc.example/api\n  access_id: x\n", []string{"threatconnect.access_id: HMAC needs both"}},
		{"wrong type", "sync:\n  page_size: many\n", []string{`sync.page_size: want a whole number, got "many" (line 2)`}},
		{"list expected", "sync:\n  owners: Org A\n", []string{"sync.owners: want a list"}},
		{"bad listen", "taxii:\n  listen: 8080\n", []string{"taxii.listen: must be host:port"}},
		{"post limits", "taxii:\n  max_objects_per_post: 0\n  status_retention: 1h\n", []string{"taxii.max_objects_per_post: must be between 1", "taxii.status_retention: must be at least 24h"}},
		{"bad password hash", "taxii:\n  users:\n    - name: a\n      password_hash: secret\n", []string{"taxii.users[0].password_hash: must be a bcrypt hash"}},
		{"bad api key hash", "taxii:\n  api_keys:\n    - name: k\n      key_sha256: abc\n", []string{"taxii.api_keys[0].key_sha256: must be the 64 hex digits"}},
		{"duplicate alias", "taxii:\n  collections:\n    - alias: a\n    - alias: a\n", []string{`taxii.collections[1].alias: duplicate alias "a"`}},
		{"unknown profile", "taxii:\n  users:\n    - name: a\n      password_hash: $2a$12$abc\n      profile: qradar\n", []string{`taxii.users[0].profile: unknown profile "qradar"`}},
		{"bad metrics listen", "metrics:\n  listen: 9464\n", []string{"metrics.listen: must be host:port"}},
		{"metrics on the TAXII port", "metrics:\n  listen: 127.0.0.1:8080\n", []string{"metrics.listen: must differ from taxii.listen"}},
		{"negative rate", "taxii:\n  rate_limit: {requests_per_second: -2}\n  api_keys:\n    - name: k\n      key_sha256: " + strings.Repeat("a", 64) + "\n      rate_limit: {requests_per_second: 1, burst: -1}\n",
			[]string{"taxii.rate_limit.requests_per_second: must be between 0", "taxii.api_keys[0].rate_limit.burst: must be between 0"}},
		{"all at once", `sync:
  intervall: 15m
  first_fetch: soon
  confidence_threshold: 150
stix:
  default_tlp: PURPLE
taxii:
  users:
    - name: u
      password_hash: $2a$12$abc
      max_tlp: AMBR
`, []string{"sync.intervall: unknown key", "sync.first_fetch: invalid duration", "sync.confidence_threshold: must be between 0 and 100, got 150",
			"stix.default_tlp: unknown TLP level", "taxii.users[0].max_tlp: unknown TLP level"}},
		{"all values at once", `sync:
  first_fetch: soon
  confidence_threshold: 150
stix:
  default_tlp: PURPLE
taxii:
  users:
    - name: u
      password_hash: $2a$12$abc
      max_tlp: AMBR
`, []string{"sync.first_fetch: invalid duration", "sync.confidence_threshold: must be between 0 and 100, got 150",
			"stix.default_tlp: unknown TLP level", "taxii.users[0].max_tlp: unknown TLP level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path, noEnv)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tt.yaml)
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("error is %T, want *config.ValidationError: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Unknown keys are all reported, not just the first.
func TestUnknownKeysAreAllReported(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("sync:\n  intervall: 1m\n  ownres: []\ntaxii:\n  lisen: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err = cfg.Validate(); err == nil {
		t.Fatal("accepted unknown keys")
	}
	for _, k := range []string{"sync.intervall", "sync.ownres", "taxii.lisen"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
}

func TestEnvOverridesSecrets(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("threatconnect:\n  base_url: https://tc.example/api\n  access_id: file-id\n  secret_key: file-secret\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TC_SECRET_KEY": "env-secret", "TC_API_TOKEN": "env-token", "TAXII_BRIDGE_CURSOR_SECRET": "env-cursor-secret-0123456789"}
	cfg.ApplyEnv(func(k string) string { return env[k] })
	if got := cfg.ThreatConnect.SecretKey.Reveal(); got != "env-secret" {
		t.Errorf("secret_key = %q; want the environment's", got)
	}
	if got := cfg.ThreatConnect.AccessID; got != "file-id" {
		t.Errorf("access_id = %q; an unset variable must not clear the file's value", got)
	}
	if got := cfg.TAXII.CursorSecret.Reveal(); got != "env-cursor-secret-0123456789" {
		t.Errorf("cursor_secret = %q", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// A secret never shows through fmt, JSON, YAML-ish text marshalling or slog.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-VALUE-do-not-print"
	cfg := config.Default()
	cfg.ThreatConnect.BaseURL = "https://tc.example/api"
	cfg.ThreatConnect.AccessID = "id"
	cfg.ThreatConnect.SecretKey = config.Secret(secret)
	cfg.ThreatConnect.APIToken = config.Secret(secret)
	cfg.TAXII.CursorSecret = config.Secret(secret)

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, cfg.ThreatConnect.SecretKey))
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "cfg", cfg, "key", cfg.ThreatConnect.SecretKey, "tc", cfg.ThreatConnect)
	}
	outs = append(outs, buf.String())
	// Errors that quote a bad value must not carry a secret either.
	cfg.TAXII.CursorSecret = config.Secret("short")
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short cursor secret: %v", err)
	}
	for _, o := range outs {
		if strings.Contains(o, secret) || strings.Contains(o, fmt.Sprintf("%x", secret)) {
			t.Fatalf("secret printed: %s", o)
		}
	}
	if !strings.Contains(outs[0], "[redacted]") {
		t.Errorf("%%v of the config shows no redaction marker: %s", outs[0])
	}
	if got := config.Secret("").String(); got != "" {
		t.Errorf("empty secret prints %q; want empty", got)
	}
}

// The seed feed's reputation names are accepted as well as STIX indicator types.
func TestIndicatorReputationNames(t *testing.T) {
	for _, v := range []string{"Bad", "suspicious", "Good", "Unknown", "malicious-activity", "benign"} {
		cfg := config.Default()
		cfg.STIX.IndicatorReputation = v
		if err := cfg.Validate(); err != nil {
			t.Errorf("indicator_reputation %q: %v", v, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"0", 0, true},
		{"0d", 0, true},
		{"15m", 15 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"-5m", 0, false},
		{"d", 0, false},
		{"5 days", 0, false},
		{"", 0, false},
		{"99999999d", 0, false},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestHugeAndEmptyFiles(t *testing.T) {
	if _, err := config.Parse(strings.NewReader("")); err != nil {
		t.Errorf("empty file: %v; want defaults", err)
	}
	big := strings.Repeat("# padding\n", 500000)
	if _, err := config.Parse(strings.NewReader(big)); err == nil {
		t.Error("accepted a 5 MB file")
	}
	if _, err := config.Parse(strings.NewReader("sync: [unclosed")); err == nil || !strings.Contains(err.Error(), "parse YAML") {
		t.Errorf("broken YAML: %v", err)
	}
}

func TestSourceReliability(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "A": true, "F": true, "B - Usually reliable": true, "G": false, "a": false, "AB": false} {
		cfg := config.Default()
		cfg.STIX.SourceReliability = v
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("source_reliability %q: %v; want ok=%v", v, err, ok)
		}
	}
}

// The API root rule is config's, and the TAXII server applies the same: a
// root the server would refuse at start is a configuration error.
func TestCheckAPIRoot(t *testing.T) {
	for _, ok := range []string{"threatconnect", "api1", "A.b_c-d", strings.Repeat("a", 64)} {
		if err := config.CheckAPIRoot(ok); err != nil {
			t.Errorf("CheckAPIRoot(%q) = %v; want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "-a", "taxii2", "healthz", "readyz", strings.Repeat("a", 65), "é"} {
		if err := config.CheckAPIRoot(bad); err == nil {
			t.Errorf("CheckAPIRoot(%q) = nil; want an error", bad)
		}
		cfg := config.Default()
		cfg.TAXII.APIRoot = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "taxii.api_root") {
			t.Errorf("api_root %q: Validate = %v; want a taxii.api_root problem", bad, err)
		}
	}
}

// A configured cursor secret shorter than MinCursorSecret bytes is refused.
func TestCursorSecretMinimum(t *testing.T) {
	for _, tt := range []struct {
		secret string
		ok     bool
	}{{strings.Repeat("s", config.MinCursorSecret), true}, {strings.Repeat("s", config.MinCursorSecret-1), false}} {
		cfg := config.Default()
		cfg.TAXII.CursorSecret = config.Secret(tt.secret)
		err := cfg.Validate()
		if got := err == nil || !strings.Contains(err.Error(), "taxii.cursor_secret"); got != tt.ok {
			t.Errorf("cursor secret of %d bytes: Validate = %v; want ok=%v", len(tt.secret), err, tt.ok)
		}
	}
}
