package stixmap

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/idna"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// observable is what one TC indicator value becomes (stix-mapping.md §4.2):
// the pattern, and the SCO when the type has one.
type observable struct {
	key       string       // normalised value, part of the indicator id
	join      string       // AND or OR between the comparisons
	cmps      []comparison // the pattern's comparisons, built by pattern()
	scoType   string       // "" when the type has no SCO
	scoID     string
	sco       *obj // SCO members except object_marking_refs
	extraProp [2]string
	// omitted is the skip reason when the value is not valid for its SCO
	// type: the pattern stays, the SCO (and based-on) are left out.
	omitted string
}

// OmittedInvalidValue is the Object.Omitted reason of an indicator whose
// value is not valid for its observable type.
const OmittedInvalidValue = "observable_invalid_value"

// invalid makes ob the pattern-only observable of a value that its SCO type
// rejects (an address the STIX schema refuses, a host name with a label that
// is not valid punycode): the indicator keeps its pattern, the observable is
// omitted and counted (Object.Omitted).
func (ob *observable) invalid(typ, prop, v string) {
	ob.key, ob.scoType, ob.scoID, ob.sco = v, "", "", nil
	ob.join, ob.cmps = "AND", []comparison{{path: typ + ":" + prop, value: v}}
	ob.omitted = OmittedInvalidValue
}

// hostProblem says why v is not a valid domain-name value, or "" when it is:
// an empty or over-long label, a name over 253 bytes, characters no host
// name has, or an "xn--" label that does not decode as punycode (RFC 3492;
// ThreatConnect hosts are "ASCII or punycode only", threatconnect-v3.md §6.1).
func hostProblem(v string) string {
	if len(v) > 253 {
		return "longer than 253 bytes"
	}
	for rest, more := v, true; more; {
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if label == "" || len(label) > 63 {
			return "empty or over-long label"
		}
		for _, r := range label {
			if r <= ' ' || r == 0x7f || strings.ContainsRune("!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~", r) || unicode.IsSpace(r) || unicode.Is(unicode.Bidi_Control, r) {
				return "character not allowed in a host name"
			}
		}
		if strings.HasPrefix(label, "xn--") {
			u, err := idna.Punycode.ToUnicode(label)
			if err != nil || u == "" || u == label {
				return "label " + label + " is not valid punycode"
			}
			if _, err := idna.Lookup.ToASCII(u); err != nil {
				return "label " + label + " decodes to a name IDNA does not allow"
			}
		}
	}
	return ""
}

var hives = []struct{ short, long string }{
	{"HKLM", "HKEY_LOCAL_MACHINE"}, {"HKCU", "HKEY_CURRENT_USER"}, {"HKCR", "HKEY_CLASSES_ROOT"},
	{"HKU", "HKEY_USERS"}, {"HKCC", "HKEY_CURRENT_CONFIG"},
}

// expandHive replaces an abbreviated registry hive; STIX 2.1 §6.15 requires
// the full name.
func expandHive(key string) string {
	for _, h := range hives {
		if len(key) >= len(h.short) && strings.EqualFold(key[:len(h.short)], h.short) &&
			(len(key) == len(h.short) || key[len(h.short)] == '\\') {
			return h.long + key[len(h.short):]
		}
	}
	return key
}

var registryTypes = map[string]string{
	"REG_NONE": "REG_NONE", "REG_SZ": "REG_SZ", "REG_EXPAND_SZ": "REG_EXPAND_SZ", "REG_BINARY": "REG_BINARY",
	"REG_DWORD": "REG_DWORD", "REG_DWORD_BIG_ENDIAN": "REG_DWORD_BIG_ENDIAN",
	"REG_DWORD_LITTLE_ENDIAN": "REG_DWORD_LITTLE_ENDIAN", "REG_LINK": "REG_LINK", "REG_MULTI_SZ": "REG_MULTI_SZ",
	"REG_RESOURCE_LIST": "REG_RESOURCE_LIST", "REG_FULL_RESOURCE_DESCRIPTION": "REG_FULL_RESOURCE_DESCRIPTION",
	"REG_RESOURCE_REQUIREMENTS_LIST": "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD": "REG_QWORD",
	"REG_QWORD_LITTLE_ENDIAN": "REG_QWORD", "REG_INVALID_TYPE": "REG_INVALID_TYPE",
}

