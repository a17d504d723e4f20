package config

import (
	"net/url"
	"strings"
)

// Postgres reports whether PostgreSQL is the configured backend
// (storage.postgres_url is set); otherwise storage.path selects SQLite.
func (s Storage) Postgres() bool { return s.PostgresURL.IsSet() }

// PostgresConnString is the effective connection string: storage.postgres_url
// with the password of EnvPostgresPassword, when that is set, in place of any
// password the URL holds. It is the only place the password is revealed;
// pass the result to the database driver and nowhere else. Empty when
// PostgreSQL is not configured; Validate has checked that it parses.
func (s Storage) PostgresConnString() string {
	raw := s.PostgresURL.Reveal()
	if raw == "" || !s.PostgresPassword.IsSet() {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw // Validate reports it
	}
	u.User = url.UserPassword(u.User.Username(), s.PostgresPassword.Reveal())
	return u.String()
}

// PostgresDisplay is storage.postgres_url as it may be printed (logs,
// check, the status page): without the password, whether it came in the
// user info or as a password or sslpassword parameter. Empty when
// PostgreSQL is not configured, "(unparsable URL)" when it does not parse.
func (s Storage) PostgresDisplay() string {
	raw := s.PostgresURL.Reveal()
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// validatePostgres checks storage.postgres_url and what it requires. No
// problem quotes the URL: it may hold the password.
func (c *Config) validatePostgres(p *problems) {
	s := c.Storage
	if !s.Postgres() {
		return
	}
	const example = "postgres://user@host:5432/db?sslmode=verify-full"
	u, err := url.Parse(s.PostgresURL.Reveal())
	switch {
	case err != nil:
		// url.Parse's error quotes the whole URL, password included.
		p.add("storage.postgres_url", "not a URL (want the form %s)", example)
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		p.add("storage.postgres_url", "must be a postgres:// or postgresql:// URL such as %s, got scheme %q", example, u.Scheme)
	case u.Opaque != "":
		p.add("storage.postgres_url", "must be a postgres:// URL with a host, such as %s", example)
	}
	if c.storagePathSet && strings.TrimSpace(s.Path) != "" {
		p.add("storage.path", "must not be set together with storage.postgres_url (path selects SQLite, postgres_url PostgreSQL)")
	}
	if !c.TAXII.CursorSecret.IsSet() {
		p.add("taxii.cursor_secret", "required when storage.postgres_url is set: every replica must redeem the cursors the others mint (or set env %s)", EnvCursorSecret)
	}
}

// Scrub replaces every PostgreSQL password this configuration knows (in
// the URL's user info, its password parameters, the environment's) with
// "[redacted]", for text from elsewhere — a driver's error message — that
// is about to be printed.
func (s Storage) Scrub(text string) string {
	var pws []string
	if s.PostgresPassword.IsSet() {
		pws = append(pws, s.PostgresPassword.Reveal())
	}
	if u, err := url.Parse(s.PostgresURL.Reveal()); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			pws = append(pws, pw, url.PathEscape(pw), url.QueryEscape(pw))
		}
		for k, vs := range u.Query() {
			if strings.Contains(strings.ToLower(k), "password") {
				for _, v := range vs {
					if v != "" {
						pws = append(pws, v, url.QueryEscape(v))
					}
				}
			}
		}
	}
	for _, pw := range pws {
		text = strings.ReplaceAll(text, pw, redacted)
	}
	return text
}
