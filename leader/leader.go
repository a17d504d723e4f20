package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultKey is the advisory lock key of the sync leader ("txb-sync" in
// ASCII), chosen to stay clear of other applications sharing the database.
const DefaultKey int64 = 0x7478622d73796e63

// DefaultInterval is how often a follower retries and a leader checks its lock.
const DefaultInterval = 5 * time.Second

// ErrLost is the cause of the leader's context being cancelled: the
// connection that held the lock, or the lock, is gone.
var ErrLost = errors.New("leader: leadership lost")

// HeldError is Once's answer when another session holds the lock.
type HeldError struct {
	// Replica is the holder's replica name, when the database shows it
	// (pg_stat_activity.application_name); empty otherwise.
	Replica string
}

func (e *HeldError) Error() string {
	if e.Replica == "" {
		return "leader: another replica leads"
	}
	return fmt.Sprintf("leader: replica %s leads", e.Replica)
}

// Options configure an Elector.
type Options struct {
	// Key is the advisory lock key (default DefaultKey). Electors with the
	// same key on the same database and schema compete: the lock taken is
	// Key combined with a hash of the session's current schema (its
	// search_path), so deployments in different schemas of one database
	// elect separately, as their writes are serialised separately.
	Key int64
	// Interval is how often a follower retries and a leader checks that it
	// still holds the lock (default DefaultInterval). Each query may take
	// up to Interval, or a second when Interval is shorter.
	Interval time.Duration
	// IdleTimeout is the session's idle_session_timeout: how long the
	// server keeps the session of an elector that stopped talking to it
	// (default 3 × Interval; at least 2 × Interval).
	IdleTimeout time.Duration
	// Replica names this process in logs, in /readyz and to the other
	// replicas (application_name); default DefaultReplica().
	Replica string
	// Log receives the transitions (default: discard).
	Log *slog.Logger
	// OnChange, when set, is called with true when a term starts and false
	// when it ends (metrics).
	OnChange func(leading bool)
}

// DefaultReplica is this process's name: host name and process id, as
// "host-1234".
func DefaultReplica() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// Elector campaigns for leadership on one PostgreSQL database.
type Elector struct {
	connString string
	opt        Options
	leading    atomic.Bool
	seen       atomic.Pointer[string] // the leading replica as last seen
}

// New returns an elector for the database at connString (a postgres://
// URL or key=value string as pgx accepts). It connects only when Run or
// Once is called.
func New(connString string, opt Options) *Elector {
	if opt.Key == 0 {
		opt.Key = DefaultKey
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.IdleTimeout < 2*opt.Interval {
		opt.IdleTimeout = 3 * opt.Interval
	}
	if opt.Replica == "" {
		opt.Replica = DefaultReplica()
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Elector{connString: connString, opt: opt}
}

// Leading reports whether this elector holds the lock now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Replica is this process's replica name.
func (e *Elector) Replica() string { return e.opt.Replica }

// LeaderReplica is the replica that leads as this elector last saw it
// (at most one Interval ago): its own name while it leads, the holder's
// while it follows; empty when unknown (no leader, or the database does
// not show the holder's name).
func (e *Elector) LeaderReplica() string {
	if p := e.seen.Load(); p != nil {
		return *p
	}
	return ""
}

func (e *Elector) see(replica string) { e.seen.Store(&replica) }

// Run campaigns until ctx is done, running lead for every term it wins.
// lead's context is cancelled with cause ErrLost when the term ends
// early; Run waits for lead to return, then campaigns again after two
// Intervals (so that a follower, retrying every Interval, takes over).
// When lead returns while its term lasts, Run gives the lock up and
// returns lead's error. Database errors never end Run: it logs them and
// retries every Interval. Run returns nil when ctx is done.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	var conn *pgx.Conn
	defer func() { closeConn(conn) }()
	failing := false
	for {
		wait := e.opt.Interval
		var won bool
		var err error
		if conn == nil {
			conn, err = e.connect(ctx)
		}
		if err == nil {
			won, err = e.tryLock(ctx, conn)
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			e.see("")
			closeConn(conn)
			conn = nil
			if !failing {
				e.opt.Log.Warn("leader election: database unreachable; retrying", "replica", e.opt.Replica, "retry_in", e.opt.Interval.String(), "err", err)
			} else {
				e.opt.Log.Debug("leader election: database unreachable; retrying", "replica", e.opt.Replica, "err", err)
			}
			failing = true
		case won:
			failing = false
			lost, err := e.term(ctx, conn, lead)
			e.release(conn, lost)
			conn = nil
			if ctx.Err() != nil {
				return nil
			}
			if lost == nil {
				return err
			}
			// The followers retry every Interval; backing off for two
			// lets a healthy one take over rather than this replica,
			// whose session just failed, win the lock straight back.
			wait = 2 * e.opt.Interval
			e.opt.Log.Warn("leader election: leadership lost; campaigning again", "replica", e.opt.Replica, "retry_in", wait.String(), "err", lost)
		default:
			e.see(e.holder(ctx, conn))
			if failing {
				e.opt.Log.Info("leader election: database reachable again; following", "replica", e.opt.Replica)
			}
			failing = false
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Once makes one attempt: when the lock is free it runs lead as leader
// and returns lead's error (wrapped with ErrLost when the term ended before
// lead returned); when another session holds it, it returns a *HeldError
// without running lead.
func (e *Elector) Once(ctx context.Context, lead func(ctx context.Context) error) error {
	conn, err := e.connect(ctx)
	if err != nil {
		return err
	}
	won, err := e.tryLock(ctx, conn)
	if err != nil {
		closeConn(conn)
		return err
	}
	if !won {
		defer closeConn(conn)
		return &HeldError{Replica: e.holder(ctx, conn)}
	}
	lost, err := e.term(ctx, conn, lead)
	e.release(conn, lost)
	switch {
	case lost == nil:
		return err
	case err == nil:
		return lost
	}
	return fmt.Errorf("%w: %w", lost, err)
}

// term runs lead while conn holds the lock. It returns lead's error and,
// when the term ended before lead returned on its own, why.
func (e *Elector) term(ctx context.Context, conn *pgx.Conn, lead func(ctx context.Context) error) (lost, err error) {
	e.setLeading(true)
	defer e.setLeading(false)
	e.opt.Log.Info("leader election: leading; this replica runs the sync", "replica", e.opt.Replica)

	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- lead(lctx) }()

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan error, 1)
	go func() { watched <- e.watch(wctx, conn) }()

	select {
	case err = <-done:
		stopWatch()
		<-watched // conn is ours again before the caller closes it
		return nil, err
	case lost = <-watched:
		if lost == nil { // ctx is done: lead is stopping too
			return nil, <-done
		}
		e.setLeading(false)
		cancel(lost)
		return lost, <-done
	}
}

// watch returns nil when ctx is done, or the error that ended the term:
// the connection closed (PostgreSQL terminated the session, the network
// failed) or the lock no longer held. Between checks it waits on the
// connection, so a session terminated by the server is seen at once.
func (e *Elector) watch(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, e.opt.Interval)
		_, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !timedOut {
			return fmt.Errorf("%w: connection: %w", ErrLost, err)
		}
		if err == nil {
			continue // a notification nobody asked for
		}
		held, err := e.holds(ctx, conn)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: check lock: %w", ErrLost, err)
		}
		if !held {
			return fmt.Errorf("%w: the lock is no longer held", ErrLost)
		}
		e.opt.Log.Debug("leader election: lock still held", "replica", e.opt.Replica)
	}
}

