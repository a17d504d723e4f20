package stixmap

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// marks is what an item's security labels resolve to (stix-mapping.md §4.5).
type marks struct {
	level      tlp.Level // the level of the emitted TLP marking (None = no TLP)
	refs       []string  // object_marking_refs, sorted
	statements []Object  // statement markings of organisation-defined labels
}

// resolveLabels keeps the most restrictive TLP label, falls back to
// DefaultTLP, and turns other labels into statement markings.
func (m *Mapper) resolveLabels(labels []tcapi.SecurityLabel) marks {
	var mk marks
	level := tlp.None
	for _, l := range labels {
		name := strings.TrimSpace(clean(l.Name))
		if name == "" {
			continue
		}
		if lv, ok := tlp.FromLabel(name); ok {
			level = tlp.Max(level, lv)
			continue
		}
		st := m.statement(name, strings.TrimSpace(clean(l.Description)))
		if !slices.ContainsFunc(mk.statements, func(o Object) bool { return o.ID == st.ID }) {
			mk.statements = append(mk.statements, st)
			mk.refs = append(mk.refs, st.ID)
		}
	}
	if level == tlp.None {
		level = m.opts.DefaultTLP
	}
	if level != tlp.None {
		t := m.table[level]
		mk.level = t.level
		mk.refs = append(mk.refs, t.id)
	}
	slices.Sort(mk.refs)
	return mk
}

// labelLevel is the TLP level of a label list without defaults (for attributes).
func labelLevel(labels []tcapi.SecurityLabel) tlp.Level {
	level := tlp.None
	for _, l := range labels {
		if lv, ok := tlp.FromLabel(l.Name); ok {
			level = tlp.Max(level, lv)
		}
	}
	return level
}

// levelOnly is the TLP marking ref of a level (for relationships).
func (m *Mapper) levelRef(l tlp.Level) (tlp.Level, []string) {
	if l == tlp.None {
		return tlp.None, nil
	}
	t := m.table[l]
	return t.level, []string{t.id}
}

// tagNames returns the cleaned, de-duplicated, sorted tag names.
func tagNames(tags []tcapi.Tag) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if n := strings.TrimSpace(clean(t.Name)); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var ratingLabels = [...]string{"Threat Rating: Unknown", "Threat Rating: Suspicious", "Threat Rating: Low",
	"Threat Rating: Moderate", "Threat Rating: High", "Threat Rating: Very High"}

// ratingLabel is the "Threat Rating: …" label of a 0–5 rating (stix-mapping.md §4.6).
func ratingLabel(r float64) string {
	i := int(math.Round(r))
	i = max(0, min(i, len(ratingLabels)-1))
	return ratingLabels[i]
}

// labels merges tags, the rating label and the feed tags, sorted and unique.
func (m *Mapper) labels(tags []string, rating *float64, extra ...string) []string {
	out := make([]string, 0, len(tags)+len(m.feedTags)+2)
	out = append(out, tags...)
	if rating != nil && !math.IsNaN(*rating) {
		out = append(out, ratingLabel(*rating))
	}
	out = append(out, m.feedTags...)
	out = append(out, extra...)
	slices.Sort(out)
	return slices.Compact(out)
}

// webLink returns link or builds the ThreatConnect details link of kind
// ("indicators" or "groups") and id.
func (m *Mapper) webLink(link, kind string, id int64) string {
	if link = strings.TrimSpace(clean(link)); link != "" {
		return link
	}
	if id == 0 {
		return ""
	}
	return m.webBase + "/#/details/" + kind + "/" + strconv.FormatInt(id, 10) + "/overview"
}

// tcRef is the threatconnect external reference of an item.
func tcRef(id int64, link string) []byte {
	r := newObj(3)
	r.str("external_id", strconv.FormatInt(id, 10))
	r.str("source_name", "threatconnect")
	r.str("url", link)
	return r.bytes()
}

