package leader_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxii-bridge/taxii-bridge/leader"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// pgURL is the test database (pgtest), or a skip without TB_POSTGRES_URL.
func pgURL(t *testing.T) string { return pgtest.URL(t) }

// randomKey keeps parallel tests (and other users of the database) apart.
func randomKey() int64 { return rand.Int64N(1<<62) + 1 }

// waitFor polls cond until it holds or the generous deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > deadline {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// candidate is one elector running in the background and what its terms saw.
type candidate struct {
	e       *leader.Elector
	terms   atomic.Int32
	mu      sync.Mutex
	causes  []error // context.Cause of each ended term
	stop    context.CancelFunc
	stopped chan error
}

func campaign(t *testing.T, url string, key int64, name string, interval time.Duration, concurrent *atomic.Int32, maxConcurrent *atomic.Int32) *candidate {
	t.Helper()
	// A generous idle timeout: these tests end sessions on purpose, and a
	// loaded machine must not end one by accident.
	log := slog.New(slog.NewTextHandler(tLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := &candidate{e: leader.New(url, leader.Options{Key: key, Interval: interval, IdleTimeout: time.Minute, Replica: name, Log: log}), stopped: make(chan error, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	c.stop = cancel
	go func() {
		c.stopped <- c.e.Run(ctx, func(ctx context.Context) error {
			c.terms.Add(1)
			n := concurrent.Add(1)
			for {
				m := maxConcurrent.Load()
				if n <= m || maxConcurrent.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done()
			concurrent.Add(-1)
			c.mu.Lock()
			c.causes = append(c.causes, context.Cause(ctx))
			c.mu.Unlock()
			return ctx.Err()
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-c.stopped
	})
	return c
}

func (c *candidate) endedTerms() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.causes...)
}

// Two electors on one key: exactly one leads, a third attempt is told
// which, and when the leader stops the other takes over.
func TestElector_ExactlyOneLeads(t *testing.T) {
	url := pgURL(t)
	t.Parallel()
	key := randomKey()
	var concurrent, maxConcurrent atomic.Int32
	a := campaign(t, url, key, "replica-a", 100*time.Millisecond, &concurrent, &maxConcurrent)
	b := campaign(t, url, key, "replica-b", 100*time.Millisecond, &concurrent, &maxConcurrent)
	waitFor(t, "a leader", 10*time.Second, func() bool { return a.e.Leading() || b.e.Leading() })
	first, other := a, b
	if b.e.Leading() {
		first, other = b, a
	}

	err := leader.New(url, leader.Options{Key: key, Replica: "replica-c"}).Once(t.Context(), func(context.Context) error {
		t.Error("a third elector led while another held the lock")
		return nil
	})
	var held *leader.HeldError
	if !errors.As(err, &held) || held.Replica != first.e.Replica() {
		t.Fatalf("Once = %v; want a HeldError naming %s", err, first.e.Replica())
	}
	if other.e.Leading() || other.terms.Load() != 0 {
		t.Fatalf("%s leads too (terms %d)", other.e.Replica(), other.terms.Load())
	}
	waitFor(t, "the follower names the leader", 10*time.Second, func() bool { return other.e.LeaderReplica() == first.e.Replica() })
	if got := first.e.LeaderReplica(); got != first.e.Replica() {
		t.Errorf("leader's LeaderReplica() = %q; want its own name", got)
	}

	first.stop()
	if err := <-first.stopped; err != nil {
		t.Errorf("Run after cancel = %v; want nil", err)
	}
	first.stopped <- nil // for the cleanup
	waitFor(t, other.e.Replica()+" takes over", 10*time.Second, other.e.Leading)
	if got := maxConcurrent.Load(); got != 1 {
		t.Errorf("at most %d terms ran at once; want 1", got)
	}
}

// Terminating the leader's session (as a failed leader host or a database
// restart would) cancels its work at once and hands leadership to the
// other within its retry interval.
func TestElector_FailoverWhenLeaderSessionTerminated(t *testing.T) {
	url := pgURL(t)
	t.Parallel()
	key := randomKey()
	const interval = 300 * time.Millisecond
	var concurrent, maxConcurrent atomic.Int32
	suffix := strings.ReplaceAll(t.Name(), "/", "-")
	a := campaign(t, url, key, "a-"+suffix, interval, &concurrent, &maxConcurrent)
	b := campaign(t, url, key, "b-"+suffix, interval, &concurrent, &maxConcurrent)
	waitFor(t, "a leader", 10*time.Second, func() bool { return a.e.Leading() || b.e.Leading() })
	old, next := a, b
	if b.e.Leading() {
		old, next = b, a
	}

	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var terminated bool
	err = admin.QueryRow(t.Context(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "taxii-bridge/"+old.e.Replica()).Scan(&terminated)
	if err != nil || !terminated {
		t.Fatalf("terminate the leader's session: %v (terminated %v)", err, terminated)
	}

	d := waitFor(t, "the old leader's context cancelled", 10*time.Second, func() bool { return len(old.endedTerms()) == 1 })
	t.Logf("old leader's work cancelled %s after its session was terminated", d)
	if cause := old.endedTerms()[0]; !errors.Is(cause, leader.ErrLost) {
		t.Errorf("cause of the cancelled term = %v; want ErrLost", cause)
	}
	d = waitFor(t, "the other replica leads", 10*time.Second, next.e.Leading)
	t.Logf("%s leads %s after the termination (interval %s)", next.e.Replica(), d, interval)
	// The follower retries every interval; allow it two more for a slow machine.
	if d > 3*interval {
		t.Errorf("takeover took %s; want within about one interval (%s)", d, interval)
	}
	// No bound on overlapping terms here: the lock moves the moment the
	// server ends the session, while the old leader's work may still be
	// unwinding (or, cut off, not know yet). The epoch fence, not the lock,
	// keeps its writes out (TestFence_*).
}

// Once runs the work when the lock is free and gives the lock up after.
func TestElector_OnceRunsAndReleases(t *testing.T) {
	url := pgURL(t)
	t.Parallel()
	key := randomKey()
	e := leader.New(url, leader.Options{Key: key, Replica: "once"})
	for i := range 2 { // the second run proves the first released the lock
		ran := false
		err := e.Once(t.Context(), func(ctx context.Context) error {
			ran = e.Leading()
			return errors.New("work failed")
		})
		if err == nil || err.Error() != "work failed" || !ran {
			t.Fatalf("run %d: Once = %v, leading during the work %v; want the work's error while leading", i, err, ran)
		}
		if e.Leading() {
			t.Fatalf("run %d: still leading after Once", i)
		}
	}
}

// An unreachable database is retried, never led, and its errors do not
// carry the password.
func TestElector_UnreachableDatabase(t *testing.T) {
	const password = "pw-NOT-TO-BE-SHOWN"
	url := "postgres://tb:" + password + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=1"
	e := leader.New(url, leader.Options{Key: randomKey(), Interval: 50 * time.Millisecond})
	err := e.Once(t.Context(), func(context.Context) error { t.Error("led without a database"); return nil })
	if err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("Once = %v; want a connection error without the password", err)
	}
	err = leader.New("postgres://tb:"+password+"@h:port/x", leader.Options{}).Once(t.Context(), func(context.Context) error { return nil })
	if err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("Once with a bad URL = %v; want an error without the password", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := e.Run(ctx, func(context.Context) error { t.Error("led without a database"); return nil }); err != nil {
		t.Errorf("Run = %v; want nil when its context ends", err)
	}
}

func TestSole_AlwaysLeads(t *testing.T) {
	s := leader.NewSole("solo")
	if !s.Leading() || s.Replica() != "solo" {
		t.Errorf("Sole: Leading %v Replica %q", s.Leading(), s.Replica())
	}
	ctx, cancel := context.WithCancel(t.Context())
	err := s.Run(ctx, func(ctx context.Context) error { cancel(); return ctx.Err() })
	if err != nil {
		t.Errorf("Run = %v; want nil when its context ended the work", err)
	}
	if leader.NewSole("").Replica() == "" {
		t.Error("NewSole(\"\") has no replica name")
	}
}

// countHandler counts log records with a given message.
type countHandler struct {
	msg string
	n   *atomic.Int32
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// A leader keeps its term across many checks of a healthy connection.
func TestElector_LeaderKeepsTermAcrossChecks(t *testing.T) {
	url := pgURL(t)
	t.Parallel()
	var checks, terms atomic.Int32
	e := leader.New(url, leader.Options{Key: randomKey(), Interval: 20 * time.Millisecond, IdleTimeout: time.Minute,
		Log: slog.New(countHandler{msg: "leader election: lock still held", n: &checks})})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, func(ctx context.Context) error {
			terms.Add(1)
			<-ctx.Done()
			return nil
		})
	}()
	waitFor(t, "ten lock checks", 20*time.Second, func() bool { return checks.Load() >= 10 })
	if !e.Leading() || terms.Load() != 1 {
		t.Errorf("after %d checks: leading %v, terms %d; want one unbroken term", checks.Load(), e.Leading(), terms.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// tLog writes log lines to the test's log.
type tLog struct{ t *testing.T }

func (w tLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Electors with the same key on different schemas of one database do not
// compete: each schema is a deployment of its own (Options.Key).
func TestElector_SchemasElectSeparately(t *testing.T) {
	pgURL(t)
	t.Parallel()
	key := randomKey()
	var concurrent, maxConcurrent atomic.Int32
	u1, _ := pgtest.Schema(t, "tb_elect")
	u2, _ := pgtest.Schema(t, "tb_elect")
	a := campaign(t, u1, key, "replica-a", 100*time.Millisecond, &concurrent, &maxConcurrent)
	b := campaign(t, u2, key, "replica-b", 100*time.Millisecond, &concurrent, &maxConcurrent)
	waitFor(t, "both lead", 10*time.Second, func() bool { return a.e.Leading() && b.e.Leading() })
	if got := a.e.LeaderReplica(); got != a.e.Replica() {
		t.Errorf("schema 1's leader seen as %q, want %s", got, a.e.Replica())
	}
}
