package stixmap

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// groupShape is how one ThreatConnect group type maps (stix-mapping.md
// §4.3): its STIX type, whether ATT&CK technique ids become external
// references, and the properties only that type has.
type groupShape struct {
	stixType string // "" for Threat, whose type is the mapper's threat_as
	attack   attackRule
	props    func(m *Mapper, gb *groupBuild) error
}

// attackRule says when a group's ATT&CK technique ids (from tags and
// attributes) become mitre-attack external references; otherwise they stay
// in x_threatconnect_attributes.
type attackRule int

const (
	attackNever      attackRule = iota
	attackAlways                // an attack-pattern: its name's technique ids count too
	attackWithTactic            // only when an ATT&CK Tactic gives the object its kill chain
)

// groupShapes holds every group type that maps to a STIX object. Tactic and
// Task map to nothing; Tactics become kill chain phases of associated
// objects. It is filled by init because the email properties reach back to
// groupSTIXType (through the container's associations).
var groupShapes map[string]groupShape

func init() {
	groupShapes = map[string]groupShape{
		tcapi.GroupAdversary:      {stixType: "threat-actor", props: actorProps},
		tcapi.GroupIntrusionSet:   {stixType: "intrusion-set", props: actorProps},
		tcapi.GroupThreat:         {props: actorProps},
		tcapi.GroupCampaign:       {stixType: "campaign", props: campaignProps},
		tcapi.GroupAttackPattern:  {stixType: "attack-pattern", attack: attackAlways, props: phasesProps},
		tcapi.GroupMalware:        {stixType: "malware", attack: attackWithTactic, props: malwareProps},
		tcapi.GroupTool:           {stixType: "tool", attack: attackWithTactic, props: toolProps},
		tcapi.GroupSignature:      {stixType: "indicator", attack: attackWithTactic, props: signatureProps},
		tcapi.GroupVulnerability:  {stixType: "vulnerability", props: vulnerabilityProps},
		tcapi.GroupIncident:       {stixType: "incident", props: incidentProps},
		tcapi.GroupCourseOfAction: {stixType: "course-of-action"},
		tcapi.GroupDocument:       {stixType: "report", props: container(reportProps)},
		tcapi.GroupReport:         {stixType: "report", props: container(reportProps)},
		tcapi.GroupEvent:          {stixType: "grouping", props: container(eventProps)},
		tcapi.GroupEmail:          {stixType: "grouping", props: container(emailProps)},
	}
}

// groupSTIXType is the STIX type of a TC group type, "" for groups that map
// to no object (Tactic, Task) or unknown types (stix-mapping.md §4.3).
func (m *Mapper) groupSTIXType(t string) string {
	s, ok := groupShapes[t]
	switch {
	case !ok:
		return ""
	case s.stixType == "":
		return m.threatAs
	}
	return s.stixType
}

// GroupID returns the STIX id of a ThreatConnect group, or "" for group
// types that map to no STIX object (Tactic, Task, unknown types).
func (m *Mapper) GroupID(typ string, tcID int64) string {
	t := m.groupSTIXType(typ)
	if t == "" {
		return ""
	}
	return m.ids.group(t, tcID)
}

// signatureTypes maps TC signature file types to pattern_type values
// (stix-mapping.md §4.3; custom values are allowed by the open vocabulary).
var signatureTypes = map[string]string{
	"snort": "snort", "suricata": "suricata", "yara": "yara", "sigma": "sigma", "regex": "pcre",
	"spl": "spl", "kql": "kql", "bro": "zeek", "zeek": "zeek", "clamav": "clamav", "openioc": "openioc",
	"cybox": "cybox", "tql query": "tql", "iris search hash": "iris-search-hash",
}

// groupBuild is one group's SDO while Group builds it: what the common part
// derived, for the per-type properties (groupShape.props) to use and add to.
type groupBuild struct {
	g                   tcapi.Group
	o                   *obj
	at                  attrs
	b                   *itemBase
	name, owner         string
	ownerRef            string // the creator, or the bridge for an unowned group
	created             time.Time
	firstSeen, lastSeen time.Time
	phases              [][]byte // kill chain phases
	refs                [][]byte // external references
	extra               []Object // SCOs that belong to the group (Email)
}

