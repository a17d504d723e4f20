package stixmap

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// groupSTIXType is the STIX type of a TC group type, "" for groups that map
// to no object (Tactic, Task) or unknown types (stix-mapping.md §4.3).
func (m *Mapper) groupSTIXType(t string) string {
	switch t {
	case tcapi.GroupAdversary:
		return "threat-actor"
	case tcapi.GroupAttackPattern:
		return "attack-pattern"
	case tcapi.GroupCampaign:
		return "campaign"
	case tcapi.GroupCourseOfAction:
		return "course-of-action"
	case tcapi.GroupDocument, tcapi.GroupReport:
		return "report"
	case tcapi.GroupEmail, tcapi.GroupEvent:
		return "grouping"
	case tcapi.GroupIncident:
		return "incident"
	case tcapi.GroupIntrusionSet:
		return "intrusion-set"
	case tcapi.GroupMalware:
		return "malware"
	case tcapi.GroupSignature:
		return "indicator"
	case tcapi.GroupThreat:
		return m.threatAs
	case tcapi.GroupTool:
		return "tool"
	case tcapi.GroupVulnerability:
		return "vulnerability"
	}
	return ""
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

// Group maps one ThreatConnect group (stix-mapping.md §4.3): its SDO (a
// report or grouping with object_refs for containers; for Email also the
// email-message and email-addr SCOs), statement markings, and relationships
// for embedded associations (§4.4). Tactic and Task groups map to nothing
// (nil, nil): Tactics become kill chain phases of associated objects.
func (m *Mapper) Group(g tcapi.Group) ([]Object, error) {
	typ := m.groupSTIXType(g.Type)
	if typ == "" {
		if g.Type == tcapi.GroupTactic || g.Type == tcapi.GroupTask {
			return nil, nil
		}
		return nil, fmt.Errorf("group %d: group type %q has no STIX mapping", g.ID, g.Type)
	}
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
	ownerRef := b.ownerRef
	if ownerRef == "" {
		ownerRef = m.bridgeID
	}
	at := readAttributes(g.Attributes.Data, b.marks.level)
	id := m.ids.group(typ, g.ID)
	self := end{id: id, kind: g.Type, created: created, ownerRef: b.ownerRef, level: b.marks.level}

	var out []Object
	o := newObj(32)
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
	refs := [][]byte{tcRef(g.ID, m.webLink(g.WebLink, "groups", g.ID))}
	refs = append(refs, at.sources...)
	m.tcProps(o, g.ID, g.Type, owner, g.OwnerID, g.XID)

	firstSeen, lastSeen := g.FirstSeen, g.LastSeen
	if firstSeen.IsZero() {
		firstSeen = at.firstSeen
	}
	if lastSeen.IsZero() {
		lastSeen = at.lastSeen
	}
	if !lastSeen.IsZero() && !firstSeen.IsZero() && lastSeen.Before(firstSeen) {
		lastSeen = firstSeen
	}
	phases := append([][]byte(nil), at.phases...)
	for _, a := range g.AssociatedGroups.Data {
		if a.Type == tcapi.GroupTactic {
			if p := vocab(clean(a.Name)); p != "" {
				phases = append(phases, killChain("mitre-attack", p))
			}
		}
	}
	sortBytes(phases)
	phases = compactBytes(phases)
	// ATT&CK technique ids become mitre-attack external references on
	// attack-patterns and on the objects whose kill chain comes from an
	// ATT&CK Tactic (malware, tool, signature); elsewhere they stay in
	// x_threatconnect_attributes.
	if g.Type == tcapi.GroupAttackPattern || hasTactic(g.AssociatedGroups.Data) &&
		(g.Type == tcapi.GroupMalware || g.Type == tcapi.GroupTool || g.Type == tcapi.GroupSignature) {
		techniques := append(tagTechniques(g.Tags.Data), at.techniques...)
		if g.Type == tcapi.GroupAttackPattern {
			techniques = append(techniques, techniqueIDs(name)...) // "T1078 Valid Accounts"
		}
		refs = append(refs, attackRefs(techniques)...)
		o.list("x_threatconnect_attributes", at.rest)
	} else {
		o.list("x_threatconnect_attributes", at.restWithTechniques())
	}
	var extra []Object // SCOs that belong to the group (Email)

	switch g.Type {
	case tcapi.GroupAdversary, tcapi.GroupIntrusionSet, tcapi.GroupThreat:
		o.strs("aliases", at.aliases)
		o.time("first_seen", firstSeen)
		o.time("last_seen", lastSeen)
		o.strs("goals", at.goals)
		o.str("resource_level", at.resource)
		o.str("primary_motivation", at.primary)
		o.strs("secondary_motivations", at.secondary)
	case tcapi.GroupCampaign:
		o.strs("aliases", at.aliases)
		o.time("first_seen", firstSeen)
		o.time("last_seen", lastSeen)
		o.str("objective", at.objective)
	case tcapi.GroupAttackPattern:
		o.list("kill_chain_phases", phases)
	case tcapi.GroupMalware:
		o.boolean("is_family", true)
		o.strs("aliases", at.aliases)
		o.time("first_seen", firstSeen)
		o.time("last_seen", lastSeen)
		o.list("kill_chain_phases", phases)
	case tcapi.GroupTool:
		o.strs("aliases", at.aliases)
		o.str("tool_version", at.toolVersion)
		o.list("kill_chain_phases", phases)
	case tcapi.GroupVulnerability:
		cves := at.cves
		if v := strings.ToUpper(name); cveRe.MatchString(v) {
			cves = sortUnique(append(cves, v))
		}
		for _, c := range cves {
			r := newObj(2)
			r.str("source_name", "cve")
			r.str("external_id", c)
			refs = append(refs, r.bytes())
		}
	case tcapi.GroupIncident:
		o.time("x_threatconnect_event_date", g.EventDate)
		o.str("x_threatconnect_status", strings.TrimSpace(clean(g.Status)))
	case tcapi.GroupSignature:
		text := clean(g.FileText)
		if strings.TrimSpace(text) == "" {
			return nil, fmt.Errorf("group %d: field fileText is empty (a Signature needs its rule text)", g.ID)
		}
		ft := strings.ToLower(strings.TrimSpace(clean(g.FileType)))
		pt, ok := signatureTypes[ft]
		if !ok {
			pt = vocab(ft)
		}
		if pt == "" {
			return nil, fmt.Errorf("group %d: field fileType is empty", g.ID)
		}
		o.str("pattern", text)
		o.str("pattern_type", pt)
		o.time("valid_from", created)
		o.strs("indicator_types", []string{"malicious-activity"})
		o.str("x_threatconnect_file_name", strings.TrimSpace(clean(g.FileName)))
		o.list("kill_chain_phases", phases)
	case tcapi.GroupDocument, tcapi.GroupReport, tcapi.GroupEvent, tcapi.GroupEmail:
		objectRefs := m.containerRefs(g, owner)
		switch g.Type {
		case tcapi.GroupDocument, tcapi.GroupReport:
			published := g.PublishDate
			if g.Type == tcapi.GroupDocument {
				published = g.DocumentDateAdded
			}
			if published.IsZero() {
				published = created
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
		case tcapi.GroupEvent:
			o.str("context", "suspicious-activity")
			o.time("x_threatconnect_event_date", g.EventDate)
			o.str("x_threatconnect_event_status", strings.TrimSpace(clean(g.Status)))
			o.str("x_threatconnect_event_type", strings.TrimSpace(clean(g.EventType)))
		case tcapi.GroupEmail:
			o.str("context", "suspicious-activity")
			extra = m.emailSCOs(g, scoMarkings(m, b.marks.level), b.marks.level)
			for _, s := range extra {
				objectRefs = append(objectRefs, s.ID)
			}
			if g.Score != nil {
				o.int("x_threatconnect_email_score", int64(*g.Score))
			}
		}
		slices.Sort(objectRefs)
		objectRefs = slices.Compact(objectRefs)
		if len(objectRefs) == 0 {
			objectRefs = []string{ownerRef} // placeholder, stix-mapping.md §4.4 rule 4
		}
		o.strs("object_refs", objectRefs)
	}
	o.list("external_references", refs)
	js, h := o.finish()
	out = append(out, b.stamp(Object{ID: id, Type: typ, Created: created, Modified: modified, TLP: b.marks.level, Hash: h, JSON: js}))
	for _, s := range extra {
		out = append(out, b.stamp(s))
	}
	for _, st := range b.marks.statements {
		out = append(out, b.stamp(st))
	}
	if !skipsSRO(g.Type) {
		ctx := ownerCtx{name: owner, ref: b.ownerRef}
		for _, a := range g.AssociatedGroups.Data {
			if skipsSRO(a.Type) || a.ID == g.ID {
				continue
			}
			other, ok := m.groupEnd(a, ctx)
			if !ok {
				continue
			}
			out = append(out, b.stamp(m.associate(self, other, "")))
		}
		for _, ind := range g.AssociatedIndicators.Data {
			e, ok := m.indicatorEnd(ind, ctx)
			if !ok {
				continue
			}
			out = append(out, b.stamp(m.associate(e, self, "")))
		}
	}
	return dedupe(out), nil
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