// pattern builds the STIX pattern of the observable.
func (ob *observable) pattern() string { return buildPattern(ob.join, ob.cmps...) }

// discard returns the unused SCO builder to the pool (ids-only callers).
func (ob *observable) discard() {
	if ob.sco != nil {
		ob.sco.release()
		ob.sco = nil
	}
}

// single makes ob the observable of one property: its key, its SCO and the
// pattern that compares that property.
func (ob *observable) single(typ, prop, v string) {
	ob.key, ob.scoType = v, typ
	ob.sco, ob.scoID = valueSCO(typ, prop, v)
	ob.join, ob.cmps = "AND", []comparison{{path: typ + ":" + prop, value: v}}
}

// valueSCO starts an SCO with a single "value" property.
func valueSCO(typ, prop, v string) (*obj, string) {
	var stack [256]byte
	canon := appendString(append(append(append(stack[:0], `{"`...), prop...), `":`...), v)
	canon = append(canon, '}')
	id := scoIDFromCanonical(typ, canon)
	o := newObj(5)
	o.str("id", id)
	o.str("spec_version", "2.1")
	o.str("type", typ)
	o.str(prop, v) // sorted by finish if prop sorts before "type"
	return o, id
}

// hex6 writes an IPv6 address in RFC 5952 form without the dotted IPv4
// tail netip uses for IPv4-mapped addresses.
func hex6(a netip.Addr) string {
	b := a.As16()
	var g [8]uint16
	for i := range g {
		g[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestAt, bestLen := -1, 1 // RFC 5952 §4.2.2: never compress a single group
	for i := 0; i < 8; {
		j := i
		for j < 8 && g[j] == 0 {
			j++
		}
		if j-i > bestLen {
			bestAt, bestLen = i, j-i
		}
		i = max(j, i+1)
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if i == bestAt {
			sb.WriteString("::")
			i += bestLen - 1
			continue
		}
		if i > 0 && i != bestAt+bestLen {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(g[i]), 16))
	}
	return sb.String()
}

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("field %q: %s", field, fmt.Sprintf(format, args...))
}

