package storage

import (
	"errors"
	"time"
)

// ErrNotFound is returned (possibly wrapped) when a collection, status or
// object asked for by identifier does not exist.
var ErrNotFound = errors.New("not found")

// TLP ranks as stored in the tlp column. They equal tlp.Level's values; the
// storage package keeps them as plain integers so that it imports nothing
// of ours.
const (
	TLPNone        = 0
	TLPClear       = 1
	TLPGreen       = 2
	TLPAmber       = 3
	TLPAmberStrict = 4
	TLPRed         = 5
)

// Collection is a TAXII collection as stored. Alias is the stable key under
// which configuration and sync refer to it; ID is the UUIDv4 assigned on first
// creation and never changed (taxii21.md D-19).
type Collection struct {
	ID          string
	Alias       string
	Title       string
	Description string
	// Kind is "owner", "filter" or "local" (kind.Owner, …); it is
	// opaque to storage.
	Kind     string
	CanWrite bool
}

// Object is one STIX object version handed to Tx.Put.
type Object struct {
	ID          string
	Type        string
	SpecVersion string
	Created     time.Time
	// Modified is zero for unversioned objects (SCOs, marking-definitions).
	Modified time.Time
	// TLP is the object's TLP rank (see the TLP constants).
	TLP int
	// Hash is a content hash that ignores `modified`, computed by the caller:
	// 128 bits (migration 0004 cut stored hashes to 16 bytes).
	Hash [16]byte
	// JSON is the canonical JSON of the object, served byte for byte
	// (taxii21.md D-20).
	JSON []byte
	// Refs are the ids of the objects this version references whose
	// presence the caller wants kept as edges (see Tx.Referrers). Storage
	// does not read them out of JSON: it knows no STIX.
	Refs []string
	// Wants are the ids a container would list if they all resolved (its
	// mapped members); the sync recomputes its object_refs from them.
	Wants []string
	// Revoked and TCID are kept as columns of the version so that callers
	// need not parse stored JSON back (TCID 0: none).
	Revoked bool
	TCID    int64
	// ValidUntil is the version's valid_until (an indicator's), zero when
	// it has none; Query.CurrentAt compares it.
	ValidUntil time.Time

	// The stored form of JSON when Encode prepared it (encOf is the JSON
	// it was made from).
	codec       int
	body, encOf []byte
}

// Encode prepares the object's stored form, so that a producer goroutine
// does the encoding work rather than the single writer. Put encodes
// whatever was not prepared, or whose JSON was replaced since.
func (o *Object) Encode() {
	o.codec, o.body = encodeJSON(o.JSON)
	o.encOf = o.JSON
}

// stored returns the codec and bytes to store for o.
func (o *Object) stored() (int, []byte) {
	if o.body != nil && len(o.encOf) == len(o.JSON) && len(o.JSON) > 0 && &o.encOf[0] == &o.JSON[0] {
		return o.codec, o.body
	}
	return encodeJSON(o.JSON)
}

// Visibility of an object in a collection (the vis column). Published
// objects are visible at their latest version's TLP rank; the two hidden
// states are invisible to every reader, with or without a cap.
type Visibility int

const (
	// Published: visible to readers whose cap is at least the latest
	// version's TLP rank.
	Published Visibility = iota
	// Withdrawn: the collection no longer wants the object (it left a
	// filter, or its source went out of scope); stored, never served.
	Withdrawn
	// Blocked: a reference the object carries does not resolve in the
	// collection; stored, never served until it does.
	Blocked
)

const (
	visWithdrawn = 8
	visBlocked   = 9
)

func (v Visibility) rank() int {
	switch v {
	case Withdrawn:
		return visWithdrawn
	case Blocked:
		return visBlocked
	}
	return -1
}

func visibilityOf(rank int) Visibility {
	switch rank {
	case visWithdrawn:
		return Withdrawn
	case visBlocked:
		return Blocked
	}
	return Published
}

// Meta is what the sync needs to know of an object's latest version in a
// collection, without its JSON.
type Meta struct {
	ID        string
	Type      string
	Modified  time.Time // zero for unversioned objects
	DateAdded int64
	TLP       int
	Vis       Visibility
	Hash      [16]byte
	Revoked   bool
	TCID      int64
}

