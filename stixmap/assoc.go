package stixmap

import (
	"github.com/taxii-bridge/taxii-bridge/slug"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// kindIndicator is the association kind of every TC indicator; groups use
// their TC group type as kind.
const kindIndicator = "Indicator"

// end is one side of an association, resolved to its STIX object.
type end struct {
	id       string
	kind     string // kindIndicator or the TC group type
	tcType   string // indicator type, for the indicator ↔ indicator table
	created  time.Time
	ownerRef string
	level    tlp.Level
	scoID    string // the indicator's SCO, if any
}

// relationship builds an SRO between two ends (stix-mapping.md §4.4). Its
// content depends only on the two ends, so both ThreatConnect sides of an
// association produce the same bytes: created = modified = the later
// dateAdded of the ends (an association cannot predate either end),
// created_by_ref = the source's owner, and the stricter TLP of the ends.
//
// SCOs are shared by every owner, so a relationship between two SCOs also
// names its creator in the id: two owners asserting the same link make two
// objects, not two conflicting versions of one.
func (m *Mapper) relationship(src, tgt end, typ, description string) Object {
	created := src.created
	if tgt.created.After(created) {
		created = tgt.created
	}
	level, refs := m.levelRef(tlp.Max(src.level, tgt.level))
	owner := src.ownerRef
	if owner == "" {
		owner = tgt.ownerRef
	}
	var id string
	if isSCOID(src.id) && isSCOID(tgt.id) {
		id = m.ids.make("relationship", "relationship|", owner, "|", src.id, "|", typ, "|", tgt.id)
	} else {
		id = m.ids.relationship(src.id, typ, tgt.id)
	}
	// members in key order, so finish need not sort
	o := newObj(12)
	o.time("created", created)
	o.str("created_by_ref", owner)
	o.str("description", strings.TrimSpace(clean(description)))
	o.str("id", id)
	o.time("modified", created)
	o.strs("object_marking_refs", refs)
	o.str("relationship_type", typ)
	o.str("source_ref", src.id)
	o.str("spec_version", "2.1")
	o.str("target_ref", tgt.id)
	o.str("type", "relationship")
	js, h := o.finish()
	owners := []string{owner}
	for _, e := range []end{src, tgt} {
		if e.ownerRef != "" && e.ownerRef != owner && !isSCOID(e.id) {
			owners = append(owners, e.ownerRef)
		}
	}
	return Object{ID: id, Type: "relationship", Created: created, Modified: created, TLP: level, Hash: h, JSON: js,
		RefOwners: owners}
}

// isSCOID tells ids of the observable types stixmap emits.
func isSCOID(id string) bool {
	typ, _, _ := strings.Cut(id, "--")
	_, ok := contributing[typ]
	return ok
}

// relatedTo builds a related-to relationship in canonical direction (the
// lexically smaller id is the source) so that both sides agree.
func (m *Mapper) relatedTo(a, b end, description string) Object {
	if b.id < a.id {
		a, b = b, a
	}
	return m.relationship(a, b, "related-to", description)
}

var (
	actorish   = map[string]bool{tcapi.GroupAdversary: true, tcapi.GroupCampaign: true, tcapi.GroupIntrusionSet: true, tcapi.GroupThreat: true}
	capability = map[string]bool{tcapi.GroupAttackPattern: true, tcapi.GroupMalware: true, tcapi.GroupTool: true}
	indicated  = map[string]bool{tcapi.GroupAdversary: true, tcapi.GroupCampaign: true, tcapi.GroupIntrusionSet: true,
		tcapi.GroupThreat: true, tcapi.GroupMalware: true, tcapi.GroupTool: true, tcapi.GroupAttackPattern: true}
	mitigated = map[string]bool{tcapi.GroupAttackPattern: true, tcapi.GroupMalware: true, tcapi.GroupTool: true,
		tcapi.GroupVulnerability: true, tcapi.GroupSignature: true, kindIndicator: true}
	containers = map[string]bool{tcapi.GroupReport: true, tcapi.GroupDocument: true, tcapi.GroupEvent: true, tcapi.GroupEmail: true}
)

// rule returns the typed relationship of the table in stix-mapping.md §4.4
// for kinds a and b: whether a is the source, and the relationship type.
// ok is false when the pair falls back to related-to.
func rule(a, b string) (aIsSource bool, typ string, ok bool) {
	for _, swap := range []bool{false, true} {
		x, y := a, b
		if swap {
			x, y = b, a
		}
		t := ""
		switch {
		case x == kindIndicator && indicated[y]:
			t = "indicates"
		case x == tcapi.GroupCourseOfAction && mitigated[y]:
			t = "mitigates"
		case x == tcapi.GroupCampaign && (y == tcapi.GroupAdversary || y == tcapi.GroupIntrusionSet || y == tcapi.GroupThreat):
			t = "attributed-to"
		case (x == tcapi.GroupIntrusionSet || x == tcapi.GroupThreat) && y == tcapi.GroupAdversary:
			t = "attributed-to"
		case actorish[x] && capability[y]:
			t = "uses"
		case actorish[x] && y == tcapi.GroupVulnerability:
			t = "targets"
		case x == tcapi.GroupMalware && (y == tcapi.GroupAttackPattern || y == tcapi.GroupTool):
			t = "uses"
		case x == tcapi.GroupMalware && y == tcapi.GroupVulnerability:
			t = "exploits"
		case x == tcapi.GroupAttackPattern && y == tcapi.GroupTool:
			t = "uses"
		case (x == tcapi.GroupAttackPattern || x == tcapi.GroupTool) && y == tcapi.GroupVulnerability:
			t = "targets"
		}
		if t != "" {
			return !swap, t, true
		}
	}
	return false, "", false
}

// associate maps one association between two ends.
func (m *Mapper) associate(a, b end, description string) Object {
	if aSrc, typ, ok := rule(a.kind, b.kind); ok && a.kind != b.kind {
		if aSrc {
			return m.relationship(a, b, typ, description)
		}
		return m.relationship(b, a, typ, description)
	}
	return m.relatedTo(a, b, description)
}

// skipsSRO tells kinds whose associations are not relationships: containers
// list them in object_refs, Tactics become kill chain phases, Tasks are dropped.
func skipsSRO(kind string) bool {
	return containers[kind] || kind == tcapi.GroupTactic || kind == tcapi.GroupTask
}

// ownerCtx is the owner of the item being mapped: embedded associations
// that omit their owner (or name the same one) inherit it, so both sides of
// an association agree on created_by_ref.
type ownerCtx struct {
	name, ref string
}

// endOwner is the identity ref of an embedded item's owner.
func (m *Mapper) endOwner(id int64, name string, ctx ownerCtx) string {
	name = strings.TrimSpace(clean(name))
	switch {
	case id != 0:
		return m.ownerRef(id, name)
	case name == "" || name == ctx.name:
		return ctx.ref
	}
	return m.ownerRef(0, name)
}

// groupEnd resolves an embedded group to its end; ok is false for groups
// that map to no STIX object.
func (m *Mapper) groupEnd(g tcapi.Group, ctx ownerCtx) (end, bool) {
	typ := m.groupSTIXType(g.Type)
	if typ == "" || g.ID == 0 {
		return end{}, false
	}
	created := g.DateAdded
	if created.IsZero() {
		created = g.LastModified
	}
	return end{id: m.groupID(typ, g.ID), kind: g.Type, created: ms(created), ownerRef: m.endOwner(g.OwnerID, g.OwnerName, ctx),
		level: m.resolveLabels(g.SecurityLabels.Data).level}, true
}

// indicatorEnd resolves an embedded indicator; an indicator without owner
// name belongs to ctx's owner (its id includes the owner name).
//
// A private indicator is never an end: nothing derived from it (its id, its
// observable's id) may be published, not even as a reference (DESIGN.md §10).
func (m *Mapper) indicatorEnd(ind tcapi.Indicator, ctx ownerCtx) (end, bool) {
	if ind.PrivateFlag {
		return end{}, false
	}
	ob, err := observe(ind.Type, ind.Values())
	if err != nil || ob == nil {
		return end{}, false
	}
	ob.discard()
	name := strings.TrimSpace(clean(ind.OwnerName))
	if name == "" {
		name = ctx.name
	}
	created := ind.DateAdded
	if created.IsZero() {
		created = ind.LastModified
	}
	return end{id: m.indicatorID(name, ind.Type, ob.key), kind: kindIndicator, tcType: ind.Type, created: ms(created),
		ownerRef: m.endOwner(ind.OwnerID, name, ctx), level: m.resolveLabels(ind.SecurityLabels.Data).level, scoID: ob.scoID}, true
}

// indicatorPair maps an indicator ↔ indicator association (stix-mapping.md §4.4).
func (m *Mapper) indicatorPair(a, b end, description string) Object {
	isAddr := func(t string) bool { return t == tcapi.TypeAddress || t == tcapi.TypeCIDR }
	sco := func(e end) end { e.id = e.scoID; return e }
	switch {
	case a.scoID != "" && b.scoID != "" && a.tcType == tcapi.TypeASN && isAddr(b.tcType):
		return m.relationship(sco(b), sco(a), "belongs-to", description)
	case a.scoID != "" && b.scoID != "" && b.tcType == tcapi.TypeASN && isAddr(a.tcType):
		return m.relationship(sco(a), sco(b), "belongs-to", description)
	case a.scoID != "" && b.scoID != "" && a.scoID != b.scoID:
		return m.relatedTo(sco(a), sco(b), description)
	}
	return m.relatedTo(a, b, description)
}

// indicatorAssociations maps the associations embedded in an indicator.
func (m *Mapper) indicatorAssociations(self end, ind tcapi.Indicator, owner string) ([]Object, error) {
	ctx := ownerCtx{name: owner, ref: self.ownerRef}
	var out []Object
	for _, g := range ind.AssociatedGroups.Data {
		if skipsSRO(g.Type) {
			continue
		}
		other, ok := m.groupEnd(g, ctx)
		if !ok {
			continue
		}
		out = append(out, m.associate(self, other, ""))
	}
	for _, other := range ind.AssociatedIndicators.Data {
		e, ok := m.indicatorEnd(other, ctx)
		if !ok || e.id == self.id {
			continue
		}
		out = append(out, m.indicatorPair(self, e, other.AssociationName))
	}
	for _, other := range ind.CustomAssociations.Data {
		e, ok := m.indicatorEnd(other, ctx)
		if !ok || e.id == self.id {
			continue
		}
		out = append(out, m.relatedTo(self, e, other.CustomAssociationName))
	}
	for _, fa := range ind.FileActions.Data {
		if fa.Indicator == nil {
			continue
		}
		e, ok := m.indicatorEnd(*fa.Indicator, ctx)
		if !ok || e.id == self.id {
			continue
		}
		out = append(out, m.fileAction(self, e, fa.Relationship)...)
	}
	return out, nil
}

// fileAction maps a File Action (threatconnect-v3.md §9.5: File Traffic,
// File DNS Query, File Drop, …) to a relationship from the File indicator to
// the other indicator and, when both have an observable, one between the
// observables. The action names both the relationship_type (lower case,
// hyphens: "file-traffic"; STIX allows user-defined types, §3.7) and the
// description ("File Traffic").
func (m *Mapper) fileAction(file, other end, action string) []Object {
	action = strings.TrimSpace(clean(action))
	typ := slug.Of(action) // a relationship_type the schema accepts (^[a-z0-9-]+$), "" when nothing is left
	if typ == "" {
		return []Object{m.relatedTo(file, other, action)}
	}
	out := []Object{m.relationship(file, other, typ, action)}
	if file.scoID != "" && other.scoID != "" && file.scoID != other.scoID {
		fs, os := file, other
		fs.id, os.id = file.scoID, other.scoID
		out = append(out, m.relationship(fs, os, typ, action))
	}
	return out
}