// observe normalises the value of an indicator and builds its pattern and SCO.
// It returns (nil, nil) for types that map to nothing (Hashtag).
func observe(typ string, values []string) (*observable, error) {
	first := ""
	if len(values) > 0 {
		first = strings.TrimSpace(clean(values[0]))
	}
	ob := &observable{}
	switch typ {
	case tcapi.TypeAddress:
		if first == "" {
			return nil, fieldErr("ip", "empty")
		}
		a, err := netip.ParseAddr(first)
		if err != nil || a.Zone() != "" {
			// not an address the ipv4-addr/ipv6-addr schema accepts: keep the pattern only
			t := "ipv4-addr"
			if strings.Contains(first, ":") {
				t = "ipv6-addr"
			}
			ob.invalid(t, "value", first)
			return ob, nil
		}
		a = a.Unmap()
		v := a.String() // RFC 5952 form for IPv6
		t := "ipv4-addr"
		if a.Is6() {
			t = "ipv6-addr"
		}
		ob.single(t, "value", v)
	case tcapi.TypeCIDR:
		p, err := netip.ParsePrefix(first)
		if err != nil || p.Addr().Zone() != "" {
			return nil, fieldErr("Block", "%q is not a CIDR block", first)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		v := p.String()
		t := "ipv4-addr"
		if p.Addr().Is6() {
			t = "ipv6-addr"
			if p.Addr().Is4In6() { // keep the hex form: the schema rejects "::ffff:1.2.3.4/90"
				v = hex6(p.Addr()) + "/" + strconv.Itoa(p.Bits())
			}
		}
		ob.single(t, "value", v)
	case tcapi.TypeEmailAddress:
		if first == "" {
			return nil, fieldErr("address", "empty")
		}
		ob.single("email-addr", "value", first)
		ob.key = strings.ToLower(first) // the indicator id ignores case; the value keeps it
	case tcapi.TypeHost:
		v := strings.ToLower(strings.TrimSuffix(first, "."))
		if v == "" {
			return nil, fieldErr("hostName", "empty")
		}
		if hostProblem(v) != "" {
			ob.invalid("domain-name", "value", v)
			return ob, nil
		}
		ob.single("domain-name", "value", v)
	case tcapi.TypeURL:
		if first == "" {
			return nil, fieldErr("text", "empty")
		}
		ob.single("url", "value", first)
	case tcapi.TypeASN:
		s := strings.ToUpper(first)
		s = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, "ASN"), "AS"))
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fieldErr("AS Number", "%q is not an AS number", first)
		}
		num := strconv.FormatUint(n, 10)
		ob.key, ob.scoType = num, "autonomous-system"
		canon := []byte(`{"number":` + num + `}`)
		o := newObj(4)
		o.str("type", "autonomous-system")
		o.str("spec_version", "2.1")
		ob.scoID = scoIDFromCanonical("autonomous-system", canon)
		o.str("id", ob.scoID)
		o.int("number", int64(n))
		ob.sco = o
		ob.join, ob.cmps = "AND", []comparison{{path: "autonomous-system:number", value: num, num: true}}
	case tcapi.TypeMutex:
		if first == "" {
			return nil, fieldErr("Mutex", "empty")
		}
		ob.single("mutex", "name", first)
	case tcapi.TypeUserAgent:
		if first == "" {
			return nil, fieldErr("User Agent String", "empty")
		}
		ob.key = first
		ob.join, ob.cmps = "AND", []comparison{{path: "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'", value: first}}
	case tcapi.TypeEmailSubject:
		if first == "" {
			return nil, fieldErr("Subject", "empty")
		}
		ob.key, ob.scoType = first, "email-message"
		canon := appendString([]byte(`{"subject":`), first)
		canon = append(canon, '}')
		o := newObj(5)
		o.str("type", "email-message")
		o.str("spec_version", "2.1")
		ob.scoID = scoIDFromCanonical("email-message", canon)
		o.str("id", ob.scoID)
		o.boolean("is_multipart", false)
		o.str("subject", first)
		ob.sco = o
		ob.join, ob.cmps = "AND", []comparison{{path: "email-message:subject", value: first}}
	case tcapi.TypeFile:
		return observeFile(values)
	case tcapi.TypeRegistryKey:
		return observeRegistry(values)
	case tcapi.TypeHashtag:
		return nil, nil
	default:
		return nil, fmt.Errorf("indicator type %q has no STIX mapping", typ)
	}
	return ob, nil
}

var fileHashes = []struct {
	field, stix, path string
	hexLen            int
}{
	{"md5", "MD5", "file:hashes.MD5", 32},
	{"sha1", "SHA-1", "file:hashes.'SHA-1'", 40},
	{"sha256", "SHA-256", "file:hashes.'SHA-256'", 64},
}

func observeFile(values []string) (*observable, error) {
	var hs [3]string
	var cs []comparison
	key := make([]string, 0, 3)
	for i, h := range fileHashes {
		v := ""
		if i < len(values) {
			v = strings.ToLower(strings.TrimSpace(clean(values[i])))
		}
		key = append(key, v)
		if v == "" {
			continue
		}
		if len(v) != h.hexLen || strings.Trim(v, "0123456789abcdef") != "" {
			return nil, fieldErr(h.field, "%q is not a %s hash", v, h.stix)
		}
		hs[i] = v
		cs = append(cs, comparison{path: h.path, value: v})
	}
	if len(cs) == 0 {
		return nil, fieldErr("md5", "a File indicator needs at least one of md5, sha1, sha256")
	}
	hashes := newObj(3)
	var canon []byte
	for i, h := range fileHashes {
		if hs[i] == "" {
			continue
		}
		hashes.str(h.stix, hs[i])
		if canon == nil {
			canon = appendString([]byte(`{"hashes":{"`+h.stix+`":`), hs[i])
			canon = append(canon, "}}"...)
		}
	}
	o := newObj(5)
	o.str("type", "file")
	o.str("spec_version", "2.1")
	id := scoIDFromCanonical("file", canon)
	o.str("id", id)
	o.raw("hashes", hashes.bytes())
	return &observable{key: strings.Join(key, " : "), scoType: "file", scoID: id, sco: o, join: "OR", cmps: cs}, nil
}

