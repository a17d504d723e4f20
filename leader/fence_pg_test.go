package leader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/storage"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// openPostgresStores opens n stores (replicas) on one fresh schema of the
// test database; the test is skipped without TB_POSTGRES_URL.
func openPostgresStores(t *testing.T, n int) []*storage.Store {
	t.Helper()
	u, _ := pgtest.Schema(t, "tb_fence")
	var stores []*storage.Store
	for range n {
		s, err := storage.OpenPostgres(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	return stores
}

// On PostgreSQL a new term cannot begin while a fenced transaction of the
// old term is in flight (Begin waits for the fence row), and once it has
// begun, the old term's transactions fail and write nothing.
func TestFence_PostgresOrdersTermsAndWrites(t *testing.T) {
	stores := openPostgresStores(t, 2)
	oldStore, newStore := stores[0], stores[1]
	var oldTerm, newTerm leader.Fence
	if _, err := oldTerm.Begin(t.Context(), oldStore); err != nil {
		t.Fatal(err)
	}

	inTx, release := make(chan struct{}), make(chan struct{})
	var oldDone atomic.Bool
	oldErr := make(chan error, 1)
	go func() {
		err := oldStore.Update(t.Context(), func(tx *storage.Tx) error {
			if err := oldTerm.Check(tx); err != nil {
				return err
			}
			close(inTx)
			<-release
			return tx.SetState("old-term-write", []byte("x"))
		})
		oldDone.Store(true)
		oldErr <- err
	}()
	<-inTx

	beginErr := make(chan error, 1)
	var beganWhileOldInFlight atomic.Bool
	go func() {
		_, err := newTerm.Begin(t.Context(), newStore)
		if err == nil && !oldDone.Load() {
			beganWhileOldInFlight.Store(true)
		}
		beginErr <- err
	}()
	// Give Begin every chance to (wrongly) complete: wait until some
	// session waits on a lock, or a generous deadline.
	admin, err := pgx.Connect(t.Context(), pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	errOld, errBegin := <-oldErr, <-beginErr
	if beganWhileOldInFlight.Load() {
		t.Fatal("a new term began while a transaction of the old term was in flight")
	}
	if errBegin != nil {
		t.Fatalf("Begin of the new term: %v (old term's transaction: %v)", errBegin, errOld)
	}

	// The old term is over: its next transaction fails and writes nothing.
	err = oldStore.Update(t.Context(), func(tx *storage.Tx) error {
		if err := oldTerm.Check(tx); err != nil {
			return err
		}
		return tx.SetState("stale-write", []byte("x"))
	})
	if !errors.Is(err, leader.ErrFenced) {
		t.Errorf("old term's transaction after the new term began = %v; want ErrFenced", err)
	}
	if _, ok, err := newStore.State(t.Context(), "stale-write"); err != nil || ok {
		t.Errorf("stale write present = %v (%v); want absent", ok, err)
	}
	if err := newStore.Update(t.Context(), newTerm.Check); err != nil {
		t.Errorf("new term's transaction: %v", err)
	}
}
