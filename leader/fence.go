package leader

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// State keys of the fence in the store's state table.
const (
	// EpochKey holds the epoch of the latest term, a decimal counter.
	EpochKey = "leader/epoch"
	// fenceKey is the row every fenced transaction writes before reading
	// EpochKey. On PostgreSQL that write takes a row lock held to commit,
	// which Begin takes too: a term cannot begin while a transaction of the
	// previous term is in flight, and a transaction that starts after a
	// newer term began reads the newer epoch (under READ COMMITTED the read
	// is a fresh snapshot taken after the lock; under stricter isolation the
	// conflicting write fails the transaction). SQLite has one writer at a
	// time, which gives the same order.
	fenceKey = "leader/fence"
)

// ErrFenced fails a transaction of a term that is over.
var ErrFenced = errors.New("leader: fenced: this replica's term is over")

// Updater is what a Fence needs of the store: *storage.Store is one.
type Updater interface {
	Update(ctx context.Context, fn func(tx *storage.Tx) error) error
}

// Fence keeps a leader's writes inside its term. The zero value is a fence
// with no term: Check fails until Begin succeeds.
type Fence struct {
	mu    sync.Mutex
	epoch uint64 // 0: no term
}

// Begin starts a term: it increments the store's epoch and makes it this
// fence's, so every transaction of an earlier term, here or at another
// replica, fails Check from now on. Call it once leadership is won, before
// the leader writes.
func (f *Fence) Begin(ctx context.Context, store Updater) (uint64, error) {
	f.End()
	var next uint64
	err := store.Update(ctx, func(tx *storage.Tx) error {
		if err := tx.SetState(fenceKey, []byte("begin")); err != nil {
			return err
		}
		cur, err := readEpoch(tx)
		if err != nil {
			return err
		}
		next = cur + 1
		return tx.SetState(EpochKey, []byte(strconv.FormatUint(next, 10)))
	})
	if err != nil {
		return 0, fmt.Errorf("leader: begin term: %w", err)
	}
	f.mu.Lock()
	f.epoch = next
	f.mu.Unlock()
	return next, nil
}

// End ends the term here: Check fails until the next Begin. Call it as
// soon as leadership is lost.
func (f *Fence) End() {
	f.mu.Lock()
	f.epoch = 0
	f.mu.Unlock()
}

// Epoch is the current term's epoch, 0 when there is none.
func (f *Fence) Epoch() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

// Check is called first in every write transaction of the leader's work
// (tcsync.Options.Fence): it returns ErrFenced, failing the transaction,
// unless the store's epoch is still this fence's.
func (f *Fence) Check(tx *storage.Tx) error {
	mine := f.Epoch()
	if mine == 0 {
		return ErrFenced
	}
	if err := tx.SetState(fenceKey, []byte(strconv.FormatUint(mine, 10))); err != nil {
		return err
	}
	cur, err := readEpoch(tx)
	if err != nil {
		return err
	}
	if cur != mine {
		return fmt.Errorf("%w (term %d, the store is at %d)", ErrFenced, mine, cur)
	}
	return nil
}

func readEpoch(tx *storage.Tx) (uint64, error) {
	v, ok, err := tx.State(EpochKey)
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("leader: state %s holds %q, not an epoch", EpochKey, v)
	}
	return n, nil
}
