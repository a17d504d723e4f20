// Package tcsync is the sync worker: it pulls ThreatConnect indicators,
// groups and deletions through tcapi, maps them with stixmap and writes STIX
// versions into storage, incrementally and crash-safely.
//
// It depends on what it uses and no more: a Source for ThreatConnect
// (*tcapi.Client is one) and a Store for storage (*storage.Store is one),
// both declared here, and its own Options, which cmd translates from the
// configuration.
//
// # Windows and cursors
//
// Each stream ("indicators", "groups", "deleted") keeps its position in the
// store's state table. A run opens a window [since, until) over lastModified:
// until is the run's start (whole seconds), since is the previous window's end
// less Overlap, or now − sync.first_fetch on the first run (threatconnect-v3.md
// §11.6: GEQ with dedup, never "+1 s"). Inside the window the client pages by
// id (keyset, tcapi.Query), so mutations between pages can neither skip nor
// repeat an item; an item modified during the run moves past until and is
// taken by the next window. Every page is one transaction that writes the
// page's STIX versions and the window's new AfterID together: a crash at any
// instant resumes at the last committed page with "id > AfterID", and
// re-processing a page is harmless because storage writes a version only
// when the content hash changed (taxii21.md D-4). A finished window moves the
// watermark to its until. Changing the sync filters restarts the stream.
//
// # Scope
//
// The first window asks ThreatConnect for exactly the configured scope
// (owners, types, tags, active only, thresholds, or the user's indicator and
// group TQL). sync.owners is resolved every run against the owners the
// credentials can read: empty is the account's own organization (the seed's
// default), ["*"] every readable owner. Later
// windows leave the conditions an item can stop meeting (tags, active,
// confidence and ThreatAssess thresholds) out of the TQL and apply them here,
// so an item leaving the scope is seen: its published objects get a revoked
// version (stix-mapping.md §4.10). An inactive indicator under active_only is
// not revoked — deactivation is reversible — its mapped version carries
// valid_until and replaces a published one, but is never published new.
// Private items and values on the exclusion list are never published.
// Deletions come from /v3/indicators/deleted and revoke the indicator
// everywhere it was published. STIX revocation is permanent, so an item that
// returns to scope after it was revoked is skipped and counted.
//
// # Collections
//
// Every item goes to its owner's collection (alias OwnerAlias(owner), title
// the owner name), or to one "threatconnect" collection when per-owner
// collections are off. Filter collections from the configuration are decided
// at write time: the item's owner, tags, confidence and TLP, and each
// object's STIX type and marking, against the filter. Marking definitions and
// the identities objects refer to are written into a collection ahead of
// them (taxii21.md D-20). One id has one history: a new version is written
// to every collection that holds the id. An object that stops matching a
// filter is withdrawn from that collection (no longer served there), never
// revoked for it: revocation would travel to every collection (DESIGN.md §10).
//
// # The publication rule
//
// graph.go makes DESIGN.md §10 hold after every batch, from what storage
// keeps as data: each object's visibility per collection (published,
// withdrawn, blocked), the reference edges of its latest version, and its
// origins (which ThreatConnect item derives it). The rule per STIX kind is in
// graph.go's comment; in short, relationships are blocked while an end (or
// their creator) is not served in the collection or is marked stricter than
// they are, and revoked with an end or when the association is gone;
// containers list only members their owner collection serves at or below
// their marking; observables follow their live origins; so a reader's TLP cap
// is a plain filter and every reference resolves. A consequence worth
// knowing: with per-owner collections, a relationship whose ends belong to
// two owners resolves in neither owner's collection and is served only where
// both ends are (a filter collection across owners, or the single
// collection).
//
// # Reconciliation
//
// ThreatConnect does not bump lastModified when an association is added or
// removed and keeps no deleted list for groups (threatconnect-v3.md §6.5,
// §9.7). Reconcile (scheduled by sync.reconcile_interval through
// RunScheduled, or `sync -reconcile`) reads every stream again from its
// origin: each item re-derives its relationships, so removed associations
// are revoked and new ones published, and the items the store holds that
// the read did not return (deleted, or out of scope) are revoked. A read
// resumed after a crash reconciles associations but revokes nothing unseen:
// only a read that started in this process saw every item. Its cost is a
// full re-read that writes only what changed.
//
// # Failures
//
// RunOnce returns the first error that stops a stream (ThreatConnect faults
// have already been retried by the client); everything committed before it
// stays, and the next run resumes. Run loops on sync.interval with exponential
// backoff after failures and never returns because of one. A value that
// cannot be mapped (hostile input) is logged, counted and skipped; a value
// that is not valid for its observable type keeps its indicator and pattern
// and only the observable is left out, counted as "observable_invalid_value".
package tcsync
