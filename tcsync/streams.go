package tcsync

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// unit is one ThreatConnect item made ready for writing.
type unit struct {
	tcID  int64
	owner tcapi.Owner
	it    item
	objs  []stixmap.Object
	// stored is objs as the store takes them (toStorage), converted on the
	// fetching goroutine so that the committing one does not.
	stored []storage.Object
	// inScope is false when the item fails the sync filters; its objects are
	// then revoked wherever they were published (stix-mapping.md §4.10).
	inScope bool
	// onlyIfStored marks an inactive indicator under active_only: its
	// valid_until version replaces a published one but is never published new.
	onlyIfStored bool
	ownerCol     string
	// foreign marks, per object of objs, a relationship that names another
	// owner: its owner's collection can never serve it (batch.unit).
	foreign []bool
}

// Fields requested for each stream (threatconnect-v3.md §4.2, §4.3).
// The associated objects come with their security labels so that a
// relationship gets the same (stricter) marking from both of its ends.
func (w *Worker) indicatorFields() []string {
	f := []string{"tags", "securityLabels", "attributes", "attributes.securityLabels", "threatAssess", "sightings", "externalDates", "falsePositives"}
	if w.opt.Sync.CreateRelationships {
		f = append(f, associationFields...)
		// File Actions and Host DNS resolutions become relationships (§9.5, §4.2).
		f = append(f, "fileActions", "fileActions.securityLabels", "dnsResolution")
	}
	return f
}

func (w *Worker) groupFields() []string {
	f := []string{"tags", "securityLabels", "attributes", "attributes.securityLabels", "sightings", "externalDates"}
	if w.opt.Sync.CreateRelationships {
		f = append(f, associationFields...)
	}
	return f
}

// A group embeds up to a hundred or so associated indicators (full
// objects), so a page of groups weighs about as much as forty times as many
// indicators (a 10,000-group page decodes to a gigabyte): groupPage keeps a
// page of groups near the size of a page of indicators, at most
// maxGroupPage.
const maxGroupPage = 250

func groupPage(indicatorPage int) int { return max(1, min(indicatorPage/40, maxGroupPage)) }

var associationFields = []string{"associatedGroups", "associatedIndicators",
	"associatedGroups.securityLabels", "associatedIndicators.securityLabels"}

// filter builds the TQL filter for a window. The first window of a stream
// asks ThreatConnect for exactly the scope; later windows leave out the
// conditions an item can stop meeting (active, thresholds, tags) and apply
// them here instead, so an item that leaves the scope is seen and revoked
// rather than silently left published.
func (w *Worker) filter(st streamState, owners []string) tcapi.Filter {
	s := w.opt.Sync
	f := tcapi.Filter{
		Owners:         owners,
		IndicatorTypes: typesFilter(s.IndicatorTypes),
		GroupTypes:     typesFilter(s.GroupTypes),
		UserTQL:        s.TQL,
		GroupUserTQL:   s.GroupTQL,
		ModifiedSince:  st.Window.Since,
		ModifiedUntil:  st.Window.Until,
	}
	if st.Watermark.IsZero() {
		f.Tags = s.Tags
		f.ActiveOnly = s.ActiveOnly
		f.MinConfidence = s.ConfidenceThreshold
		f.MinThreatAssessScore = s.ThreatAssessScoreThreshold
	}
	return f
}

// ownerScope resolves sync.owners against the owners this run listed:
// empty is the API user's own organization (the seed's default), ["*"] every
// readable owner (nil: no owner clause), anything else the names given.
func (w *Worker) ownerScope() ([]string, error) {
	visible := make([]tcapi.Owner, 0, len(w.owners))
	for _, o := range w.owners {
		visible = append(visible, o)
	}
	return tcapi.OwnerScope(w.opt.Sync.Owners, visible)
}

// scope fingerprints the settings that decide which items a stream reads.
// The group TQL joins only when set, so existing fingerprints stay valid.
func (w *Worker) scope(owners []string) string {
	s := w.opt.Sync
	parts := []any{owners, s.Tags, s.IndicatorTypes, s.GroupTypes, s.TQL, s.CreateRelationships}
	if s.GroupTQL != "" {
		parts = append(parts, "group_tql", s.GroupTQL)
	}
	return scopeFingerprint(parts...)
}

