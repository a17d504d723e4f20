package tcsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/taxii-bridge/taxii-bridge/kind"
	"github.com/taxii-bridge/taxii-bridge/slug"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// Source is what the worker needs of ThreatConnect; *tcapi.Client is one.
type Source interface {
	Owners(ctx context.Context) ([]tcapi.Owner, error)
	Indicators(ctx context.Context, q tcapi.Query, fn func(page []tcapi.Indicator) error) error
	Groups(ctx context.Context, q tcapi.Query, fn func(page []tcapi.Group) error) error
	DeletedIndicators(ctx context.Context, since time.Time, owner string, fn func(page []tcapi.DeletedIndicator) error) error
}

// Store is what the worker needs of storage: the store's state table that
// keeps each stream's windows and cursors, the collections it writes
// (owner collections it makes on first use, the configured filter
// collections), one transaction per batch in which a page's versions and
// its stream position commit together, and the maintenance that follows a
// run. *storage.Store is one.
type Store interface {
	Update(ctx context.Context, fn func(tx *storage.Tx) error) error
	Collections(ctx context.Context) ([]storage.Collection, error)
	EnsureCollection(ctx context.Context, c storage.Collection) (storage.Collection, error)
	State(ctx context.Context, key string) ([]byte, bool, error)
	Maintain(ctx context.Context) error
}

// Overlap is how far each incremental window reaches back before the previous
// window's end, to catch items whose lastModified was stamped by a ThreatConnect
// clock behind ours or committed late. Re-fetched unchanged items write nothing.
const Overlap = 10 * time.Minute

// Progress reports a run in flight.
type Progress struct {
	Stream  string
	Items   int // fetched so far in this run, all streams
	Elapsed time.Duration
}

// Summary is the outcome of one run.
type Summary struct {
	Fetched     int            // TC items received (indicators, groups, deletions)
	NewVersions int            // STIX versions written (revocations included)
	Unchanged   int            // objects whose content had not changed
	Revoked     int            // revoked versions written
	Skipped     map[string]int // items not published, by reason
	Duration    time.Duration
}

func (s *Summary) skip(reason string) { s.Skipped[reason]++ }

// SkippedTotal is the number of items not published, all reasons together.
func (s Summary) SkippedTotal() int {
	n := 0
	for _, v := range s.Skipped {
		n += v
	}
	return n
}

// Worker syncs ThreatConnect into the store. RunOnce and Run must not be
// called concurrently on one Worker.
type Worker struct {
	src     Source
	store   Store
	opt     Options
	m       *stixmap.Mapper
	excl    exclusions
	filters []filterCollection

	owners    map[string]tcapi.Owner // by name, refreshed each run
	ownerCols map[string]string      // owner name → collection id
	ownerKind map[string]bool        // collection id → is an owner collection
	// selfRefs caches each owner's identity id, for the fetch side alone
	// (foreignObjects).
	selfRefs map[string]string

	mu     sync.Mutex
	health Health

	// reconcile is set for a run that re-reads every stream from its
	// origin; seen collects the TC ids such a run read, per stream.
	reconcile bool
	seen      map[string]map[int64]bool
}

type filterCollection struct {
	id  string
	cfg Collection
}

// Health is what /readyz reports about the worker.
type Health struct {
	LastSuccess         time.Time
	LastError           string
	ConsecutiveFailures int
}

// New returns a worker that reads src and writes store.
func New(src Source, store Store, opt Options) (*Worker, error) {
	if opt.Mapper == nil {
		return nil, errors.New("tcsync: Options.Mapper is required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Sync.PageSize <= 0 {
		opt.Sync.PageSize = 1000
	}
	if opt.Fence != nil {
		store = fencedStore{Store: store, fence: opt.Fence}
	}
	w := &Worker{src: src, store: store, opt: opt, m: opt.Mapper, ownerCols: map[string]string{}, ownerKind: map[string]bool{},
		selfRefs: map[string]string{}}
	if !opt.Sync.BypassExclusionList {
		w.excl = newExclusions(opt.Sync.Exclusions)
	}
	return w, nil
}

// Health returns the outcome of the recent runs.
func (w *Worker) Health() Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.health
}