// queryTimeout bounds each of the elector's queries: one Interval, but at
// least a second, so a loaded machine or a short test interval does not
// end a healthy term.
func (e *Elector) queryTimeout() time.Duration { return max(e.opt.Interval, time.Second) }

func (e *Elector) setLeading(v bool) {
	if v {
		e.see(e.opt.Replica)
	} else if e.LeaderReplica() == e.opt.Replica {
		e.see("")
	}
	if e.leading.Swap(v) != v && e.opt.OnChange != nil {
		e.opt.OnChange(v)
	}
}

// connect opens the elector's own connection. Errors never carry the
// connection string: it may hold the password.
func (e *Elector) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.connString)
	if err != nil {
		return nil, errors.New("leader: the connection string does not parse")
	}
	name := "taxii-bridge/" + e.opt.Replica
	if len(name) > 63 {
		name = name[:63]
	}
	cfg.RuntimeParams["application_name"] = name
	cctx, cancel := context.WithTimeout(ctx, 2*e.queryTimeout())
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("leader: connect: %w", err)
	}
	// A leader cut off from the database must lose its session, and so the
	// lock, in bounded time: the server ends a session idle this long
	// (PostgreSQL 14 and later; older servers rely on TCP keepalives).
	ms := strconv.FormatInt(e.opt.IdleTimeout.Milliseconds(), 10)
	if _, err := conn.Exec(cctx, "SELECT set_config('idle_session_timeout', $1, false)", ms); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			closeConn(conn)
			return nil, fmt.Errorf("leader: set idle_session_timeout: %w", err)
		}
		e.opt.Log.Warn("leader election: the server has no idle_session_timeout (PostgreSQL < 14): failover after a network partition relies on TCP keepalives", "err", err)
	}
	return conn, nil
}

