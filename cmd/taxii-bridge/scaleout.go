package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/storage"
)

// Scale-out (issue 13, docs/scale-out.md): with storage.postgres_url any
// number of serve replicas share one database; each serves reads and POSTs,
// and the one that holds the leader lock runs the sync.

// openStore opens the configured backend: PostgreSQL when
// storage.postgres_url is set, else the SQLite file at storage.path.
func openStore(ctx context.Context, cfg *config.Config) (*storage.Store, error) {
	if !cfg.Storage.Postgres() {
		store, err := storage.Open(ctx, cfg.Storage.Path)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", cfg.Storage.Path, err)
		}
		return store, nil
	}
	store, err := storage.OpenPostgres(ctx, cfg.Storage.PostgresConnString())
	if err != nil {
		return nil, scrubbed(cfg, fmt.Errorf("open database %s: %w", cfg.Storage.PostgresDisplay(), err))
	}
	return store, nil
}

// storeName names the configured database in messages: the SQLite file, or
// the PostgreSQL URL without its password.
func storeName(s config.Storage) string {
	if s.Postgres() {
		return s.PostgresDisplay()
	}
	return s.Path
}

// scrubbedError is an error whose text has had the PostgreSQL password
// removed; errors.Is and As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubbed returns err with the configured PostgreSQL password removed from
// its text (a driver may quote what it was given).
func scrubbed(cfg *config.Config, err error) error {
	if err == nil || !cfg.Storage.Postgres() {
		return err
	}
	return &scrubbedError{msg: cfg.Storage.Scrub(err.Error()), err: err}
}

// elector decides whether this process runs the sync: *leader.Elector on
// PostgreSQL, leader.Sole on SQLite (one process, always leading).
type elector interface {
	Run(ctx context.Context, lead func(ctx context.Context) error) error
	Leading() bool
	Replica() string
	LeaderReplica() string
}

// electionInterval is how often a follower retries the leader lock and the
// leader checks it: an eighth of sync.interval, between 1 s and
// leader.DefaultInterval. A leader that dies hands over within one such
// interval; one cut off from the database within four (its session's idle
// timeout, three intervals, then a follower's retry): under the 30 s
// minimum sync interval either way.
func electionInterval(sync time.Duration) time.Duration {
	return min(max(sync/8, time.Second), leader.DefaultInterval)
}

// newElector returns the process's elector and records it in o (for
// /readyz and the sync_leader gauge).
func newElector(e *env, cfg *config.Config, o *ops) elector {
	replica := leader.DefaultReplica()
	var el elector
	if !cfg.Storage.Postgres() {
		el = leader.NewSole(replica)
		o.metrics.SyncLeader(replica, true)
	} else {
		o.metrics.SyncLeader(replica, false)
		interval := electionInterval(cfg.Sync.Interval.D())
		e.Log.Info("PostgreSQL: this replica serves, and syncs only while it holds the leader lock", "replica", replica, "election_interval", interval.String())
		el = leader.New(cfg.Storage.PostgresConnString(), leader.Options{
			Interval: interval,
			Replica:  replica,
			Log:      e.Log,
			OnChange: func(leading bool) { o.metrics.SyncLeader(replica, leading) },
		})
	}
	o.elector = el
	return el
}

// readyDetails is what /readyz adds about the sync's leadership: whether
// this replica leads, its name, and the leading replica's name when known.
func (o *ops) readyDetails() func() map[string]any {
	if o == nil || o.elector == nil {
		return nil
	}
	el := o.elector
	return func() map[string]any {
		d := map[string]any{"leader": el.Leading(), "replica": el.Replica()}
		if l := el.LeaderReplica(); l != "" {
			d["leader_replica"] = l
		}
		return d
	}
}

// syncTerm is the work of one leadership term: on PostgreSQL it first
// draws the term's epoch (retrying every retry until it can or the term
// ends; giving up at once when retry is 0), so that the sync's writes are fenced to this term, then runs run.
// Without a fence (SQLite) it only runs run.
func syncTerm(ctx context.Context, log *slog.Logger, fence *leader.Fence, store leader.Updater, retry time.Duration, run func(ctx context.Context) error) error {
	if fence == nil {
		return run(ctx)
	}
	// The moment the term ends, this replica's transactions fail the fence
	// check, whether or not the next leader has begun its term yet.
	stop := context.AfterFunc(ctx, fence.End)
	defer stop()
	defer fence.End()
	for {
		epoch, err := fence.Begin(ctx, store)
		if err == nil {
			log.Info("sync term begins", "epoch", epoch)
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if retry <= 0 {
			return err
		}
		log.Error("cannot begin the sync term; retrying", "err", err, "retry_in", retry.String())
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return run(ctx)
}

// notLeaderError explains why a one-off sync did not run on PostgreSQL.
func notLeaderError(err error) error {
	var held *leader.HeldError
	if !errors.As(err, &held) {
		return err
	}
	who := "another replica"
	if held.Replica != "" {
		who = "replica " + held.Replica
	}
	return fmt.Errorf("not syncing: %s leads the sync on this database (a one-off sync runs only while no replica leads; it would race the leader's sync)", who)
}
