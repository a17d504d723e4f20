package storage

import "fmt"

// txCache is what one write transaction has learned of the store, so that
// a batch's lookups read each row once however many steps ask: the sync
// asks for the latest-version metadata of what it routes, then of what it
// queues, then Put needs it to decide what changed, and settling asks
// again for what it references. Entries are dropped by every write that
// changes them (Put, SetVisibilities) and the whole cache by the bulk ones
// (Remove, PruneVersions, Backfill); the cache dies with the transaction,
// so nothing in it outlives a commit or a rollback.
type txCache struct {
	// oid maps STIX ids to object keys the transaction has seen.
	oid map[string]int64
	// latest holds, per collection and id, the latest version's metadata;
	// an entry with held false records that the collection holds no
	// version of the id.
	latest map[colID]cachedMeta
	// missing holds ids no objects row has (yet).
	missing map[string]bool
}

type colID struct {
	cid int64
	id  string
}

type cachedMeta struct {
	held bool
	oid  int64
	vis  int64 // the vis column as stored
	m    Meta
}

func (c *txCache) init() {
	if c.oid == nil {
		c.oid = map[string]int64{}
		c.latest = map[colID]cachedMeta{}
		c.missing = map[string]bool{}
	}
}

// forget drops what the cache knows of ids in collection cid.
func (c *txCache) forget(cid int64, ids ...string) {
	for _, id := range ids {
		delete(c.latest, colID{cid, id})
	}
}

// reset drops everything (after writes that change many rows or delete
// object keys).
func (c *txCache) reset() { c.oid, c.latest, c.missing = nil, nil, nil }

// resolve returns the object keys of those of ids that have one, reading
// only ids the transaction has not seen yet, in one query. Ids without a
// key are remembered as missing: nothing in the store refers to them, so
// every lookup by them is answered without a query.
func (tx *Tx) resolve(ids []string) (map[string]int64, error) {
	tx.cache.init()
	out := make(map[string]int64, len(ids))
	var ask []string
	for _, id := range ids {
		if oid, ok := tx.cache.oid[id]; ok {
			out[id] = oid
		} else if !tx.cache.missing[id] {
			tx.cache.missing[id] = true // until the query finds it; asked once
			if tx.s.known.mayHold(id) {
				ask = append(ask, id)
			}
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	st, err := tx.stmt("SELECT stix_id, oid FROM objects WHERE stix_id IN (SELECT value FROM json_each(?))")
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, jsonList(objKeys(ask)))
	if err != nil {
		return nil, fmt.Errorf("look up object keys: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var key string
		var oid int64
		if err := rows.Scan(&key, &oid); err != nil {
			return nil, fmt.Errorf("look up object keys: %w", err)
		}
		id := stixID(key)
		out[id] = oid
		tx.cache.learn(id, oid)
		found++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up object keys: %w", err)
	}
	if (tx.s.known == nil && len(ask) >= knownBuildAsk && found < len(ask)/2) || tx.s.known.full() {
		rows.Close()
		if err := tx.buildKnown(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveKeys is resolve keyed the other way, for queries by key: the ids
// that have a key, by key, and the keys as a list.
func (tx *Tx) resolveKeys(ids []string) (byKey map[int64]string, list []int64, err error) {
	keys, err := tx.resolve(ids)
	if err != nil {
		return nil, nil, err
	}
	byKey = make(map[int64]string, len(keys))
	list = make([]int64, 0, len(keys))
	for id, oid := range keys {
		byKey[oid] = id
		list = append(list, oid)
	}
	return byKey, list, nil
}

// learn records the key of an id just written.
func (tx *Tx) learn(id string, oid int64) {
	tx.cache.learn(id, oid)
	tx.s.known.add(id)
}

func (c *txCache) learn(id string, oid int64) {
	c.init()
	c.oid[id] = oid
	delete(c.missing, id)
}