func observeRegistry(values []string) (*observable, error) {
	var v [3]string
	for i := range min(len(values), 3) {
		v[i] = strings.TrimSpace(clean(values[i]))
	}
	key := expandHive(v[0])
	if key == "" {
		return nil, fieldErr("Key Name", "empty")
	}
	if u := strings.ToUpper(key); strings.HasPrefix(u, "HKLM") || strings.HasPrefix(u, "HKCC") || strings.HasPrefix(u, "HKCR") ||
		strings.HasPrefix(u, "HKCU") || strings.HasPrefix(u, "HKU") {
		// an abbreviation glued to more text ("HKLM0"): not a hive STIX accepts
		return nil, fieldErr("Key Name", "%q does not start with a registry hive", key)
	}
	name, rawType := v[1], strings.ToUpper(v[2])
	dataType := registryTypes[rawType]
	ob := &observable{key: key + " : " + name + " : " + rawType, scoType: "windows-registry-key"}
	if rawType != "" && dataType == "" {
		ob.extraProp = [2]string{"x_threatconnect_registry_value_type", v[2]}
	}
	cs := []comparison{{path: "windows-registry-key:key", value: key}}
	var values1 []byte
	if name != "" || dataType != "" {
		val := newObj(2)
		val.str("name", name)
		val.str("data_type", dataType)
		values1 = append(append([]byte{'['}, val.bytes()...), ']')
		if name != "" {
			cs = append(cs, comparison{path: "windows-registry-key:values[*].name", value: name})
		}
		if dataType != "" {
			cs = append(cs, comparison{path: "windows-registry-key:values[*].data_type", value: dataType})
		}
	}
	canon := newObj(2)
	canon.str("key", key)
	canon.raw("values", values1)
	o := newObj(5)
	o.str("type", "windows-registry-key")
	o.str("spec_version", "2.1")
	ob.scoID = scoIDFromCanonical("windows-registry-key", canon.bytes())
	o.str("id", ob.scoID)
	o.str("key", key)
	o.raw("values", values1)
	ob.sco = o
	ob.join, ob.cmps = "AND", cs
	return ob, nil
}

// indicatorKey is the ThreatConnect natural key of an indicator: owner
// name, type and normalised value. Indicator ids derive from it so that a
// deletion, which ThreatConnect reports without the indicator id
// (threatconnect-v3.md §6.5), still finds the STIX id to revoke.
func (m *Mapper) indicatorID(owner, typ, key string) string {
	return m.ids.make("indicator", "indicator|tc-indicator|", owner, "|", typ, "|", key)
}

