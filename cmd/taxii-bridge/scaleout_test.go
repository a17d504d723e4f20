package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// The PostgreSQL password, from the URL or the environment, never reaches
// stdout, stderr or the logs of check, serve or sync, whether the
// configuration is refused or the database cannot be opened.
func TestPostgresPasswordNeverInOutput(t *testing.T) {
	const urlPW, envPW = "url-PW-XYZZY-1", "env-PW-PLUGH-2"
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Port 1 on loopback refuses at once, here and once the real backend is merged.
	good := write("pg.yaml", "storage:\n  postgres_url: postgres://tb:"+urlPW+"@127.0.0.1:1/test?sslmode=disable&connect_timeout=2\n"+
		"threatconnect:\n  base_url: http://127.0.0.1:1/api\n  access_id: id\n  secret_key: sk-0123\n"+
		"taxii:\n  cursor_secret: 0123456789abcdef0123\n  listen: 127.0.0.1:0\n")
	badScheme := write("scheme.yaml", "storage:\n  postgres_url: mysql://tb:"+urlPW+"@127.0.0.1:1/test\n")
	withPath := write("path.yaml", "storage:\n  path: x.db\n  postgres_url: postgres://tb:"+urlPW+"@127.0.0.1:1/test\n")
	env := map[string]string{"TAXII_BRIDGE_POSTGRES_PASSWORD": envPW}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "-config", good}, "FAIL database"},
		{[]string{"serve", "-config", good}, "open database postgres://tb@127.0.0.1:1/test"},
		{[]string{"sync", "-once", "-config", good}, "open database postgres://tb@127.0.0.1:1/test"},
		{[]string{"check", "-config", badScheme}, "storage.postgres_url: must be a postgres://"},
		{[]string{"check", "-config", withPath}, "storage.path: must not be set together with storage.postgres_url"},
	} {
		args := append([]string{"-log-level", "debug"}, tt.args...)
		code, out, errOut := runCmd(t, "", env, args...)
		if code == exitOK {
			t.Errorf("%v: exit 0; want a failure", tt.args)
		}
		if !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: output lacks %q:\n%s%s", tt.args, tt.want, out, errOut)
		}
		for _, pw := range []string{urlPW, envPW} {
			if strings.Contains(out+errOut, pw) {
				t.Errorf("%v printed the password:\n%s%s", tt.args, out, errOut)
			}
		}
	}
}

func TestElectionInterval(t *testing.T) {
	for _, tt := range []struct{ sync, want time.Duration }{
		{30 * time.Second, 3750 * time.Millisecond},
		{15 * time.Minute, leader.DefaultInterval},
		{4 * time.Second, time.Second},
	} {
		if got := electionInterval(tt.sync); got != tt.want {
			t.Errorf("electionInterval(%s) = %s; want %s", tt.sync, got, tt.want)
		}
	}
}

// A term's writes carry its epoch: the fence is set while the work runs,
// cleared the moment the term's context ends, and a superseded term's
// transactions fail.
func TestSyncTermFencesTheWork(t *testing.T) {
	store, err := storage.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.DiscardHandler)
	var fence leader.Fence
	ctx, cancel := context.WithCancel(t.Context())
	err = syncTerm(ctx, log, &fence, store, time.Second, func(ctx context.Context) error {
		if fence.Epoch() != 1 {
			t.Errorf("epoch during the term = %d; want 1", fence.Epoch())
		}
		if err := store.Update(ctx, fence.Check); err != nil {
			t.Errorf("fenced write in the term: %v", err)
		}
		cancel() // the term ends: leadership lost
		deadline := time.Now().Add(10 * time.Second)
		for fence.Epoch() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if err := store.Update(context.Background(), fence.Check); !errors.Is(err, leader.ErrFenced) {
			t.Errorf("write after the term's context ended = %v; want ErrFenced", err)
		}
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("syncTerm = %v; want the work's error", err)
	}
	// Without a fence (SQLite) the work just runs.
	ran := false
	if err := syncTerm(t.Context(), log, nil, store, time.Second, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("syncTerm without a fence: %v, ran %v", err, ran)
	}
}

