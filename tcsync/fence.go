package tcsync

import (
	"context"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// fencedStore calls Options.Fence at the start of every write transaction.
type fencedStore struct {
	Store
	fence func(tx *storage.Tx) error
}

func (s fencedStore) Update(ctx context.Context, fn func(tx *storage.Tx) error) error {
	return s.Store.Update(ctx, func(tx *storage.Tx) error {
		if err := s.fence(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}