// Edge kinds kept by the store.
const (
	// EdgeRef: the source's latest version references the target.
	EdgeRef = 0
	// EdgeOrigin: the target was derived from the ThreatConnect item whose
	// object is the source.
	EdgeOrigin = 1
	// EdgeWant: the source (a container) lists the target when it resolves.
	EdgeWant = 2
)

// PutResult counts what Tx.Put did.
type PutResult struct {
	New, Unchanged int
	// Written lists the ids of which a version was written, in input order.
	Written []string
}

// Version is one stored version of an object as a member of a collection.
type Version struct {
	ID          string
	Type        string
	SpecVersion string
	Created     time.Time
	// Modified is zero for unversioned objects.
	Modified  time.Time
	TLP       int
	Hash      [16]byte
	JSON      []byte
	DateAdded int64 // µs since the epoch
	Vis       Visibility
	Revoked   bool
	TCID      int64
}

// Key is a keyset position in a listing: listings are ordered by DateAdded
// (unique per database, taxii21.md D-1) and then RowID.
type Key struct {
	DateAdded int64 // µs since the epoch
	RowID     int64
}

// VersionFilter is match[version]. The zero value means "last", the TAXII
// default; otherwise the result is the union of the selected versions.
type VersionFilter struct {
	Last, First, All bool
	// At selects versions whose modified (or, for unversioned objects, the
	// version time described in the package doc) equals one of these instants.
	At []time.Time
}

// Query selects a page of a collection. Every filter is applied in SQL so
// that a page is as full as the limit allows (taxii21.md D-7, C-15).
type Query struct {
	CollectionID string
	// AddedAfter is exclusive, in µs since the epoch; 0 means no bound.
	AddedAfter int64
	// After resumes strictly after this position (from a `next` cursor).
	After *Key
	// IDs, Types and SpecVersions are match[id], match[type] and
	// match[spec_version]; empty means any.
	IDs, Types, SpecVersions []string
	Versions                 VersionFilter
	// MaxTLP hides every row whose TLP rank is above it; TLPRed means no cap.
	MaxTLP int
	// CurrentAt, when not 0 (µs since the epoch), keeps only versions that
	// are current then: not revoked and not past their valid_until (the
	// bootstrap view of a client starting from zero).
	CurrentAt int64
	// Limit is the page size; the store fetches Limit+1 rows to decide More.
	Limit int
	// WithNewest asks for Page.Newest, read by the listing's own statement.
	WithNewest bool
	// JSONOnly (Objects only) fills just the JSON, DateAdded and Key of
	// each item, and ID for a single-id query; the other fields stay zero
	// and the columns behind them are not read (a server writing the
	// envelope needs nothing else).
	JSONOnly bool
}

// Item is one row of a listing.
type Item struct {
	ID          string
	Type        string
	SpecVersion string
	Created     time.Time
	// Modified is zero for unversioned objects.
	Modified  time.Time
	DateAdded int64 // µs since the epoch
	Key       Key
	// JSON is nil for manifest listings.
	JSON []byte
}

// Page is one page of a listing.
type Page struct {
	Items []Item
	More  bool
	// Newest is, when Query.WithNewest asked for it and the page is not
	// empty, what NewestDateAdded returns for the query's collection and
	// cap, read in the same transaction as the items; 0 otherwise.
	Newest int64
}

// StatusDetail is one entry of a status resource's successes, failures or
// pendings list.
type StatusDetail struct {
	ID, Version, Message string
}

// Status is a TAXII status resource created by a POST to a collection.
// The counts are exact; the detail lists may hold fewer entries than their
// counts when the caller cut them (TAXII allows omitting them).
type Status struct {
	ID                               string
	Status                           string
	RequestTimestamp                 time.Time
	Total, Success, Failure, Pending int
	Successes, Failures, Pendings    []StatusDetail
	// Owner names the principal that created the status; the store keeps
	// it and leaves access decisions to the caller.
	Owner string `json:",omitempty"`
	// Expires is when the status stops being readable. PutStatus deletes
	// expired statuses; Status treats one not yet deleted as absent. Zero
	// means never.
	Expires time.Time `json:",omitzero"`
}

// MaxStatusBytes bounds the stored form of one status resource; PutStatus
// refuses a larger one, so callers cut their detail lists before.
const MaxStatusBytes = 8 << 20