// Two replicas, each with its own elector, worker and fence, share one
// store (on this branch the SQLite file stands in for the shared
// PostgreSQL database; the election is PostgreSQL's). The leader is cut
// off mid-sync by terminating its database session; the other replica
// takes over, resumes from the committed stream positions, and the store
// converges to what one uninterrupted sync produces. No write of the old
// term passes the fence after the new term's first.
func TestFailoverMidSyncConverges(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	sim := newGatedSim(t, 1000)
	e := &env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == "TC_SECRET_KEY" {
			return "cmd-test-secret"
		}
		return ""
	}, Log: slog.New(slog.DiscardHandler)}

	refCfgPath, refDB := syncTestConfig(t, t.TempDir(), sim.URL)
	refCfg, err := e.loadConfig(refCfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := storage.Open(ctx, refDB)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWorker(ctx, e, refCfg, ref, nil, newOps(e, refCfg, ref))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ref.Close()
	want := storeDigest(t, refDB)

	cfgPath, db := syncTestConfig(t, t.TempDir(), sim.URL)
	cfg, err := e.loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const k = 4 // committed batches before the cut
	key := rand.Int64N(1<<62) + 1
	const interval = 200 * time.Millisecond
	// Every write transaction of either replica that passed the fence, in
	// the order the store ran them (SQLite runs one writer at a time).
	var mu sync.Mutex
	var passed []uint64
	client, err := newTCClient(cfg, e.Log)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := newMapper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type replica struct {
		name    string
		el      *leader.Elector
		o       *ops
		batches atomic.Int32
		terms   atomic.Int32
		ended   atomic.Int32
		done    chan error
		w       *tcsync.Worker
		store   *storage.Store
	}
	start := func(name string) *replica {
		store, err := storage.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		r := &replica{name: name, o: newOps(e, cfg, store), done: make(chan error, 1)}
		r.o.fence = &leader.Fence{} // what newOps does for PostgreSQL
		// newWorker's options, with the fence observed.
		opt := syncOptions(cfg)
		opt.Mapper, opt.Log, opt.OnRun = mapper, e.Log, r.o.recordRun
		opt.Progress = func(tcsync.Progress) { r.batches.Add(1) }
		opt.Fence = func(tx *storage.Tx) error {
			err := r.o.fence.Check(tx)
			if err == nil {
				mu.Lock()
				passed = append(passed, r.o.fence.Epoch())
				mu.Unlock()
			}
			return err
		}
		w, err := tcsync.New(client, store, opt)
		if err != nil {
			t.Fatal(err)
		}
		r.el = leader.New(url, leader.Options{Key: key, Interval: interval, IdleTimeout: time.Minute, Replica: name})
		r.w = w
		r.store = store
		return r
	}
	run := func(r *replica) {
		w, store := r.w, r.store
		rctx, cancel := context.WithCancel(ctx)
		go func() {
			r.done <- r.el.Run(rctx, func(ctx context.Context) error {
				r.terms.Add(1)
				defer r.ended.Add(1)
				return syncTerm(ctx, e.Log, r.o.fence, store, interval, w.Run)
			})
		}()
		t.Cleanup(func() { cancel(); <-r.done })
	}
	// The workers check their queries with ThreatConnect when made; the
	// simulator holds the sync's pages past the first k+2 only after that.
	a, b := start("replica-a"), start("replica-b")
	sim.hold(k + 2)
	run(a)
	run(b)
	waitUntil(t, "a leader", func() bool { return a.el.Leading() || b.el.Leading() })
	old, next := a, b
	if b.el.Leading() {
		old, next = b, a
	}
	waitUntil(t, "the leader's first batches", func() bool { return old.batches.Load() >= k })

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "taxii-bridge/"+old.name); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old leader's sync stopped", func() bool { return old.ended.Load() == 1 })
	if old.o.fence.Epoch() != 0 {
		t.Error("the old leader's fence still holds an epoch after its term")
	}
	if partial := storeDigest(t, db); partial == "" || partial == want {
		t.Fatalf("at the cut the store is empty or complete (%d lines); the test proved nothing", strings.Count(partial, "\n"))
	}
	sim.release()
	waitUntil(t, "the new leader's successful sync", func() bool {
		for _, r := range next.o.runs.list() {
			if r.Err == "" {
				return true
			}
		}
		return false
	})
	if got := storeDigest(t, db); got != want {
		t.Errorf("after failover the store differs from an uninterrupted sync's (%d vs %d versions)", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
	// The old term's work may still be unwinding when the new term begins
	// (the lock moves the moment the session ends); what must never happen
	// is a write of the old term after one of the new.
	mu.Lock()
	seq := append([]uint64(nil), passed...)
	mu.Unlock()
	for i := 1; i < len(seq); i++ {
		if seq[i] < seq[i-1] {
			t.Fatalf("a write of term %d passed the fence after one of term %d", seq[i], seq[i-1])
		}
	}
	if len(seq) == 0 || seq[0] != 1 || seq[len(seq)-1] != 2 {
		t.Errorf("fenced writes by term: %v; want term 1's, then term 2's", seq)
	}
	if old.terms.Load() != 1 || next.terms.Load() != 1 {
		t.Errorf("terms: %s %d, %s %d; want one each", old.name, old.terms.Load(), next.name, next.terms.Load())
	}
	if f := next.o.fence.Epoch(); f != 2 {
		t.Errorf("the new leader's epoch = %d; want 2", f)
	}
}

// waitUntil polls cond with a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On PostgreSQL newOps makes a fence and newWorker puts it in front of
// every write: a worker whose replica has not begun a term writes nothing.
func TestNewWorkerIsFencedOnPostgres(t *testing.T) {
	e, cfg, store, _ := opsFixture(t, "")
	o := newOps(e, cfg, store)
	if o.fence != nil {
		t.Fatal("SQLite configuration got a fence")
	}
	pg := *cfg
	pg.Storage.PostgresURL = "postgres://u@127.0.0.1:1/db"
	if newOps(e, &pg, store).fence == nil {
		t.Fatal("PostgreSQL configuration got no fence")
	}
	o.fence = &leader.Fence{} // as for PostgreSQL, on the SQLite store at hand
	w, err := newWorker(t.Context(), e, cfg, store, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(t.Context()); !errors.Is(err, leader.ErrFenced) {
		t.Fatalf("RunOnce outside a term = %v; want ErrFenced", err)
	}
	if _, err := o.fence.Begin(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(t.Context()); err != nil {
		t.Fatalf("RunOnce in a term: %v", err)
	}
}

// /readyz says whether this replica leads and which one does; on SQLite
// the one process always leads.
func TestReadyDetailsNameTheLeader(t *testing.T) {
	e, cfg, store, _ := opsFixture(t, "")
	o := newOps(e, cfg, store)
	if o.readyDetails() != nil {
		t.Error("readyDetails without an elector is not nil")
	}
	el := newElector(e, cfg, o)
	got := o.readyDetails()()
	if got["leader"] != true || got["replica"] != el.Replica() || got["leader_replica"] != el.Replica() || el.Replica() == "" {
		t.Errorf("readyDetails on SQLite = %v; want this replica leading", got)
	}
	if v := value(scrape(t, o.metrics.Handler()), "taxii_bridge_sync_leader", map[string]string{"replica": el.Replica()}); v != 1 {
		t.Errorf("taxii_bridge_sync_leader = %v; want 1", v)
	}
}

func TestNotLeaderError(t *testing.T) {
	err := notLeaderError(&leader.HeldError{Replica: "host-7"})
	if err == nil || !strings.Contains(err.Error(), "not syncing: replica host-7 leads the sync") {
		t.Errorf("notLeaderError = %v", err)
	}
	if err := notLeaderError(&leader.HeldError{}); err == nil || !strings.Contains(err.Error(), "another replica leads") {
		t.Errorf("notLeaderError without a name = %v", err)
	}
	other := errors.New("boom")
	if notLeaderError(other) != other || notLeaderError(nil) != nil {
		t.Error("notLeaderError changed an error that is not about leadership")
	}
}