func (e *Elector) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, e.queryTimeout())
	defer cancel()
	var won bool
	if err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock("+lockKey+")", e.opt.Key).Scan(&won); err != nil {
		return false, fmt.Errorf("leader: try lock: %w", err)
	}
	return won, nil
}

// lockKey is the lock an elector with Options.Key $1 takes: the key
// combined with a hash of the session's current schema (see Options.Key).
const lockKey = `($1::bigint # hashtextextended(coalesce(current_schema(), ''), 0))`

// lockWhere selects the lock of lockKey in pg_locks: a bigint advisory lock
// shows as classid (high 32 bits), objid (low 32 bits), objsubid 1, in the
// current database.
const lockWhere = `l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
	AND l.classid::bigint = ((` + lockKey + ` >> 32) & 4294967295) AND l.objid::bigint = (` + lockKey + ` & 4294967295)
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// holds reports whether this session holds the lock.
func (e *Elector) holds(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, e.queryTimeout())
	defer cancel()
	var held bool
	err := conn.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE "+lockWhere+" AND l.pid = pg_backend_pid())", e.opt.Key).Scan(&held)
	return held, err
}

// holder is the replica name of the session holding the lock, "" when
// unknown.
func (e *Elector) holder(ctx context.Context, conn *pgx.Conn) string {
	qctx, cancel := context.WithTimeout(ctx, e.queryTimeout())
	defer cancel()
	var name string
	err := conn.QueryRow(qctx, "SELECT coalesce(a.application_name, '') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE "+lockWhere+" LIMIT 1", e.opt.Key).Scan(&name)
	if err != nil {
		return ""
	}
	if r, ok := strings.CutPrefix(name, "taxii-bridge/"); ok {
		return r
	}
	return name
}

// release gives the lock up after a term and closes conn. After a term
// that ended normally it unlocks first, so the lock is free when release
// returns (closing alone frees it only once the server has processed the
// disconnection); closing the session frees it in any case.
func (e *Elector) release(conn *pgx.Conn, lost error) {
	if lost == nil {
		ctx, cancel := context.WithTimeout(context.Background(), e.queryTimeout())
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock("+lockKey+")", e.opt.Key)
		cancel()
	}
	closeConn(conn)
}

func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Sole is the elector of a deployment with one process (SQLite): it always
// leads and never talks to a database.
type Sole struct{ replica string }

// NewSole returns the elector of a single-process deployment named replica
// (DefaultReplica when empty).
func NewSole(replica string) Sole {
	if replica == "" {
		replica = DefaultReplica()
	}
	return Sole{replica: replica}
}

// Run runs lead until it returns; nil when ctx ended it.
func (s Sole) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	err := lead(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Leading is always true.
func (Sole) Leading() bool { return true }

// LeaderReplica is the process's own name: it always leads.
func (s Sole) LeaderReplica() string { return s.replica }

// Replica is the process's replica name.
func (s Sole) Replica() string { return s.replica }
