package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
)

func init() {
	register(command{
		name:    "check",
		summary: "Validate the configuration and test ThreatConnect and the database (the feed's Test button)",
		run:     runCheck,
	})
}

// extraChecks run after the configuration is valid, in order; each prints its
// own lines ("ok   name: detail" / "FAIL name: problem") and returns an error when
// something failed. The ThreatConnect and database checks add themselves here.
var extraChecks []func(ctx context.Context, e *env, cfg *config.Config) error

func runCheck(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("check")
	path := configFlag(fs)
	configOnly := fs.Bool("config-only", false, "validate the configuration only; reach nothing")
	full := fs.Bool("full", false, "run the full check: SQLite's integrity_check (every index against its table) instead of quick_check, then the store's own rules (memberships, latest and first flags, the reference graph)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	checkLine(e, true, "config", "valid")
	if *configOnly {
		return nil
	}
	var failed []string
	usage := false
	checkDB := func(ctx context.Context, e *env, cfg *config.Config) error { return checkDatabase(ctx, e, cfg, *full) }
	for _, c := range append(extraChecks, checkDB) {
		if err := c(ctx, e, cfg); err != nil {
			failed = append(failed, err.Error())
			var ue usageError
			usage = usage || errors.As(err, &ue)
		}
	}
	if len(failed) > 0 {
		err := errors.New("failed: " + strings.Join(failed, "; "))
		if usage {
			return usageErr(err) // a configuration ThreatConnect rejects (exit 2)
		}
		return err
	}
	return nil
}

// checkDatabase opens the database read-write when it exists (migrating it
// if needed) and runs SQLite's quick_check (integrity_check when full) or,
// when it does not exist, checks that its directory is writable.
func checkDatabase(ctx context.Context, e *env, cfg *config.Config, full bool) error {
	if cfg.Storage.Postgres() {
		return checkPostgres(ctx, e, cfg, full)
	}
	path := cfg.Storage.Path
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(path)
		f, err := os.CreateTemp(dir, ".taxii-bridge-check-*")
		if err != nil {
			checkLine(e, false, "database", fmt.Sprintf("%s does not exist and its directory is not writable: %v", path, err))
			return fmt.Errorf("database: %w", err)
		}
		f.Close()
		os.Remove(f.Name())
		checkLine(e, true, "database", path+" does not exist yet; sync or serve creates it")
		return nil
	}
	store, err := storage.Open(ctx, path)
	if err != nil {
		checkLine(e, false, "database", err.Error())
		return fmt.Errorf("database %s: %w", path, err)
	}
	defer store.Close()
	cols, err := store.Collections(ctx)
	if err != nil {
		checkLine(e, false, "database", err.Error())
		return fmt.Errorf("database: %w", err)
	}
	kind := "quick_check"
	if full {
		kind = "integrity_check and the store's rules"
	}
	if err := store.Check(ctx, full); err != nil {
		checkLine(e, false, "database", fmt.Sprintf("%v; restore it from a backup, or move it aside and let the next sync rebuild it", err))
		return fmt.Errorf("database check: %w", err)
	}
	checkLine(e, true, "database", fmt.Sprintf("%s opens; %d collections; %s ok", path, len(cols), kind))
	return nil
}

// checkPostgres opens the PostgreSQL store (migrating it if needed) and
// runs the store's check. Nothing it prints carries the password.
func checkPostgres(ctx context.Context, e *env, cfg *config.Config, full bool) error {
	name := cfg.Storage.PostgresDisplay()
	store, err := openStore(ctx, cfg)
	if err != nil {
		checkLine(e, false, "database", err.Error())
		return err
	}
	defer store.Close()
	cols, err := store.Collections(ctx)
	if err == nil {
		err = store.Check(ctx, full)
	}
	if err != nil {
		err = scrubbed(cfg, err)
		checkLine(e, false, "database", fmt.Sprintf("%s: %v", name, err))
		return fmt.Errorf("database: %w", err)
	}
	checkLine(e, true, "database", fmt.Sprintf("%s opens; %d collections; check ok", name, len(cols)))
	return nil
}

// checkLine prints one check result in the common format.
func checkLine(e *env, ok bool, name, detail string) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	fmt.Fprintf(e.Stdout, "%s %-15s %s\n", mark, name, detail)
}
