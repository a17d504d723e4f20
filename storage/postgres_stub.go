package storage

import (
	"context"
	"errors"
)

// OpenPostgres opens the PostgreSQL store at url. This stub stands in for
// the PostgreSQL backend built on another branch, so that the scale-out
// wiring compiles here; it is deleted when the branches merge.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Store, error) {
	return nil, errors.New("postgres storage: not built in this branch")
}
