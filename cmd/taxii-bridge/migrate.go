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

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
)

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
	to := fs.String("to", "", "destination: a postgres://user@host:5432/db?sslmode=verify-full `URL` (the password from env "+
		config.EnvPostgresPassword+", never on the command line), or a SQLite file; must be empty or already hold exactly the source's data")
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

	dst, where, scrub, err := openDestination(ctx, e, *to, *from)
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
		return fmt.Errorf("migrate %s to %s: %s", *from, where, scrub(err.Error()))
	}
	printCopyReport(e.Stdout, rep, *from, where)
	return nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// openDestination opens -to: a PostgreSQL URL or a SQLite file other than
// the source. It returns the store, how to name it in messages and what to
// pass a driver's message through before printing it. A PostgreSQL -to is
// read as storage.postgres_url would be, so that config decides how the
// password (env only: a command line is visible to every user through ps)
// joins the URL and how it is kept out of messages.
func openDestination(ctx context.Context, e *env, to, from string) (*storage.Store, string, func(string) string, error) {
	if !isPostgresURL(to) {
		if same(to, from) {
			return nil, "", nil, usageErrorf("-to names the source database %s", from)
		}
		dst, err := storage.Open(ctx, to)
		if err != nil {
			return nil, "", nil, fmt.Errorf("open destination: %w", err)
		}
		return dst, to, func(s string) string { return s }, nil
	}
	st := config.Storage{PostgresURL: config.Secret(to), PostgresPassword: config.Secret(e.Getenv(config.EnvPostgresPassword))}
	u, err := url.Parse(to)
	if err != nil {
		// url's error quotes the input, password and all.
		return nil, "", nil, usageErrorf("-to: not a valid PostgreSQL URL")
	}
	if _, has := u.User.Password(); has || strings.Contains(strings.ToLower(u.RawQuery), "password") {
		return nil, "", nil, usageErrorf("-to: the URL holds a password; give it in %s instead (a command line is visible to every user through ps)", config.EnvPostgresPassword)
	}
	where := st.PostgresDisplay()
	dst, err := storage.OpenPostgres(ctx, st.PostgresConnString())
	if err != nil {
		return nil, "", nil, fmt.Errorf("open destination %s: %s", where, st.Scrub(err.Error()))
	}
	return dst, where, st.Scrub, nil
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