func (w *Worker) syncIndicators(ctx context.Context, start time.Time, sum *Summary) error {
	owners, err := w.ownerScope()
	if err != nil {
		return err
	}
	st, err := w.loadState(ctx, "indicators", w.scope(owners))
	if err != nil {
		return err
	}
	w.openWindow(&st, start)
	// Without active_only the filter asks for active and inactive indicators
	// explicitly (threatconnect-v3.md §6.6), so deactivations are seen.
	tql := w.filter(st, owners).IndicatorTQL()
	q := tcapi.Query{
		TQL:      withAfterID(tql, st.Window.AfterID),
		Fields:   w.indicatorFields(),
		PageSize: w.opt.Sync.PageSize,
	}
	return syncStream(ctx, w, "indicators", st, start, sum, w.src.Indicators, q,
		func(i tcapi.Indicator) int64 { return i.ID }, w.prepareIndicator)
}

func (w *Worker) prepareIndicator(ind tcapi.Indicator, st streamState, sum *Summary) (unit, bool) {
	s := w.opt.Sync
	u := unit{tcID: ind.ID, owner: w.owner(ind.OwnerName, ind.OwnerID), inScope: true}
	objs, err := w.m.Indicator(ind)
	if !w.mapped(&u, objs, err, "indicator", ind.Type, sum) {
		return unit{}, false
	}
	reason := ""
	switch {
	case ind.PrivateFlag:
		reason = "private"
	case w.excl.excluded(ind):
		reason = "excluded"
	// The thresholds are minimums, as the seed words them ("minimal value").
	case s.TQL == "" && s.ConfidenceThreshold > 0 && u.it.confidence < s.ConfidenceThreshold:
		reason = "below_confidence_threshold"
	case s.TQL == "" && s.ThreatAssessScoreThreshold > 0 && (ind.ThreatAssessScore == nil || *ind.ThreatAssessScore < s.ThreatAssessScoreThreshold):
		reason = "below_threat_assess_threshold"
	case s.TQL == "" && len(s.Tags) > 0 && !hasAnyTag(u.it.tags, s.Tags):
		reason = "tags_not_matched"
	}
	if reason != "" {
		sum.skip(reason)
		u.inScope = false
		return u, !st.Watermark.IsZero() // nothing to revoke before anything was published
	}
	for _, o := range objs {
		if o.Omitted != "" {
			// the indicator is published; only its observable is not
			sum.skip(o.Omitted)
		}
	}
	if s.ActiveOnly && !ind.Active {
		u.onlyIfStored = true
	}
	return u, true
}

// mapped gives u the objects the mapper made of its item and the item as
// they describe it (itemOf), or counts the item unmappable.
func (w *Worker) mapped(u *unit, objs []stixmap.Object, err error, what, tcType string, sum *Summary) bool {
	if err != nil {
		sum.skip("unmappable")
		w.opt.Log.Warn(what+" skipped: cannot be mapped to STIX", "tc_id", u.tcID, "type", tcType, "err", err)
		return false
	}
	u.objs = objs
	u.it = itemOf(*u)
	return true
}

func hasAnyTag(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}

func (w *Worker) syncGroups(ctx context.Context, start time.Time, sum *Summary) error {
	owners, err := w.ownerScope()
	if err != nil {
		return err
	}
	st, err := w.loadState(ctx, "groups", w.scope(owners))
	if err != nil {
		return err
	}
	w.openWindow(&st, start)
	q := tcapi.Query{
		TQL:      withAfterID(w.filter(st, owners).GroupTQL(), st.Window.AfterID),
		Fields:   w.groupFields(),
		PageSize: groupPage(w.opt.Sync.PageSize),
	}
	return syncStream(ctx, w, "groups", st, start, sum, w.src.Groups, q,
		func(g tcapi.Group) int64 { return g.ID }, w.prepareGroup)
}

// syncStream pages a stream's open window with q, prepares each page (fetch
// side: decode, map, scope) and commits it with the window's new position
// (pipeline side), then closes the window.
func syncStream[T any](ctx context.Context, w *Worker, name string, st streamState, start time.Time, sum *Summary,
	fetch func(context.Context, tcapi.Query, func([]T) error) error, q tcapi.Query,
	id func(T) int64, prepare func(T, streamState, *Summary) (unit, bool)) error {
	if w.seen != nil && st.Reconciling && st.Window.AfterID == 0 {
		// Only a read that started here saw every item: a resumed one
		// reconciles associations but revokes nothing unseen.
		w.seen[name] = map[int64]bool{}
	}
	p := newPipeline(ctx, 2)
	err := fetch(p.Context(), q, func(page []T) error {
		delta := Summary{Fetched: len(page), Skipped: map[string]int{}}
		units := make([]unit, 0, len(page))
		for _, v := range page {
			if u, ok := prepare(v, st, &delta); ok {
				u.foreign = w.foreignObjects(u)
				u.stored = make([]storage.Object, len(u.objs))
				for i, o := range u.objs {
					u.stored[i] = toStorage(o)
					if w.mayStore(u, i) { // else Put encodes it if it comes to write it
						u.stored[i].Encode()
					}
				}
				units = append(units, u)
			}
		}
		if w.seen[name] != nil {
			for _, v := range page {
				w.seen[name][id(v)] = true
			}
		}
		st.Window.AfterID = max(st.Window.AfterID, id(page[len(page)-1]))
		at := st
		at.Window = &window{Since: st.Window.Since, Until: st.Window.Until, AfterID: st.Window.AfterID}
		return p.submit(func(ctx context.Context) error {
			return w.commit(ctx, name, units, at, start, delta, sum)
		})
	})
	if err = p.wait(err); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if st.Reconciling && w.seen[name] != nil {
		if err := w.revokeUnseen(ctx, name, start, sum); err != nil {
			return err
		}
	}
	return w.closeWindow(ctx, name, st)
}

