package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// postgresPasswordEnv supplies the PostgreSQL password when the URL has none
// (issue 13).
const postgresPasswordEnv = "TAXII_BRIDGE_POSTGRES_PASSWORD"

func init() {
	register(command{
		name:    "migrate",
		summary: "Copy a SQLite store into an empty PostgreSQL (or SQLite) store and verify it",
		run:     runMigrate,
	})
}

// runMigrate copies the store at -from into the one at -to with
// storage.Copy: one snapshot of the source, one transaction on the
// destination (an interrupted run leaves it as it was), then row counts,
// row digests, version hashes and every collection's manifest compared. A
// destination that already holds exactly the source's data is verified and
// left alone, so the command is safe to re-run; one that holds anything else
// is refused.
func runMigrate(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("migrate")
	from := fs.String("from", "", "source SQLite database `file` (required; opened as serve opens it: an older schema is upgraded first)")
	to := fs.String("to", "", "destination: a postgres://user@host:5432/db?sslmode=verify-full `URL` (password from the URL or "+
		postgresPasswordEnv+"), or a SQLite file; must be empty or already hold exactly the source's data")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if *from == "" || *to == "" {
		return usageErrorf("-from and -to are both required")
	}
	if isPostgresURL(*from) {
		return usageErrorf("-from: want a SQLite file; migrate copies SQLite into PostgreSQL")
	}
	fi, err := os.Stat(*from)
	if err != nil {
		return usageErrorf("-from: source database %s: %v", *from, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return usageErrorf("-from: source database %s is not a file", *from)
	}

	src, err := storage.Open(ctx, *from)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer src.Close()
	// A damaged source would copy garbage or fail halfway: check every
	// page first (seconds per gigabyte).
	if err := src.Check(ctx, false); err != nil {
		return fmt.Errorf("check source: %w", err)
	}

	dst, where, err := openDestination(ctx, e, *to, *from)
	if err != nil {
		return err
	}
	defer dst.Close()

	e.Log.Info("migrating", "from", *from, "to", where)
	var last struct {
		table string
		at    time.Time
	}
	rep, err := storage.Copy(ctx, dst, src, storage.CopyOptions{Progress: func(table string, rows int64) {
		if table != last.table || time.Since(last.at) >= 5*time.Second {
			e.Log.Info("copying", "table", table, "rows", rows)
			last.table, last.at = table, time.Now()
		}
	}})
	if err != nil {
		return fmt.Errorf("migrate %s to %s: %w", *from, where, redact(err, *to, e))
	}
	printCopyReport(e.Stdout, rep, *from, where)
	return nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// openDestination opens -to: a PostgreSQL URL (the password from the URL or
// the environment) or a SQLite file other than the source. It returns the
// store and how to name it in messages (the URL without its password).
func openDestination(ctx context.Context, e *env, to, from string) (*storage.Store, string, error) {
	if !isPostgresURL(to) {
		if same(to, from) {
			return nil, "", usageErrorf("-to names the source database %s", from)
		}
		dst, err := storage.Open(ctx, to)
		if err != nil {
			return nil, "", fmt.Errorf("open destination: %w", err)
		}
		return dst, to, nil
	}
	u, err := url.Parse(to)
	if err != nil {
		// url's error quotes the input, password and all.
		return nil, "", usageErrorf("-to: not a valid PostgreSQL URL")
	}
	if _, has := u.User.Password(); !has {
		if pw := e.Getenv(postgresPasswordEnv); pw != "" {
			name := ""
			if u.User != nil {
				name = u.User.Username()
			}
			u.User = url.UserPassword(name, pw)
		}
	}
	where := u.Redacted()
	dst, err := storage.OpenPostgres(ctx, u.String())
	if err != nil {
		return nil, "", fmt.Errorf("open destination %s: %w", where, redact(err, u.String(), e))
	}
	return dst, where, nil
}

// same reports whether two paths name the same file.
func same(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return aa == ab
}

// redact removes the PostgreSQL password of target (from the URL or the
// environment) from err's text, in case a driver quotes its connection
// string. The result no longer wraps err, but keeps its text otherwise.
func redact(err error, target string, e *env) error {
	var secrets []string
	if u, perr := url.Parse(target); perr == nil && isPostgresURL(target) {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	if pw := e.Getenv(postgresPasswordEnv); pw != "" {
		secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

func printCopyReport(w io.Writer, rep storage.CopyReport, from, to string) {
	if rep.Written {
		fmt.Fprintf(w, "migrated %s to %s in %s (schema version %d)\n", from, to, rep.Duration.Round(time.Millisecond), rep.SchemaVersion)
	} else {
		fmt.Fprintf(w, "%s already holds exactly the data of %s: verified, nothing written (schema version %d)\n", to, from, rep.SchemaVersion)
	}
	fmt.Fprintln(w, "tables (rows equal in both, digest of every row):")
	for _, t := range rep.Tables {
		fmt.Fprintf(w, "  %-12s %10d  %s\n", t.Name, t.Rows, t.Digest[:16])
	}
	fmt.Fprintf(w, "version content hashes (vid, hash) equal: %s\n", rep.VersionHashes[:16])
	fmt.Fprintln(w, "collection manifests (every version: id, date_added, version) equal:")
	for _, m := range rep.Manifests {
		fmt.Fprintf(w, "  %-24s %10d entries  %s\n", m.Alias, m.Entries, m.Digest[:16])
	}
}