// Group maps one ThreatConnect group (stix-mapping.md §4.3): its SDO (a
// report or grouping with object_refs for containers; for Email also the
// email-message and email-addr SCOs), statement markings, and relationships
// for embedded associations (§4.4). Tactic and Task groups map to nothing
// (nil, nil): Tactics become kill chain phases of associated objects.
func (m *Mapper) Group(g tcapi.Group) ([]Object, error) {
	shape, ok := groupShapes[g.Type]
	if !ok {
		if g.Type == tcapi.GroupTactic || g.Type == tcapi.GroupTask {
			return nil, nil
		}
		return nil, fmt.Errorf("group %d: group type %q has no STIX mapping", g.ID, g.Type)
	}
	typ := m.groupSTIXType(g.Type)
	name := strings.TrimSpace(clean(g.Name))
	if name == "" {
		return nil, fmt.Errorf("group %d: field name is empty", g.ID)
	}
	owner := strings.TrimSpace(clean(g.OwnerName))
	created, modified, err := times("group", g.ID, g.DateAdded, g.LastModified)
	if err != nil {
		return nil, err
	}
	b := &itemBase{tcID: g.ID, tcType: g.Type, owner: owner, ownerRef: m.ownerRef(g.OwnerID, owner),
		created: created, modified: modified, marks: m.resolveLabels(g.SecurityLabels.Data), tags: tagNames(g.Tags.Data)}
	gb := &groupBuild{g: g, at: readAttributes(g.Attributes.Data, b.marks.level), b: b, name: name, owner: owner,
		ownerRef: b.ownerRef, created: created}
	if gb.ownerRef == "" {
		gb.ownerRef = m.bridgeID
	}
	at := gb.at
	id := m.ids.group(typ, g.ID)
	self := end{id: id, kind: g.Type, created: created, ownerRef: b.ownerRef, level: b.marks.level}

	o := newObj(32)
	gb.o = o
	o.str("type", typ)
	o.str("spec_version", "2.1")
	o.str("id", id)
	o.str("created_by_ref", b.ownerRef)
	o.time("created", created)
	o.time("modified", modified)
	o.str("name", name)
	o.str("description", at.description)
	o.strs("labels", m.labels(b.tags, nil))
	o.strs("object_marking_refs", b.marks.refs)
	gb.refs = append([][]byte{tcRef(g.ID, m.webLink(g.WebLink, "groups", g.ID))}, at.sources...)
	m.tcProps(o, g.ID, g.Type, owner, g.OwnerID, g.XID)

	gb.seen()
	gb.killChain()
	if shape.attack == attackAlways || shape.attack == attackWithTactic && hasTactic(g.AssociatedGroups.Data) {
		techniques := append(tagTechniques(g.Tags.Data), at.techniques...)
		if shape.attack == attackAlways {
			techniques = append(techniques, techniqueIDs(name)...) // "T1078 Valid Accounts"
		}
		gb.refs = append(gb.refs, attackRefs(techniques)...)
		o.list("x_threatconnect_attributes", at.rest)
	} else {
		o.list("x_threatconnect_attributes", at.restWithTechniques())
	}
	if shape.props != nil {
		if err := shape.props(m, gb); err != nil {
			return nil, err
		}
	}
	o.list("external_references", gb.refs)
	js, h := o.finish()
	out := []Object{b.stamp(Object{ID: id, Type: typ, Created: created, Modified: modified, TLP: b.marks.level, Hash: h, JSON: js})}
	for _, s := range gb.extra {
		out = append(out, b.stamp(s))
	}
	for _, st := range b.marks.statements {
		out = append(out, b.stamp(st))
	}
	if !skipsSRO(g.Type) {
		out = m.groupRelationships(out, g, b, self)
	}
	return dedupe(out), nil
}

// seen sets first_seen and last_seen: the group's own, else its
// attributes', with last_seen never before first_seen.
func (gb *groupBuild) seen() {
	gb.firstSeen, gb.lastSeen = gb.g.FirstSeen, gb.g.LastSeen
	if gb.firstSeen.IsZero() {
		gb.firstSeen = gb.at.firstSeen
	}
	if gb.lastSeen.IsZero() {
		gb.lastSeen = gb.at.lastSeen
	}
	if !gb.lastSeen.IsZero() && !gb.firstSeen.IsZero() && gb.lastSeen.Before(gb.firstSeen) {
		gb.lastSeen = gb.firstSeen
	}
}