// IndicatorID returns the STIX id of an indicator from ThreatConnect's
// natural key (owner name, type, summary), the same id Indicator assigns.
func (m *Mapper) IndicatorID(owner, typ, summary string) (string, error) {
	ids, err := m.DeletedIndicatorIDs(tcapi.DeletedIndicator{OwnerName: owner, Type: typ, Summary: summary})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// DeletedIndicatorIDs returns the ids of the versioned objects Indicator made
// for a now deleted indicator: the indicator and, for types with an SCO, its
// based-on relationship. Relationships to associations are not derivable
// from a deletion record; the sync finds them by their source_ref.
func (m *Mapper) DeletedIndicatorIDs(d tcapi.DeletedIndicator) ([]string, error) {
	owner := strings.TrimSpace(clean(d.OwnerName))
	if owner == "" {
		return nil, fmt.Errorf("deleted %s indicator %q: field ownerName is empty", d.Type, d.Summary)
	}
	probe := tcapi.Indicator{Type: d.Type, Summary: d.Summary}
	ob, err := observe(d.Type, probe.Values())
	if err != nil {
		return nil, fmt.Errorf("deleted %s indicator %q: %w", d.Type, d.Summary, err)
	}
	if ob == nil {
		return nil, fmt.Errorf("deleted %s indicator %q: the type maps to no STIX object", d.Type, d.Summary)
	}
	ob.discard()
	id := m.indicatorID(owner, d.Type, ob.key)
	out := []string{id}
	if ob.scoID != "" {
		out = append(out, m.ids.relationship(id, "based-on", ob.scoID))
	}
	return out, nil
}

// indicatorTypes derives indicator_types (stix-mapping.md §4.6).
func (m *Mapper) indicatorTypes(rating *float64) string {
	if m.reputation != "" {
		return m.reputation
	}
	switch {
	case rating == nil:
		return "unknown"
	case *rating >= 2:
		return "malicious-activity"
	case *rating >= 1:
		return "anomalous-activity"
	}
	return "unknown"
}

// itemBase is what every TC item contributes to its objects.
type itemBase struct {
	tcID       int64
	tcType     string
	owner      string
	ownerRef   string
	created    time.Time
	modified   time.Time
	marks      marks
	tags       []string
	confidence int
}

func (b *itemBase) stamp(o Object) Object {
	o.Owner, o.Tags, o.Confidence, o.TCID, o.TCType = b.owner, b.tags, b.confidence, b.tcID, b.tcType
	return o
}

// times returns created and modified from dateAdded and lastModified,
// falling back on each other, modified never before created.
func times(what string, id int64, added, modified time.Time) (time.Time, time.Time, error) {
	if added.IsZero() {
		added = modified
	}
	if added.IsZero() {
		return time.Time{}, time.Time{}, fmt.Errorf("%s %d: fields dateAdded and lastModified are both missing", what, id)
	}
	c := ms(added)
	mo := ms(modified)
	if mo.Before(c) {
		mo = c
	}
	return c, mo, nil
}

// Indicator maps one ThreatConnect indicator (stix-mapping.md §4.1, §4.2):
// the indicator SDO, its SCO and based-on relationship when the type has an
// SCO, statement markings of organisation-defined labels, and relationships
// for the associations embedded in it (§4.4). Hashtags map to nothing (nil,
// nil). Unmappable input is an error naming the field; it never panics.
func (m *Mapper) Indicator(ind tcapi.Indicator) ([]Object, error) {
	ob, err := observe(ind.Type, ind.Values())
	if err != nil {
		return nil, fmt.Errorf("indicator %d: %w", ind.ID, err)
	}
	if ob == nil {
		return nil, nil
	}
	if ind.Type == tcapi.TypeCIDR && m.opts.CIDRSubset {
		ob.join, ob.cmps = "AND", []comparison{{path: ob.scoType + ":value", value: ob.key, op: "ISSUBSET"}}
	}
	owner := strings.TrimSpace(clean(ind.OwnerName))
	if owner == "" {
		return nil, fmt.Errorf("indicator %d: field ownerName is empty", ind.ID)
	}
	created, modified, err := times("indicator", ind.ID, ind.DateAdded, ind.LastModified)
	if err != nil {
		return nil, err
	}
	b := &itemBase{tcID: ind.ID, tcType: ind.Type, owner: owner, ownerRef: m.ownerRef(ind.OwnerID, owner),
		created: created, modified: modified, marks: m.resolveLabels(ind.SecurityLabels.Data), tags: tagNames(ind.Tags.Data)}
	if c, ok := clampConfidence(ind.Confidence); ok {
		b.confidence = c
	} else if m.opts.ConfidenceFromThreatAssess && ind.ThreatAssessConfidence != nil {
		if f := *ind.ThreatAssessConfidence; f > 0 && f < 1e6 {
			c := int(math.Round(f))
			b.confidence, _ = clampConfidence(&c)
		}
	}
	id := m.indicatorID(owner, ind.Type, ob.key)
	at := readAttributes(ind.Attributes.Data, b.marks.level)

	out := make([]Object, 0, 4+len(b.marks.statements))
	name := strings.TrimSpace(clean(ind.Summary))
	if name == "" {
		name = ob.key
	}
	desc := strings.TrimSpace(clean(ind.Description))
	if desc == "" {
		desc = at.description
	}
	validFrom := created
	if !ind.FirstSeen.IsZero() {
		validFrom = ms(ind.FirstSeen)
	}
	var validUntil time.Time
	switch {
	case !ind.Active:
		validUntil = modified
	case !ind.ExternalDateExpires.IsZero():
		validUntil = ms(ind.ExternalDateExpires)
	}
	if !validUntil.IsZero() && !validUntil.After(validFrom) {
		validUntil = validFrom.Add(time.Millisecond)
	}
	refs := append([][]byte{tcRef(ind.ID, m.webLink(ind.WebLink, "indicators", ind.ID))}, at.sources...)
	attributes := at.restWithTechniques()
	if hasTactic(ind.AssociatedGroups.Data) {
		// a Tactic-derived kill chain: its technique ids become mitre-attack references
		refs = append(refs, attackRefs(append(tagTechniques(ind.Tags.Data), at.techniques...))...)
		attributes = at.rest
	}
	phases := append([][]byte(nil), at.phases...)
	for _, g := range ind.AssociatedGroups.Data {
		if g.Type == tcapi.GroupTactic {
			if p := vocab(clean(g.Name)); p != "" {
				phases = append(phases, killChain("mitre-attack", p))
			}
		}
	}
	sortBytes(phases)

	// Members are added in key order so that finish finds them sorted
	// (it sorts anyway if they are not).
	o := newObj(32)
	if b.confidence > 0 {
		o.int("confidence", int64(b.confidence))
	}
	o.time("created", created)
	o.str("created_by_ref", b.ownerRef)
	o.str("description", desc)
	o.list("external_references", refs)
	o.str("id", id)
	o.strs("indicator_types", []string{m.indicatorTypes(ind.Rating)})
	o.list("kill_chain_phases", compactBytes(phases))
	o.strs("labels", m.labels(b.tags, ind.Rating, m.contextLabels(ind.AssociatedGroups.Data)...))
	o.time("modified", modified)
	o.str("name", name)
	o.strs("object_marking_refs", b.marks.refs)
	o.str("pattern", ob.pattern())
	o.str("pattern_type", "stix")
	o.str("pattern_version", "2.1")
	o.str("spec_version", "2.1")
	o.str("type", "indicator")
	o.time("valid_from", validFrom)
	o.time("valid_until", validUntil)
	if m.opts.OpenCTI && ind.ThreatAssessScore != nil {
		// OpenCTI's 0–100 score from the 0–1000 ThreatAssess score (stix-mapping.md §4.6)
		o.int("x_opencti_score", int64(min(max((*ind.ThreatAssessScore+5)/10, 0), 100)))
	}
	if !ind.Active {
		o.boolean("x_threatconnect_active", false)
	}
	o.list("x_threatconnect_attributes", attributes)
	if fp := falsePositives(ind); fp > 0 {
		o.int("x_threatconnect_false_positives", int64(fp))
	}
	o.str("x_threatconnect_id", strconv.FormatInt(ind.ID, 10))
	o.str("x_threatconnect_owner", owner)
	if ind.OwnerID != 0 {
		o.str("x_threatconnect_owner_id", strconv.FormatInt(ind.OwnerID, 10))
	}
	if ind.Rating != nil {
		o.num("x_threatconnect_rating", *ind.Rating)
	}
	if ob.extraProp[0] != "" {
		o.str(ob.extraProp[0], ob.extraProp[1])
	}
	if m.reliability != "" {
		o.str("x_threatconnect_source_reliability", m.reliability)
	}
	if ind.ThreatAssessConfidence != nil {
		o.num("x_threatconnect_threat_assess_confidence", *ind.ThreatAssessConfidence)
	}
	if ind.ThreatAssessRating != nil {
		o.num("x_threatconnect_threat_assess_rating", *ind.ThreatAssessRating)
	}
	if ind.ThreatAssessScore != nil {
		o.int("x_threatconnect_threat_assess_score", int64(*ind.ThreatAssessScore))
	}
	o.str("x_threatconnect_type", clean(ind.Type))
	o.str("x_threatconnect_xid", strings.TrimSpace(clean(ind.XID)))
	js, h := o.finish()
	out = append(out, b.stamp(Object{ID: id, Type: "indicator", Created: created, Modified: modified, TLP: b.marks.level, Hash: h, JSON: js,
		Omitted: ob.omitted, ValidUntil: validUntil}))

	self := end{id: id, kind: kindIndicator, tcType: ind.Type, created: created, ownerRef: b.ownerRef, level: b.marks.level, scoID: ob.scoID}
	if ob.sco != nil {
		ob.sco.strs("object_marking_refs", scoMarkings(m, b.marks.level))
		sjs := ob.sco.bytes()
		out = append(out, b.stamp(Object{ID: ob.scoID, Type: ob.scoType, TLP: b.marks.level, Hash: sha256Of(sjs), JSON: sjs}))
		out = append(out, b.stamp(m.relationship(self, end{id: ob.scoID, created: created, ownerRef: b.ownerRef, level: b.marks.level}, "based-on", "")))
	}
	for _, st := range b.marks.statements {
		out = append(out, b.stamp(st))
	}
	if ind.Type == tcapi.TypeHost && ob.scoID != "" {
		for _, r := range m.resolutions(self, ind.DNSResolution.Data, scoMarkings(m, b.marks.level)) {
			out = append(out, b.stamp(r))
		}
	}
	rels, err := m.indicatorAssociations(self, ind, owner)
	if err != nil {
		return nil, fmt.Errorf("indicator %d: %w", ind.ID, err)
	}
	for _, r := range rels {
		out = append(out, b.stamp(r))
	}
	return dedupe(out), nil
}

// scoMarkings are an observable's marking refs: the TLP marking of its item
// only. An observable is shared by every item that names the value, so it
// must not carry one item's statement markings (organisation labels): its
// content is a function of the value and its level alone, and the sync
// moves it to the least restrictive live item's level (DESIGN.md §10).
func scoMarkings(m *Mapper, l tlp.Level) []string {
	_, refs := m.levelRef(l)
	return refs
}

// tcProps adds the x_threatconnect_* identification properties every SDO
// mapped from a TC item carries (stix-mapping.md §4.1).
func (m *Mapper) tcProps(o *obj, id int64, typ, owner string, ownerID int64, xid string) {
	o.str("x_threatconnect_id", strconv.FormatInt(id, 10))
	o.str("x_threatconnect_type", clean(typ))
	o.str("x_threatconnect_owner", owner)
	if ownerID != 0 {
		o.str("x_threatconnect_owner_id", strconv.FormatInt(ownerID, 10))
	}
	o.str("x_threatconnect_xid", strings.TrimSpace(clean(xid)))
}

func compactBytes(v [][]byte) [][]byte { return sliceCompact(v) }

func sliceCompact(v [][]byte) [][]byte {
	if len(v) < 2 {
		return v
	}
	out := v[:1]
	for _, x := range v[1:] {
		if string(x) != string(out[len(out)-1]) {
			out = append(out, x)
		}
	}
	return out
}

// dedupe drops repeated objects (same id and bytes), keeping the first, so
// an association listed twice yields one relationship.
func dedupe(objs []Object) []Object {
	seen := make(map[string]bool, len(objs))
	out := objs[:0]
	for _, o := range objs {
		if seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		out = append(out, o)
	}
	return out
}

// falsePositives is the false-positive count (fields=falsePositives, or the
// v2-era falsePositiveCount), 0 when absent.
func falsePositives(ind tcapi.Indicator) int {
	switch {
	case ind.FalsePositives != nil:
		return *ind.FalsePositives
	case ind.FalsePositiveCount != nil:
		return *ind.FalsePositiveCount
	}
	return 0
}

// contextLabels names an indicator's associated groups as labels,
// "<stix type>:<name>" (threat-actor:APT28, malware:Emotet), when
// Options.ContextLabels is on: context for consumers that keep only
// indicators. Groups that map to no SDO (Tactic, Task) or to an indicator
// (Signature) give no label.
func (m *Mapper) contextLabels(groups []tcapi.Group) []string {
	if !m.opts.ContextLabels {
		return nil
	}
	var out []string
	for _, g := range groups {
		t := m.groupSTIXType(g.Type)
		name := strings.TrimSpace(clean(g.Name))
		if t == "" || t == "indicator" || name == "" {
			continue
		}
		out = append(out, t+":"+name)
	}
	return out
}

// resolutions maps a Host's DNS resolutions (fields=dnsResolution) to
// domain-name resolves-to ipv4-addr/ipv6-addr relationships
// (stix-mapping.md §4.2, §4.4) plus the address SCOs they point to, marked
// like the host so the relationship is as strict as both ends. Values that
// are not valid addresses are skipped.
func (m *Mapper) resolutions(host end, res []tcapi.DNSResolution, markingRefs []string) []Object {
	var out []Object
	src := host
	src.id = host.scoID
	for _, r := range res {
		for _, ip := range r.IPs() {
			ob, err := observe(tcapi.TypeAddress, []string{ip})
			if err != nil || ob == nil || ob.sco == nil {
				continue
			}
			ob.sco.strs("object_marking_refs", markingRefs)
			js := ob.sco.bytes()
			out = append(out, Object{ID: ob.scoID, Type: ob.scoType, TLP: host.level, Hash: sha256Of(js), JSON: js})
			tgt := host
			tgt.id = ob.scoID
			out = append(out, m.relationship(src, tgt, "resolves-to", ""))
		}
	}
	return out
}