// attrs is what an item's attributes contribute (stix-mapping.md §4.8).
type attrs struct {
	description string
	sources     [][]byte // external references
	aliases     []string
	goals       []string
	objective   string
	resource    string
	primary     string
	secondary   []string
	phases      [][]byte // kill_chain_phases
	toolVersion string
	cves        []string
	firstSeen   time.Time
	lastSeen    time.Time
	rest        [][]byte // x_threatconnect_attributes entries
	// techniques are ATT&CK technique ids from attributes such as
	// "MITRE ATT&CK Technique ID"; techniqueAttrs the same attributes as
	// x_threatconnect_attributes entries, for types without a STIX home for them.
	techniques     []string
	techniqueAttrs [][]byte
}

// restWithTechniques is rest plus the ATT&CK attributes: what an object that
// does not turn technique ids into external references keeps.
func (a attrs) restWithTechniques() [][]byte {
	if len(a.techniqueAttrs) == 0 {
		return a.rest
	}
	out := append(append([][]byte(nil), a.rest...), a.techniqueAttrs...)
	sortBytes(out)
	return slices.CompactFunc(out, bytesEqual)
}

// techniqueIDs returns the ATT&CK technique ids (T1078, T1059.001) in s.
func techniqueIDs(s string) []string {
	var out []string
	for _, m := range techniqueInText.FindAllString(strings.ToUpper(s), -1) {
		out = append(out, m)
	}
	return out
}

// tagTechniques returns the technique ids of ATT&CK tags (techniqueId, §8.1).
func tagTechniques(tags []tcapi.Tag) []string {
	var out []string
	for _, t := range tags {
		if tid := strings.ToUpper(strings.TrimSpace(clean(t.TechniqueID))); techniqueRe.MatchString(tid) {
			out = append(out, tid)
		}
	}
	return out
}

// hasTactic tells whether an ATT&CK Tactic is among the associated groups,
// which makes mitre-attack kill chain phases.
func hasTactic(groups []tcapi.Group) bool {
	for _, g := range groups {
		if g.Type == tcapi.GroupTactic && vocab(clean(g.Name)) != "" {
			return true
		}
	}
	return false
}

// isTechniqueAttribute tells attribute types that carry ATT&CK technique ids.
func isTechniqueAttribute(typ string) bool {
	t := strings.ToLower(typ)
	return strings.Contains(t, "att&ck") || strings.Contains(t, "mitre") || strings.Contains(t, "technique")
}

// attackRefs are the mitre-attack external references of technique ids
// (stix-mapping.md §3.10: {"source_name":"mitre-attack","external_id":"T1059","url":…}).
func attackRefs(ids []string) [][]byte {
	ids = sortUnique(ids)
	out := make([][]byte, 0, len(ids))
	for _, tid := range ids {
		r := newObj(3)
		r.str("source_name", "mitre-attack")
		r.str("external_id", tid)
		r.str("url", "https://attack.mitre.org/techniques/"+strings.ReplaceAll(tid, ".", "/")+"/")
		out = append(out, r.bytes())
	}
	return out
}

// cveRe and techniqueRe match what the external-reference schema accepts
// for source_name "cve" and what ATT&CK uses for technique ids.
var (
	cveRe       = regexp.MustCompile(`^CVE-\d{4}-(0\d{3}|[1-9]\d{3,})$`)
	techniqueRe = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	// techniqueInText finds technique ids inside names and attribute values
	// ("T1078 Valid Accounts", "Valid Accounts (T1078.004)").
	techniqueInText = regexp.MustCompile(`\bT\d{4}(\.\d{3})?\b`)
)

// vocab turns free text into an open-vocabulary value: lower case, words joined by hyphens.
func vocab(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), "-")
}

// splitList splits an attribute value holding a list ("a, b; c").
func splitList(s string) []string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func killChain(name, phase string) []byte {
	k := newObj(2)
	k.str("kill_chain_name", name)
	k.str("phase_name", phase)
	return k.bytes()
}

