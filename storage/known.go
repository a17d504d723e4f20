package storage

import (
	"fmt"

	"github.com/bits-and-blooms/bloom/v3"
)

// knownIDs answers "might the objects table hold this STIX id?" without a
// query. A sync that brings many new objects (a first sync, a large
// addition) otherwise looks each one up only to learn it is absent, several
// times per batch; the lookups were a fifth of the commit's CPU.
//
// It is a Bloom filter over every id the objects table has held since the
// filter was built: a "no" is certain, a "maybe" (about 1% of absent ids,
// plus ids of rolled-back or purged rows) costs the query it would have cost
// anyway. It is built from the table by the first write transaction that
// finds most of a large lookup absent — so a re-read of stored data never
// pays for it — and rebuilt at twice the size when it fills. Only write
// transactions use it, under the writer lock, and Update drops it when
// another process has written to the database since (SQLite's PRAGMA
// data_version; PostgreSQL's generation row, see Tx.begin), so a "no" never
// misses a row someone else inserted.
type knownIDs struct {
	f        *bloom.BloomFilter
	n, limit uint
}

const (
	knownMinCapacity = 1 << 20
	knownFPRate      = 0.01
	// knownBuildAsk is the size of a lookup whose mostly absent answer
	// makes the filter worth building.
	knownBuildAsk = 512
)

// mayHold is false when the table certainly does not hold id.
func (k *knownIDs) mayHold(id string) bool { return k == nil || k.f.TestString(id) }

// add records an id the table now holds.
func (k *knownIDs) add(id string) {
	if k == nil {
		return
	}
	k.f.AddString(id)
	k.n++
}

// full reports that the filter holds more ids than it was sized for.
func (k *knownIDs) full() bool { return k != nil && k.n > k.limit }

// buildKnown scans the objects table into a new filter sized for at least
// twice its rows.
func (tx *Tx) buildKnown() error {
	var rows int64
	if err := tx.queryRow("SELECT count(*) FROM objects").Scan(&rows); err != nil {
		return fmt.Errorf("size the id filter: %w", err)
	}
	limit := max(uint(2*rows), knownMinCapacity)
	k := &knownIDs{f: bloom.NewWithEstimates(limit, knownFPRate), limit: limit}
	r, err := tx.query("SELECT stix_id FROM objects")
	if err != nil {
		return fmt.Errorf("build the id filter: %w", err)
	}
	defer r.Close()
	var key string
	for r.Next() {
		if err := r.Scan(&key); err != nil {
			return fmt.Errorf("build the id filter: %w", err)
		}
		k.f.AddString(stixID(key))
		k.n++
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("build the id filter: %w", err)
	}
	tx.s.known = k
	return nil
}
