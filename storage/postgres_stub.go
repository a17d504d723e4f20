package storage

import (
	"context"
	"errors"
	"fmt"
)

// OpenPostgres opens a PostgreSQL store. This stub stands in until the
// PostgreSQL backend lands (issue 13) and is deleted then; it always fails
// with an error wrapping errors.ErrUnsupported.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Store, error) {
	return nil, fmt.Errorf("open postgres store: this build has no PostgreSQL backend: %w", errors.ErrUnsupported)
}