// foreignObjects marks the relationships of u that name another owner
// than u's (stixmap.Object.RefOwners): its owner's collection holds no
// other owner's identity or objects, so they could only ever be stored
// there blocked.
func (w *Worker) foreignObjects(u unit) []bool {
	var out []bool
	self := ""
	for i, o := range u.objs {
		if len(o.RefOwners) == 0 {
			continue
		}
		if self == "" {
			var ok bool
			if self, ok = w.selfRefs[u.owner.Name]; !ok {
				id, err := w.m.Owner(u.owner)
				if err != nil {
					return nil // prerequisites reports it; nothing is left out
				}
				self = id.ID
				w.selfRefs[u.owner.Name] = self
			}
		}
		for _, r := range o.RefOwners {
			if r != self {
				if out == nil {
					out = make([]bool, len(u.objs))
				}
				out[i] = true
				break
			}
		}
	}
	return out
}

// isForeign reports foreignObjects' mark of u.objs[i].
func (u unit) isForeign(i int) bool { return i < len(u.foreign) && u.foreign[i] }

// mayStore tells, on the fetch side, whether routing (batch.unit) can
// write u.objs[i] anywhere, so that a foreign relationship outside every
// filter collection is not encoded for nothing.
func (w *Worker) mayStore(u unit, i int) bool {
	if !u.isForeign(i) || !u.inScope {
		return true
	}
	for _, f := range w.filters {
		if filterMatches(f.cfg.Filter, u.it, u.objs[i].Type, u.objs[i].TLP) {
			return true
		}
	}
	return false
}

// revokeUnseen revokes, after a reconciliation read the whole stream, the
// stored items of that stream ThreatConnect no longer returned: deleted
// (groups have no deleted list, threatconnect-v3.md §6.5) or out of scope.
func (w *Worker) revokeUnseen(ctx context.Context, stream string, start time.Time, sum *Summary) error {
	seen := w.seen[stream]
	var delta Summary
	err := w.store.Update(ctx, func(tx *storage.Tx) error {
		delta = Summary{Skipped: map[string]int{}}
		b := newBatch(w, tx, start, &delta)
		for col := range w.ownerKind {
			// Only a STIX indicator can be either kind (a Signature group
			// maps to one); an indicator the indicator stream read is not
			// a group.
			unseen, err := tx.Items(col, func(it storage.Meta) bool {
				return !seen[it.TCID] && (stream != "indicators" || it.Type == "indicator") &&
					(stream != "groups" || it.Type != "indicator" || !w.seen["indicators"][it.TCID])
			})
			if err != nil {
				return err
			}
			for _, it := range unseen {
				// Groups and indicators have separate id spaces, and a
				// Signature group maps to a STIX indicator: the stored
				// ThreatConnect type tells which stream the item is of.
				v, ok, err := tx.Latest(col, it.ID)
				if err != nil {
					return err
				}
				isGroup := slices.Contains(tcapi.GroupTypes(), stixmap.TCType(v.JSON))
				if !ok || isGroup != (stream == "groups") {
					continue
				}
				if err := b.revokeEverywhere(it.ID); err != nil {
					return err
				}
				if err := b.forgetItem(it.ID); err != nil {
					return err
				}
			}
		}
		return b.flush()
	})
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", stream, err)
	}
	sum.add(delta)
	return nil
}

func (w *Worker) prepareGroup(g tcapi.Group, st streamState, sum *Summary) (unit, bool) {
	u := unit{tcID: g.ID, owner: w.owner(g.OwnerName, g.OwnerID), inScope: true}
	objs, err := w.m.Group(g)
	if !w.mapped(&u, objs, err, "group", g.Type, sum) {
		return unit{}, false
	}
	if w.opt.Sync.GroupTQL == "" && len(w.opt.Sync.Tags) > 0 && !hasAnyTag(u.it.tags, w.opt.Sync.Tags) {
		sum.skip("tags_not_matched")
		u.inScope = false
		return u, !st.Watermark.IsZero()
	}
	return u, true
}