// killChain collects the kill chain phases: the attributes', and one per
// associated ATT&CK Tactic, sorted and each once.
func (gb *groupBuild) killChain() {
	gb.phases = append([][]byte(nil), gb.at.phases...)
	for _, a := range gb.g.AssociatedGroups.Data {
		if a.Type == tcapi.GroupTactic {
			if p := vocab(clean(a.Name)); p != "" {
				gb.phases = append(gb.phases, killChain("mitre-attack", p))
			}
		}
	}
	sortBytes(gb.phases)
	gb.phases = compactBytes(gb.phases)
}

// groupRelationships appends the relationships of a group's embedded
// associations (stix-mapping.md §4.4) to out.
func (m *Mapper) groupRelationships(out []Object, g tcapi.Group, b *itemBase, self end) []Object {
	ctx := ownerCtx{name: b.owner, ref: b.ownerRef}
	for _, a := range g.AssociatedGroups.Data {
		if skipsSRO(a.Type) || a.ID == g.ID {
			continue
		}
		if other, ok := m.groupEnd(a, ctx); ok {
			out = append(out, b.stamp(m.associate(self, other, "")))
		}
	}
	for _, ind := range g.AssociatedIndicators.Data {
		if e, ok := m.indicatorEnd(ind, ctx); ok {
			out = append(out, b.stamp(m.associate(e, self, "")))
		}
	}
	return out
}

// actorProps: threat-actor and intrusion-set (Adversary, Intrusion Set,
// Threat).
func actorProps(_ *Mapper, gb *groupBuild) error {
	o, at := gb.o, gb.at
	o.strs("aliases", at.aliases)
	o.time("first_seen", gb.firstSeen)
	o.time("last_seen", gb.lastSeen)
	o.strs("goals", at.goals)
	o.str("resource_level", at.resource)
	o.str("primary_motivation", at.primary)
	o.strs("secondary_motivations", at.secondary)
	return nil
}

func campaignProps(_ *Mapper, gb *groupBuild) error {
	o, at := gb.o, gb.at
	o.strs("aliases", at.aliases)
	o.time("first_seen", gb.firstSeen)
	o.time("last_seen", gb.lastSeen)
	o.str("objective", at.objective)
	return nil
}

// phasesProps: an attack-pattern has only its kill chain phases.
func phasesProps(_ *Mapper, gb *groupBuild) error {
	gb.o.list("kill_chain_phases", gb.phases)
	return nil
}

func malwareProps(_ *Mapper, gb *groupBuild) error {
	o, at := gb.o, gb.at
	o.boolean("is_family", true)
	o.strs("aliases", at.aliases)
	o.time("first_seen", gb.firstSeen)
	o.time("last_seen", gb.lastSeen)
	o.list("kill_chain_phases", gb.phases)
	return nil
}

func toolProps(_ *Mapper, gb *groupBuild) error {
	o, at := gb.o, gb.at
	o.strs("aliases", at.aliases)
	o.str("tool_version", at.toolVersion)
	o.list("kill_chain_phases", gb.phases)
	return nil
}

// vulnerabilityProps adds a cve external reference per CVE id in the
// attributes or the name.
func vulnerabilityProps(_ *Mapper, gb *groupBuild) error {
	cves := gb.at.cves
	if v := strings.ToUpper(gb.name); cveRe.MatchString(v) {
		cves = sortUnique(append(cves, v))
	}
	for _, c := range cves {
		r := newObj(2)
		r.str("source_name", "cve")
		r.str("external_id", c)
		gb.refs = append(gb.refs, r.bytes())
	}
	return nil
}

func incidentProps(_ *Mapper, gb *groupBuild) error {
	gb.o.time("x_threatconnect_event_date", gb.g.EventDate)
	gb.o.str("x_threatconnect_status", strings.TrimSpace(clean(gb.g.Status)))
	return nil
}

