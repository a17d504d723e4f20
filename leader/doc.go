// Package leader decides which replica runs the sync when several serve
// processes share one PostgreSQL database (issue 13, docs/scale-out.md).
//
// An Elector campaigns for a session-level advisory lock,
// pg_try_advisory_lock(Key # hash of the current schema), on a connection
// of its own (one deployment per schema; never a connection from a
// pool, whose connections come and go). While it follows it tries again
// every Interval; while it leads it watches that connection continuously
// and checks the lock is still held every Interval. Losing either ends the
// term at once: the context handed to the leader's work is cancelled with
// ErrLost, and the elector campaigns again once that work has returned.
// PostgreSQL releases a session lock when the session ends, so a leader
// that dies hands over within one Interval; one cut off from the database
// loses its session after IdleTimeout (set on the session as
// idle_session_timeout), so the others take over within IdleTimeout plus
// one Interval.
//
// Leadership alone cannot stop a write that races its loss (the old
// leader may be inside a transaction when the lock moves). A Fence closes
// that gap: each term draws a new epoch from the store's state table, and
// every sync transaction first checks, under a row lock that the next
// term's Begin must also take, that the epoch is still its own.
//
// A deployment with one process (SQLite) elects nobody: Sole always leads.
package leader