// deletedScope is the deleted stream's scope: deletions are revoked wherever
// the indicator was published, whatever the filters, so a filter change must
// not restart this stream (a restart skips the deletions since the last run).
const deletedScope = "all"

// syncDeleted revokes the indicators ThreatConnect reports deleted since the
// last run. The first run only sets the watermark: nothing is published yet.
func (w *Worker) syncDeleted(ctx context.Context, start time.Time, sum *Summary) error {
	st, err := w.loadState(ctx, "deleted", deletedScope)
	if err != nil {
		return err
	}
	if !st.Watermark.IsZero() {
		since := st.Watermark.Add(-Overlap)
		owners, err := w.ownerScope()
		if err != nil {
			return err
		}
		if len(owners) == 0 {
			owners = []string{""}
		}
		for _, owner := range owners {
			err := w.src.DeletedIndicators(ctx, since, owner, func(page []tcapi.DeletedIndicator) error {
				sum.Fetched += len(page)
				return w.commitDeleted(ctx, page, start, sum)
			})
			if err != nil {
				return fmt.Errorf("sync deleted indicators: %w", err)
			}
		}
	}
	st.Watermark = start.UTC().Truncate(time.Second)
	st.Window = nil
	return w.store.Update(ctx, func(tx *storage.Tx) error {
		return tx.SetState(stateKey("deleted"), st.encode())
	})
}

// closeWindow records a finished window: the next run starts from its end.
func (w *Worker) closeWindow(ctx context.Context, stream string, st streamState) error {
	st.Watermark = st.Window.Until
	st.Window = nil
	st.Reconciling = false
	return w.store.Update(ctx, func(tx *storage.Tx) error {
		return tx.SetState(stateKey(stream), st.encode())
	})
}

func withAfterID(tql string, after int64) string {
	if after <= 0 {
		return tql
	}
	return tcapi.And(tql, "id > "+strconv.FormatInt(after, 10))
}

// commit writes one page's units and the stream's new position in one
// transaction, so a crash either keeps both or neither, then adds the page's
// counts (delta, from preparing it) and the write counts to sum. Commits run
// one at a time, in page order (see pipeline).
func (w *Worker) commit(ctx context.Context, stream string, units []unit, st streamState, start time.Time, delta Summary, sum *Summary) error {
	for i := range units {
		id, err := w.ownerCollection(ctx, units[i].owner.Name)
		if err != nil {
			return err
		}
		units[i].ownerCol = id
	}
	incremental := !st.Watermark.IsZero()
	var written Summary
	err := w.store.Update(ctx, func(tx *storage.Tx) error {
		written = Summary{Skipped: map[string]int{}}
		b := newBatch(w, tx, start, &written)
		if err := b.preload(units); err != nil {
			return err
		}
		for _, u := range units {
			if err := b.unit(u, incremental); err != nil {
				return err
			}
		}
		if err := b.flush(); err != nil {
			return err
		}
		return tx.SetState(stateKey(stream), st.encode())
	})
	if err != nil {
		return fmt.Errorf("commit %s batch: %w", stream, err)
	}
	sum.add(delta)
	sum.add(written)
	if w.opt.Progress != nil {
		w.opt.Progress(Progress{Stream: stream, Items: sum.Fetched, Elapsed: time.Since(start)})
	}
	return nil
}

func (s *Summary) add(d Summary) {
	s.Fetched += d.Fetched
	s.NewVersions += d.NewVersions
	s.Unchanged += d.Unchanged
	s.Revoked += d.Revoked
	for k, v := range d.Skipped {
		s.Skipped[k] += v
	}
}

func (w *Worker) commitDeleted(ctx context.Context, page []tcapi.DeletedIndicator, start time.Time, sum *Summary) error {
	var delta Summary
	err := w.store.Update(ctx, func(tx *storage.Tx) error {
		delta = Summary{Skipped: map[string]int{}}
		b := newBatch(w, tx, start, &delta)
		for _, d := range page {
			ids, err := w.m.DeletedIndicatorIDs(d)
			if err != nil {
				delta.skip("deleted_unmappable")
				w.opt.Log.Warn("deleted indicator skipped", "owner", d.OwnerName, "type", d.Type, "err", err)
				continue
			}
			for _, id := range ids {
				if err := b.revokeEverywhere(id); err != nil {
					return err
				}
				if err := b.forgetItem(id); err != nil {
					return err
				}
			}
		}
		return b.flush()
	})
	if err != nil {
		return fmt.Errorf("commit deletions: %w", err)
	}
	sum.add(delta)
	return nil
}