// signatureProps makes a Signature an indicator whose pattern is the rule
// text, in the pattern language of its file type.
func signatureProps(_ *Mapper, gb *groupBuild) error {
	g, o := gb.g, gb.o
	text := clean(g.FileText)
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("group %d: field fileText is empty (a Signature needs its rule text)", g.ID)
	}
	ft := strings.ToLower(strings.TrimSpace(clean(g.FileType)))
	pt, ok := signatureTypes[ft]
	if !ok {
		pt = vocab(ft)
	}
	if pt == "" {
		return fmt.Errorf("group %d: field fileType is empty", g.ID)
	}
	o.str("pattern", text)
	o.str("pattern_type", pt)
	o.time("valid_from", gb.created)
	o.strs("indicator_types", []string{"malicious-activity"})
	o.str("x_threatconnect_file_name", strings.TrimSpace(clean(g.FileName)))
	o.list("kill_chain_phases", gb.phases)
	return nil
}

// container wraps the properties of a container type (report, grouping)
// with its object_refs: its associations (containerRefs) and the SCOs the
// group itself made, or the creator as a placeholder when there are none
// (stix-mapping.md §4.4 rule 4).
func container(props func(m *Mapper, gb *groupBuild)) func(m *Mapper, gb *groupBuild) error {
	return func(m *Mapper, gb *groupBuild) error {
		props(m, gb)
		objectRefs := m.containerRefs(gb.g, gb.owner)
		for _, s := range gb.extra {
			objectRefs = append(objectRefs, s.ID)
		}
		slices.Sort(objectRefs)
		objectRefs = slices.Compact(objectRefs)
		if len(objectRefs) == 0 {
			objectRefs = []string{gb.ownerRef}
		}
		gb.o.strs("object_refs", objectRefs)
		return nil
	}
}

// reportProps: Document and Report become reports.
func reportProps(_ *Mapper, gb *groupBuild) {
	g, o := gb.g, gb.o
	published := g.PublishDate
	if g.Type == tcapi.GroupDocument {
		published = g.DocumentDateAdded
	}
	if published.IsZero() {
		published = gb.created
	}
	o.time("published", ms(published))
	o.strs("report_types", []string{"threat-report"})
	if g.Type == tcapi.GroupDocument {
		o.str("x_threatconnect_file_name", strings.TrimSpace(clean(g.FileName)))
		if g.FileSize > 0 {
			o.int("x_threatconnect_file_size", int64(g.FileSize))
		}
		if g.Malware {
			o.boolean("x_threatconnect_malware", true)
		}
	}
}

func eventProps(_ *Mapper, gb *groupBuild) {
	g, o := gb.g, gb.o
	o.str("context", "suspicious-activity")
	o.time("x_threatconnect_event_date", g.EventDate)
	o.str("x_threatconnect_event_status", strings.TrimSpace(clean(g.Status)))
	o.str("x_threatconnect_event_type", strings.TrimSpace(clean(g.EventType)))
}

// emailProps: an Email is a grouping that holds its email-message and the
// sender's and recipients' email-addr SCOs.
func emailProps(m *Mapper, gb *groupBuild) {
	g, o := gb.g, gb.o
	o.str("context", "suspicious-activity")
	level := gb.b.marks.level
	gb.extra = m.emailSCOs(g, scoMarkings(m, level), level)
	if g.Score != nil {
		o.int("x_threatconnect_email_score", int64(*g.Score))
	}
}

// containerRefs lists the STIX ids of a container's associations: the
// indicators (and their SCOs), the groups that map to objects, and the
// relationships among them that the container's own data determines — each
// indicator's based-on relationship to its SCO, which Indicator emits with
// the same id — as OASIS example reports and OpenCTI list them
// (stix-mapping.md §4.4 rule 4). Associations between two contents are not
// visible from the container (ThreatConnect nests one level, §4.4), so their
// relationships are not listed here.
func (m *Mapper) containerRefs(g tcapi.Group, owner string) []string {
	var refs []string
	for _, ind := range g.AssociatedIndicators.Data {
		if e, ok := m.indicatorEnd(ind, ownerCtx{name: owner}); ok {
			refs = append(refs, e.id)
			if e.scoID != "" {
				refs = append(refs, e.scoID, m.ids.relationship(e.id, "based-on", e.scoID))
			}
		}
	}
	for _, a := range g.AssociatedGroups.Data {
		if a.ID == g.ID {
			continue
		}
		if e, ok := m.groupEnd(a, ownerCtx{name: owner}); ok {
			refs = append(refs, e.id)
		}
	}
	return refs
}

