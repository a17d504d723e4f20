package tcsync_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
)

// countingStore counts the write transactions the worker opens.
type countingStore struct {
	*storage.Store
	updates atomic.Int32
}

func (s *countingStore) Update(ctx context.Context, fn func(tx *storage.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// Options.Fence runs first in every write transaction of a sync, and a
// refusal fails the run with nothing written.
func TestFenceGuardsEveryWriteTransaction(t *testing.T) {
	f := newFixture(t, 40, 8)

	store := &countingStore{Store: openStore(t, "fenced.db")}
	var fenced atomic.Int32
	w, err := tcsync.New(f.client, store, tcsync.Options{Sync: syncConfig(), PerOwnerCollections: true, Mapper: f.mapper, Now: f.clock.Now,
		Fence: func(tx *storage.Tx) error {
			fenced.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if u, n := store.updates.Load(), fenced.Load(); u == 0 || n != u {
		t.Errorf("fence called %d times in %d write transactions; want once in each", n, u)
	}

	refused := errors.New("term over")
	other := openStore(t, "refused.db")
	w, err = tcsync.New(f.client, other, tcsync.Options{Sync: syncConfig(), PerOwnerCollections: true, Mapper: f.mapper, Now: f.clock.Now,
		Fence: func(*storage.Tx) error { return refused }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(t.Context()); !errors.Is(err, refused) {
		t.Fatalf("RunOnce with a refusing fence = %v; want the fence's error", err)
	}
	for alias, objs := range takeSnapshot(t, other) {
		if len(objs) > 0 {
			t.Errorf("collection %s holds %d objects written past the fence", alias, len(objs))
		}
	}
}