// Run syncs every sync.interval until ctx is cancelled. A failed run is
// logged and retried with exponential backoff (30 s, 1 m, 2 m, … up to the
// interval); it never ends the loop, so the TAXII server keeps serving what
// is stored. Run returns nil when ctx is cancelled.
func (w *Worker) Run(ctx context.Context) error {
	interval := w.opt.Sync.Interval
	if interval <= 0 {
		interval = 15 * time.Minute
	}
	failures := 0
	for {
		_, err := w.RunScheduled(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := interval
		if err != nil {
			failures++
			wait = min(interval, 30*time.Second<<min(failures-1, 10))
			w.opt.Log.Error("sync failed; will retry", "err", err, "failures", failures, "retry_in", wait.String())
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// ReconcileKey is the state key of the last completed reconciliation.
const ReconcileKey = "tcsync/reconciled"

// Reconcile runs one sync that reads every stream again from its origin
// (DESIGN.md §10): ThreatConnect does not bump lastModified when an
// association is added or removed, and keeps no deleted list for groups, so
// only a full read finds them. Each item read reconciles its own
// associations; items the store holds and the read did not return were
// deleted or left the scope and are revoked. It writes only what changed.
func (w *Worker) Reconcile(ctx context.Context) (Summary, error) {
	w.reconcile = true
	w.seen = map[string]map[int64]bool{}
	defer func() { w.reconcile, w.seen = false, nil }()
	sum, err := w.RunOnce(ctx)
	if err != nil {
		return sum, err
	}
	err = w.store.Update(ctx, func(tx *storage.Tx) error {
		return tx.SetState(ReconcileKey, []byte(w.opt.Now().UTC().Format(time.RFC3339)))
	})
	return sum, err
}

// RunScheduled runs what is due: a reconciliation when ReconcileInterval
// has passed since the last one (then the version retention), otherwise an
// incremental sync; and after either, the store's maintenance (WAL
// checkpoint, planner statistics).
func (w *Worker) RunScheduled(ctx context.Context) (Summary, error) {
	var (
		sum Summary
		err error
	)
	reconciled := w.reconcileDue(ctx)
	if reconciled {
		sum, err = w.Reconcile(ctx)
	} else {
		sum, err = w.RunOnce(ctx)
	}
	if err != nil {
		return sum, err
	}
	if reconciled && w.opt.VersionRetention > 0 {
		if err := w.pruneVersions(ctx); err != nil {
			return sum, err
		}
	}
	if err := w.store.Maintain(ctx); err != nil {
		return sum, fmt.Errorf("maintain the database: %w", err)
	}
	return sum, nil
}

// pruneVersions applies the version retention to every collection.
func (w *Worker) pruneVersions(ctx context.Context) error {
	cols, err := w.store.Collections(ctx)
	if err != nil {
		return fmt.Errorf("prune versions: %w", err)
	}
	before := w.opt.Now().Add(-w.opt.VersionRetention).UnixMicro()
	for _, c := range cols {
		var n int
		err := w.store.Update(ctx, func(tx *storage.Tx) error {
			var err error
			n, err = tx.PruneVersions(c.ID, before)
			return err
		})
		if err != nil {
			return fmt.Errorf("prune versions of %s: %w", c.Alias, err)
		}
		if n > 0 {
			w.opt.Log.Info("pruned old versions", "collection", c.Alias, "versions", n)
		}
	}
	return nil
}

// reconcileDue reports whether the periodic reconciliation is due.
func (w *Worker) reconcileDue(ctx context.Context) bool {
	every := w.opt.ReconcileInterval
	if every <= 0 {
		return false
	}
	b, ok, err := w.store.State(ctx, ReconcileKey)
	if err != nil {
		return false
	}
	if !ok {
		// The first sync reads everything anyway: count it as one.
		_ = w.store.Update(ctx, func(tx *storage.Tx) error {
			return tx.SetState(ReconcileKey, []byte(w.opt.Now().UTC().Format(time.RFC3339)))
		})
		return false
	}
	last, err := time.Parse(time.RFC3339, string(b))
	return err != nil || w.opt.Now().Sub(last) >= every
}

// RunOnce runs one incremental sync: indicators, then groups (with their
// associations), then deletions. Each stream resumes where the last committed
// batch left it.
func (w *Worker) RunOnce(ctx context.Context) (Summary, error) {
	began := time.Now()
	start := w.opt.Now()
	sum := Summary{Skipped: map[string]int{}}
	err := w.runOnce(ctx, start, &sum)
	sum.Duration = time.Since(began)
	attrs := []any{"fetched", sum.Fetched, "new_versions", sum.NewVersions, "unchanged", sum.Unchanged,
		"revoked", sum.Revoked, "skipped", sum.SkippedTotal(), "duration", sum.Duration.Round(time.Millisecond).String()}
	for _, r := range slices.Sorted(maps.Keys(sum.Skipped)) {
		attrs = append(attrs, "skipped_"+r, sum.Skipped[r])
	}
	w.mu.Lock()
	if err != nil {
		w.health.LastError = err.Error()
		w.health.ConsecutiveFailures++
	} else {
		w.health.LastSuccess = w.opt.Now()
		w.health.LastError = ""
		w.health.ConsecutiveFailures = 0
	}
	w.mu.Unlock()
	if w.opt.OnRun != nil {
		w.opt.OnRun(began, sum, err)
	}
	if err != nil {
		w.opt.Log.Warn("sync run ended with an error", append(attrs, "err", err)...)
		return sum, err
	}
	w.opt.Log.Info("sync run complete", attrs...)
	return sum, nil
}

func (w *Worker) runOnce(ctx context.Context, start time.Time, sum *Summary) error {
	owners, err := w.src.Owners(ctx)
	if err != nil {
		return fmt.Errorf("list owners: %w", err)
	}
	w.owners = make(map[string]tcapi.Owner, len(owners))
	for _, o := range owners {
		w.owners[o.Name] = o
	}
	if err := w.ensureFilterCollections(ctx); err != nil {
		return err
	}
	filled, err := w.backfill(ctx)
	if err != nil {
		return err
	}
	if filled && !w.reconcile {
		// Origins were never recorded: read everything once so that
		// every item records what it derives.
		w.reconcile, w.seen = true, map[string]map[int64]bool{}
		defer func() { w.reconcile, w.seen = false, nil }()
	}
	cols, err := w.store.Collections(ctx)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, c := range cols {
		if c.Kind == kind.Owner {
			w.ownerKind[c.ID] = true
		}
	}
	s := w.opt.Sync
	if len(s.IndicatorTypes) > 0 {
		if err := w.syncIndicators(ctx, start, sum); err != nil {
			return err
		}
	}
	if len(s.GroupTypes) > 0 {
		if err := w.syncGroups(ctx, start, sum); err != nil {
			return err
		}
	}
	if len(s.IndicatorTypes) > 0 {
		if err := w.syncDeleted(ctx, start, sum); err != nil {
			return err
		}
	}
	return nil
}

func typesFilter(t []string) []string {
	if len(t) == 1 && strings.EqualFold(t[0], "All") {
		return nil
	}
	return t
}

func (w *Worker) ensureFilterCollections(ctx context.Context) error {
	if w.filters != nil {
		return nil
	}
	for _, c := range w.opt.Collections {
		if c.Kind != kind.Filter {
			continue
		}
		col, err := w.store.EnsureCollection(ctx, storage.Collection{Alias: c.Alias, Title: c.Title, Description: c.Description, Kind: c.Kind})
		if err != nil {
			return fmt.Errorf("create collection %s: %w", c.Alias, err)
		}
		w.filters = append(w.filters, filterCollection{id: col.ID, cfg: c})
	}
	if w.filters == nil {
		w.filters = []filterCollection{}
	}
	return nil
}

// OwnerAlias is the alias of a ThreatConnect owner's collection: the owner
// name as a lower-case slug. Aliases taken by configured collections get an
// "owner-" prefix.
func OwnerAlias(owner string, taken func(string) bool) string {
	alias := slug.Of(owner)
	if alias == "" || len(alias) > 48 {
		sum := sha256.Sum256([]byte(owner))
		alias = strings.TrimSuffix(alias[:min(len(alias), 39)], "-")
		if alias != "" {
			alias += "-"
		}
		alias += hex.EncodeToString(sum[:4])
	}
	if taken != nil && taken(alias) {
		alias = "owner-" + alias
	}
	return alias
}

// ownerCollection returns the id of the collection an owner's objects go to,
// creating it on first use.
func (w *Worker) ownerCollection(ctx context.Context, owner string) (string, error) {
	if !w.opt.PerOwnerCollections {
		owner = ""
	}
	if id, ok := w.ownerCols[owner]; ok {
		return id, nil
	}
	c := storage.Collection{Alias: "threatconnect", Title: "ThreatConnect", Kind: kind.Owner,
		Description: "Everything synced from ThreatConnect"}
	if owner != "" {
		c = storage.Collection{
			Alias: OwnerAlias(owner, func(a string) bool {
				return slices.ContainsFunc(w.opt.Collections, func(cc Collection) bool { return cc.Alias == a })
			}),
			Title:       owner,
			Description: "Intelligence of the ThreatConnect owner " + owner,
			Kind:        kind.Owner,
		}
	}
	col, err := w.store.EnsureCollection(ctx, c)
	if err != nil {
		return "", fmt.Errorf("create collection for owner %q: %w", owner, err)
	}
	w.ownerCols[owner] = col.ID
	w.ownerKind[col.ID] = true
	return col.ID, nil
}

// graphKey marks a store whose graph columns and edges are filled.
const graphKey = "tcsync/graph"

// backfill fills, once, the revoked and TC id columns and the reference
// edges of a store written before they existed (storage migration 0003),
// so that the publication rule sees its whole graph.
func (w *Worker) backfill(ctx context.Context) (filled bool, err error) {
	if _, ok, err := w.store.State(ctx, graphKey); err != nil || ok {
		return false, err
	}
	cols, err := w.store.Collections(ctx)
	if err != nil {
		return false, fmt.Errorf("backfill: %w", err)
	}
	err = w.store.Update(ctx, func(tx *storage.Tx) error {
		for _, c := range cols {
			n, err := tx.Backfill(c.ID, func(v storage.Version) ([]string, bool, int64) {
				o := fromStorage(v)
				var tcid int64
				if o.Type != "relationship" && !o.Modified.IsZero() {
					tcid = stixmap.TCID(v.JSON)
				}
				return closureRefs(o), stixmap.IsRevoked(v.JSON), tcid
			})
			if err != nil {
				return fmt.Errorf("backfill %s: %w", c.Alias, err)
			}
			if n > 0 {
				filled = true
				w.opt.Log.Info("filled the reference graph of a store written by an older version", "collection", c.Alias, "objects", n)
			}
		}
		return tx.SetState(graphKey, []byte("1"))
	})
	return filled, err
}

// isOwnerCollection tells the collections ThreatConnect owners' items live in.
func (w *Worker) isOwnerCollection(col string) bool { return w.ownerKind[col] }

func (w *Worker) owner(name string, id int64) tcapi.Owner {
	if o, ok := w.owners[name]; ok {
		return o
	}
	return tcapi.Owner{ID: id, Name: name}
}

// scopeFingerprint identifies the filter settings a stream was synced with.
func scopeFingerprint(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// loadState reads a stream's state; a changed scope starts the stream over.
func (w *Worker) loadState(ctx context.Context, stream, scope string) (streamState, error) {
	b, ok, err := w.store.State(ctx, stateKey(stream))
	if err != nil {
		return streamState{}, fmt.Errorf("read %s sync state: %w", stream, err)
	}
	if !ok {
		return streamState{Scope: scope}, nil
	}
	st, err := decodeState(b)
	if err != nil {
		w.opt.Log.Warn("unreadable sync state; starting the stream over", "stream", stream, "err", err)
		return streamState{Scope: scope}, nil
	}
	if st.Scope != scope {
		w.opt.Log.Info("sync filters changed; re-reading the stream from first_fetch", "stream", stream)
		return streamState{Scope: scope}, nil
	}
	return st, nil
}

// openWindow starts a window when none is in progress: from the watermark
// (less Overlap), or from first_fetch on the first run, up to start.
func (w *Worker) openWindow(st *streamState, start time.Time) {
	if st.Window != nil {
		return
	}
	win := &window{Until: start.UTC().Truncate(time.Second)}
	switch {
	case !st.Watermark.IsZero() && w.reconcile:
		win.Since = st.Origin
		st.Reconciling = true
	case !st.Watermark.IsZero():
		win.Since = st.Watermark.Add(-Overlap)
	case w.opt.Sync.FirstFetch > 0:
		win.Since = start.Add(-w.opt.Sync.FirstFetch).UTC().Truncate(time.Second)
		st.Origin = win.Since
	}
	st.Window = win
}