// emailSCOs builds the email-message SCO of an Email group and the
// email-addr SCOs of its sender and recipients (stix-mapping.md §4.3).
func (m *Mapper) emailSCOs(g tcapi.Group, markingRefs []string, level tlp.Level) []Object {
	var out []Object
	addr := func(v string) string {
		v = strings.TrimSpace(clean(v))
		if v == "" {
			return ""
		}
		o, id := valueSCO("email-addr", "value", v)
		o.strs("object_marking_refs", markingRefs)
		js := o.bytes()
		out = append(out, Object{ID: id, Type: "email-addr", Hash: sha256Of(js), JSON: js})
		return id
	}
	from := addr(g.From)
	var to []string
	for _, t := range splitList(g.To) {
		if id := addr(t); id != "" {
			to = append(to, id)
		}
	}
	slices.Sort(to)
	to = slices.Compact(to)
	subject := strings.TrimSpace(clean(g.EmailSubject))
	body := clean(g.Body)
	canon := newObj(3)
	canon.str("from_ref", from)
	canon.str("subject", subject)
	canon.str("body", body)
	msg := newObj(10)
	msg.str("type", "email-message")
	msg.str("spec_version", "2.1")
	if len(canon.members) == 0 {
		// no sender, subject or body: the group name stands in as the
		// subject so the id stays deterministic
		subject = strings.TrimSpace(clean(g.Name))
		canon.str("subject", subject)
	}
	id := scoIDFromCanonical("email-message", canon.bytes())
	msg.str("id", id)
	msg.boolean("is_multipart", false)
	msg.str("from_ref", from)
	msg.strs("to_refs", to)
	msg.str("subject", subject)
	msg.str("body", body)
	msg.time("date", g.EmailDate)
	msg.raw("additional_header_fields", headerFields(g.Header))
	msg.strs("object_marking_refs", markingRefs)
	js := msg.bytes()
	out = append(out, Object{ID: id, Type: "email-message", Hash: sha256Of(js), JSON: js})
	for i := range out {
		out[i].TLP = level
	}
	return out
}

var (
	headerNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,250}$`)
	// schemaReserved is the (unanchored) reserved-name pattern of the OASIS
	// email-message schema; names it matches are dropped to stay valid
	schemaReserved = regexp.MustCompile(`^date|received_lines|content_type|from_ref|sender_ref|to_refs|cc_refs|bcc_refs|subject$`)
	// headers with their own email-message property (STIX 2.1 §6.6) stay out
	// of additional_header_fields
	ownHeaders = map[string]bool{"date": true, "received": true, "content-type": true, "from": true, "sender": true,
		"to": true, "cc": true, "bcc": true, "subject": true}
)

// headerFields parses an RFC 5322 header block into the canonical JSON of
// additional_header_fields: folded lines are unfolded, repeated fields
// become lists, names the schema does not allow are skipped. It returns nil
// when nothing remains.
func headerFields(header string) []byte {
	header = clean(header)
	var names []string
	values := map[string][]string{}
	last := ""
	for _, line := range strings.Split(strings.ReplaceAll(header, "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			vs := values[last]
			vs[len(vs)-1] += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !headerNameRe.MatchString(name) || ownHeaders[strings.ToLower(name)] || schemaReserved.MatchString(name) {
			last = ""
			continue
		}
		if _, seen := values[name]; !seen {
			names = append(names, name)
		}
		values[name] = append(values[name], strings.TrimSpace(value))
		last = name
	}
	if len(names) == 0 {
		return nil
	}
	o := newObj(len(names))
	for _, n := range names {
		if vs := values[n]; len(vs) == 1 {
			n0 := len(o.buf)
			o.buf = appendString(o.buf, vs[0])
			o.add(n, n0)
		} else {
			o.strsAll(n, vs)
		}
	}
	return o.bytes()
}
