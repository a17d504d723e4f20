package main

import (
	"context"
	"fmt"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
)

func init() {
	register(command{
		name:    "sync",
		summary: "Run the sync worker alone: on its interval, one incremental sync with -once, or one reconciliation with -reconcile",
		run:     runSync,
	})
}

func runSync(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("sync")
	path := configFlag(fs)
	once := fs.Bool("once", false, "run one incremental sync and exit (non-zero on failure)")
	reconcile := fs.Bool("reconcile", false, "run one reconciliation now (re-read everything: associations, deleted groups) and exit")
	check := fs.Bool("check", true, "with -once: run SQLite's quick_check on the database first and refuse to write into a damaged file")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	if !cfg.ThreatConnect.Enabled() {
		return usageErrorf("threatconnect.base_url is not set: there is nothing to sync")
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	// Every committed batch is progress: a line that rewrites itself on a
	// terminal for a one-off run, a debug log line otherwise (which the
	// kill -9 test waits for).
	progress := func(p tcsync.Progress) {
		e.Log.Debug("sync progress", "stream", p.Stream, "items", p.Items, "elapsed", p.Elapsed)
	}
	terminal := (*once || *reconcile) && isTerminal(e.Stderr)
	if terminal {
		progress = func(p tcsync.Progress) {
			rate := float64(p.Items) / max(p.Elapsed.Seconds(), 0.001)
			fmt.Fprintf(e.Stderr, "\r%-10s %9d items  %8.0f/s  %s   ", p.Stream, p.Items, rate, p.Elapsed.Round(time.Second))
		}
	}
	o := newOps(e, &config.Config{Storage: cfg.Storage}, store)
	w, err := newWorker(ctx, e, cfg, store, progress, o)
	if err != nil {
		return err
	}
	retry := electionInterval(cfg.Sync.Interval.D())
	if !*once && !*reconcile {
		// The worker alone campaigns like serve: on PostgreSQL it syncs
		// only while it leads.
		el := newElector(e, cfg, o)
		return el.Run(ctx, func(ctx context.Context) error {
			return syncTerm(ctx, e.Log, o.fence, store, retry, w.Run)
		})
	}
	if *check {
		// Writing into a damaged file spreads the damage; the exit code
		// must say so rather than report a sync (issue 11).
		if err := o.health.quickCheck(ctx, store); err != nil {
			return fmt.Errorf("database %s failed its integrity check; not syncing: %w", storeName(cfg.Storage), err)
		}
	}
	run := w.RunOnce
	if *reconcile {
		run = w.Reconcile
	}
	var sum tcsync.Summary
	syncOnce := func(ctx context.Context) error {
		return syncTerm(ctx, e.Log, o.fence, store, 0, func(ctx context.Context) error {
			var err error
			sum, err = run(ctx)
			return err
		})
	}
	if cfg.Storage.Postgres() {
		// A one-off sync takes the leader lock too, so it never writes
		// beside a serve replica's sync; it refuses rather than waits,
		// since a serve replica leads for as long as it runs.
		el := leader.New(cfg.Storage.PostgresConnString(), leader.Options{Interval: retry, Log: e.Log})
		err = notLeaderError(scrubbed(cfg, el.Once(ctx, syncOnce)))
	} else {
		err = syncOnce(ctx)
	}
	if terminal {
		fmt.Fprintln(e.Stderr)
	}
	if err != nil {
		if o.health.err() != nil {
			return fmt.Errorf("sync stopped by a storage fault in %s: %w", storeName(cfg.Storage), err)
		}
		return err
	}
	fmt.Fprintf(e.Stdout, "synced: %d fetched, %d new versions, %d unchanged, %d revoked, %d skipped in %s\n",
		sum.Fetched, sum.NewVersions, sum.Unchanged, sum.Revoked, sum.SkippedTotal(), sum.Duration.Round(time.Millisecond))
	return nil
}
