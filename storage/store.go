package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the sqlite3 driver
)

var errTODO = errors.New("storage: not implemented yet")

// Store is a taxii-bridge database: one writer connection and a small pool of
// read connections over the same SQLite file.
type Store struct {
	w   *sql.DB
	r   *sql.DB
	now func() time.Time
}

// Option configures Open.
type Option func(*options)

type options struct {
	now       func() time.Time
	readConns int
}

// WithNow replaces the clock used for date_added (tests).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithReadConns sets the size of the read pool (default 4).
func WithReadConns(n int) Option { return func(o *options) { o.readConns = n } }

// Open opens or creates the database at path and applies pending migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	return nil, errTODO
}

// Close closes both connection pools.
func (s *Store) Close() error { return nil }

// Tx is one write transaction on the single writer connection.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *Store
}

// Update runs fn in one write transaction and commits iff fn returns nil.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error { return errTODO }

// EnsureCollection creates or updates the collection keyed by c.Alias.
func (s *Store) EnsureCollection(ctx context.Context, c Collection) (Collection, error) {
	return Collection{}, errTODO
}

// Collections lists every collection sorted by id (taxii21.md D-3).
func (s *Store) Collections(ctx context.Context) ([]Collection, error) { return nil, errTODO }

// Collection returns the collection with this id or alias, or ErrNotFound.
func (s *Store) Collection(ctx context.Context, idOrAlias string) (Collection, error) {
	return Collection{}, errTODO
}

// Put stores a batch of object versions in a collection.
func (tx *Tx) Put(collectionID string, objs []Object, opt PutOptions) (PutResult, error) {
	return PutResult{}, errTODO
}

// Latest returns the latest version of id in the collection.
func (tx *Tx) Latest(collectionID, id string) (Version, bool, error) {
	return Version{}, false, errTODO
}

// Remove drops every membership of id in the collection (TAXII DELETE).
func (tx *Tx) Remove(collectionID, id string) (bool, error) { return false, errTODO }

// SetState stores value under key.
func (tx *Tx) SetState(key string, value []byte) error { return errTODO }

// State reads the value stored under key inside the transaction.
func (tx *Tx) State(key string) ([]byte, bool, error) { return nil, false, errTODO }

// State reads the value stored under key.
func (s *Store) State(ctx context.Context, key string) ([]byte, bool, error) {
	return nil, false, errTODO
}

// Objects returns a page of object versions with their JSON.
func (s *Store) Objects(ctx context.Context, q Query) (Page, error) { return Page{}, errTODO }

// Manifest returns the same rows as Objects without their JSON.
func (s *Store) Manifest(ctx context.Context, q Query) (Page, error) { return Page{}, errTODO }

// Versions returns every version of q.IDs[0], ordered by date_added.
func (s *Store) Versions(ctx context.Context, q Query) (Page, error) { return Page{}, errTODO }

// PutStatus creates or replaces a status resource.
func (s *Store) PutStatus(ctx context.Context, st Status) error { return errTODO }

// Status reads a status resource, or ErrNotFound.
func (s *Store) Status(ctx context.Context, id string) (Status, error) { return Status{}, errTODO }
