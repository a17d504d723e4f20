package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/config"
)

const pgPassword = "pg-PASSW0RD-never-shown"

func parsePG(t *testing.T, yaml string, env map[string]string) (*config.Config, error) {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyEnv(func(k string) string { return env[k] })
	return cfg, cfg.Validate()
}

func TestPostgresURLSelectsPostgres(t *testing.T) {
	cfg, err := parsePG(t, "storage:\n  postgres_url: postgres://tb@db.example:5432/taxii?sslmode=verify-full\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !cfg.Storage.Postgres() {
		t.Error("Postgres() = false; want true")
	}
	if cfg.Storage.Path != "" {
		t.Errorf("storage.path = %q; want the SQLite default dropped when PostgreSQL is configured", cfg.Storage.Path)
	}
	if got, want := cfg.Storage.PostgresConnString(), "postgres://tb@db.example:5432/taxii?sslmode=verify-full"; got != want {
		t.Errorf("PostgresConnString() = %q; want %q", got, want)
	}
	// An explicitly empty path is no conflict.
	if _, err := parsePG(t, "storage:\n  path: \"\"\n  postgres_url: postgres://tb@db/taxii\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil); err != nil {
		t.Errorf("empty storage.path with postgres_url: %v", err)
	}
	if config.Default().Storage.Postgres() {
		t.Error("the default configuration selects PostgreSQL")
	}
}

func TestPostgresPasswordFromEnv(t *testing.T) {
	env := map[string]string{config.EnvPostgresPassword: pgPassword, config.EnvCursorSecret: "0123456789abcdef0123"}
	cfg, err := parsePG(t, "storage:\n  postgres_url: postgres://tb:file-pw@db.example/taxii?sslmode=require\n", env)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got := cfg.Storage.PostgresConnString()
	if !strings.Contains(got, "tb:"+pgPassword+"@db.example") || strings.Contains(got, "file-pw") {
		t.Errorf("PostgresConnString() = %q; want the environment's password in place of the URL's", got)
	}
	if d := cfg.Storage.PostgresDisplay(); strings.Contains(d, pgPassword) || strings.Contains(d, "file-pw") || !strings.Contains(d, "tb@db.example/taxii") {
		t.Errorf("PostgresDisplay() = %q; want user, host and database without a password", d)
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg.Storage), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, pgPassword) || strings.Contains(s, "file-pw") {
			t.Fatalf("password printed: %s", s)
		}
	}
}

func TestPostgresDisplayDropsPasswordParameters(t *testing.T) {
	s := config.Storage{PostgresURL: config.Secret("postgresql://u:" + pgPassword + "@h/db?password=" + pgPassword + "&sslpassword=" + pgPassword + "&sslmode=disable")}
	d := s.PostgresDisplay()
	if strings.Contains(d, pgPassword) || !strings.Contains(d, "sslmode=disable") {
		t.Errorf("PostgresDisplay() = %q", d)
	}
}

// Every PostgreSQL configuration error names its key and never carries
// the password.
func TestPostgresValidation(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"unparsable", "storage:\n  postgres_url: \"postgres://u:" + pgPassword + "@h:port/db\"\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil,
			[]string{"storage.postgres_url: not a URL"}},
		{"control character", "storage:\n  postgres_url: \"postgres://u:" + pgPassword + "@h/db\\x7f\"\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil,
			[]string{"storage.postgres_url: not a URL"}},
		{"wrong scheme", "storage:\n  postgres_url: mysql://u:" + pgPassword + "@h/db\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil,
			[]string{`storage.postgres_url: must be a postgres:// or postgresql:// URL`, `got scheme "mysql"`}},
		{"not a URL at all", "storage:\n  postgres_url: \"host=h password=" + pgPassword + "\"\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil,
			[]string{`storage.postgres_url: must be a postgres:// or postgresql:// URL`}},
		{"path and url", "storage:\n  path: x.db\n  postgres_url: postgres://u:" + pgPassword + "@h/db\ntaxii:\n  cursor_secret: 0123456789abcdef0123\n", nil,
			[]string{"storage.path: must not be set together with storage.postgres_url"}},
		{"no cursor secret", "storage:\n  postgres_url: postgres://u@h/db\n", map[string]string{config.EnvPostgresPassword: pgPassword},
			[]string{"taxii.cursor_secret: required when storage.postgres_url is set", config.EnvCursorSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePG(t, tt.yaml, tt.env)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), pgPassword) {
				t.Errorf("error carries the password: %q", err)
			}
		})
	}
}

func TestPostgresScrub(t *testing.T) {
	s := config.Storage{PostgresURL: config.Secret("postgres://u:url%2Fpw@h/db?sslpassword=keypw"), PostgresPassword: config.Secret(pgPassword)}
	got := s.Scrub("dial postgres://u:url%2Fpw@h/db: url/pw " + pgPassword + " keypw")
	for _, pw := range []string{"url/pw", "url%2Fpw", pgPassword, "keypw"} {
		if strings.Contains(got, pw) {
			t.Errorf("Scrub left %q in %q", pw, got)
		}
	}
}