// readAttributes sorts attributes into STIX homes; attributes whose own TLP
// is stricter than the item's are dropped (stix-mapping.md §4.5).
func readAttributes(list []tcapi.Attribute, itemLevel tlp.Level) attrs {
	var a attrs
	var descDefault, descNewest string
	var descNewestAt time.Time
	for _, at := range list {
		if lv := labelLevel(at.SecurityLabels.Data); lv > itemLevel {
			continue
		}
		typ := strings.TrimSpace(clean(at.Type))
		val := strings.TrimSpace(clean(at.Value))
		if typ == "" || val == "" {
			continue
		}
		if isTechniqueAttribute(typ) {
			if ids := techniqueIDs(val); len(ids) > 0 {
				a.techniques = append(a.techniques, ids...)
				r := newObj(2)
				r.str("type", typ)
				r.str("value", val)
				a.techniqueAttrs = append(a.techniqueAttrs, r.bytes())
				continue
			}
		}
		switch strings.ToLower(typ) {
		case "description":
			if at.Default && descDefault == "" {
				descDefault = val
			}
			when := at.LastModified
			if when.IsZero() {
				when = at.DateAdded
			}
			if descNewest == "" || when.After(descNewestAt) || when.Equal(descNewestAt) && val < descNewest {
				descNewest, descNewestAt = val, when
			}
		case "source":
			r := newObj(2)
			r.str("source_name", "threatconnect-source")
			if isWebURL(val) {
				r.str("url", val)
			} else {
				r.str("description", val)
			}
			a.sources = append(a.sources, r.bytes())
		case "aliases", "alias":
			a.aliases = append(a.aliases, splitList(val)...)
		case "goals", "goal":
			a.goals = append(a.goals, splitList(val)...)
		case "campaign objective", "objective":
			a.objective = val
		case "resource level":
			a.resource = vocab(val)
		case "adversary motivation type", "primary motivation":
			a.primary = vocab(val)
		case "secondary motivation":
			a.secondary = append(a.secondary, vocab(val))
		case "phase of intrusion":
			a.phases = append(a.phases, killChain("lockheed-martin-cyber-kill-chain", vocab(val)))
		case "tool version":
			a.toolVersion = val
		case "cve", "cve id":
			if v := strings.ToUpper(val); cveRe.MatchString(v) {
				a.cves = append(a.cves, v)
			}
		case "first seen":
			if t, err := tcapi.ParseTime(val); err == nil {
				a.firstSeen = t
			}

		case "last seen":
			if t, err := tcapi.ParseTime(val); err == nil {
				a.lastSeen = t
			}
		default:
			r := newObj(2)
			r.str("type", typ)
			r.str("value", val)
			a.rest = append(a.rest, r.bytes())
		}
	}
	a.description = descDefault
	if a.description == "" {
		a.description = descNewest
	}
	sortBytes(a.sources)
	sortBytes(a.phases)
	sortBytes(a.rest)
	a.sources = slices.CompactFunc(a.sources, bytesEqual)
	a.phases = slices.CompactFunc(a.phases, bytesEqual)
	a.rest = slices.CompactFunc(a.rest, bytesEqual)
	a.aliases = sortUnique(a.aliases)
	a.goals = sortUnique(a.goals)
	a.secondary = sortUnique(a.secondary)
	a.cves = sortUnique(a.cves)
	return a
}

func sortBytes(v [][]byte) {
	slices.SortFunc(v, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func sortUnique(v []string) []string {
	slices.Sort(v)
	return slices.Compact(v)
}

// isWebURL tells an http(s) URL with a host and no whitespace from free text.
func isWebURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "http://")
	}
	return ok && rest != "" && rest[0] != '/' && !strings.ContainsAny(s, " \t\r\n\x00")
}

// clampConfidence maps TC confidence to STIX: absent or 0 means unspecified
// (stix-mapping.md §4.6), the rest is clamped to 0–100.
func clampConfidence(c *int) (int, bool) {
	if c == nil || *c <= 0 {
		return 0, false
	}
	return min(*c, 100), true
}

// ms truncates t to milliseconds, the precision we emit.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
