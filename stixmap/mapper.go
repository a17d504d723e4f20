package stixmap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// Options shape the mapping. The zero value is usable except for BaseURL,
// which New requires.
type Options struct {
	// BaseURL is the ThreatConnect base URL. It seeds the UUIDv5 namespace of
	// every id that is not an SCO id (stix-mapping.md §3.2.4) and the web
	// links built when ThreatConnect sends none.
	BaseURL string
	// TLPMode is ModeCompat (the default when empty), ModeTLP2 or ModeV1Only.
	TLPMode string
	// DefaultTLP marks ThreatConnect data without a TLP label; tlp.None
	// leaves it unmarked.
	DefaultTLP tlp.Level
	// IndicatorReputation, when set, replaces the indicator_types derived
	// from the rating: "Bad", "Suspicious", "Good", "Unknown"/"None" (the
	// XSOAR feed reputation names) or a STIX indicator-type-ov value such as
	// "malicious-activity".
	IndicatorReputation string
	// SourceReliability is "" or an Admiralty source reliability A–F (a
	// letter, or XSOAR's "B - Usually reliable" form). It is written as
	// x_threatconnect_source_reliability on owner identities and indicators.
	SourceReliability string
	// FeedTags are added to the labels of every SDO mapped from ThreatConnect.
	FeedTags []string
	// IdentityClass overrides the identity_class of owner identities by TC
	// owner type ("Organization", "Community", "Source").
	IdentityClass map[string]string
	// ConfidenceFromThreatAssess fills confidence from the rounded
	// threatAssessConfidence when TC confidence is absent or 0 (stix-mapping.md
	// §4.6, default off).
	ConfidenceFromThreatAssess bool
	// CIDRSubset makes CIDR patterns use ISSUBSET instead of "=" (stix-mapping.md
	// §4.2: semantically stronger, less widely parsed; default off).
	CIDRSubset bool
	// ThreatAs is the STIX type of TC Threat groups: "intrusion-set" (the
	// default when empty) or "threat-actor" (stix-mapping.md §4.3).
	ThreatAs string
	// ContextLabels labels each indicator with its associated groups,
	// "<stix type>:<name>" (config stix.context_labels).
	ContextLabels bool
	// OpenCTI adds x_opencti_score (0–100) from the ThreatAssess score
	// (config stix.opencti; stix-mapping.md §4.6).
	OpenCTI bool
}

// Object is one mapped STIX object: its canonical JSON and the fields
// storage indexes and the sync routes on.
type Object struct {
	ID, Type string
	// Modified is zero for SCOs and marking definitions, which STIX does
	// not version; Created is zero for SCOs.
	Created, Modified time.Time
	// TLP is the most restrictive TLP marking on the object (None if unmarked).
	TLP tlp.Level
	// ValidUntil is an indicator's valid_until, zero otherwise.
	ValidUntil time.Time
	// Hash is the first 16 bytes of the SHA-256 of JSON with the "modified"
	// member removed, so two versions that differ only in modified compare
	// equal. 128 bits keep collisions out of reach while costing the store
	// half the bytes of a whole SHA-256 per version.
	Hash [16]byte
	// JSON is the canonical (RFC 8785) JSON of the object.
	JSON []byte

	// Owner, Tags, Confidence, TCID and TCType describe the ThreatConnect
	// item the object was mapped from, for filter-collection membership.
	// Every object a call to Indicator or Group returns carries the values of
	// that item.
	Owner      string
	Tags       []string
	Confidence int
	TCID       int64
	TCType     string

	// RefOwners is, for a relationship, the identities of the owners whose
	// objects it needs to be served: its creator and the owners of its
	// SDO ends (observables belong to no owner). An owner's collection
	// holds no other owner's identity or objects, so a relationship that
	// names another owner can never be served there.
	RefOwners []string

	// Omitted is set on an indicator whose observable was left out because
	// the ThreatConnect value is not valid for the observable type (an xn--
	// label that is not punycode, an address the STIX schema rejects):
	// the skip reason the sync counts. The indicator and its pattern stay.
	Omitted string
}

// Mapper maps ThreatConnect objects to STIX 2.1. It holds only settings and
// is safe for concurrent use.
type Mapper struct {
	opts        Options
	ids         ids
	table       tlpTable
	markings    []Object
	bridge      Object
	bridgeID    string
	reputation  string // fixed indicator_types value, "" = derive
	reliability string // formatted source reliability, "" = none
	feedTags    []string
	threatAs    string
	webBase     string
	ownerIDs    sync.Map // int64 TC owner id → identity id, a cache of ids.owner
	groupIDs    sync.Map // groupKey → STIX id, a cache of ids.group
}

type groupKey struct {
	typ string
	id  int64
}

// groupID is ids.group through a cache: associations name the same groups
// over and over.
func (m *Mapper) groupID(typ string, id int64) string {
	k := groupKey{typ, id}
	if v, ok := m.groupIDs.Load(k); ok {
		return v.(string)
	}
	ref := m.ids.group(typ, id)
	m.groupIDs.Store(k, ref)
	return ref
}

// fixedTime is the created/modified time of identities, which ThreatConnect
// gives no date for. A constant keeps them byte-identical on every run.
var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

var reputations = map[string]string{
	"bad": "malicious-activity", "suspicious": "anomalous-activity", "good": "benign",
	"unknown": "unknown", "none": "unknown",
	"malicious-activity": "malicious-activity", "anomalous-activity": "anomalous-activity",
	"anonymization": "anonymization", "benign": "benign", "compromised": "compromised",
	"attribution": "attribution",
}

var reliabilities = map[byte]string{
	'A': "A - Completely reliable", 'B': "B - Usually reliable", 'C': "C - Fairly reliable",
	'D': "D - Not usually reliable", 'E': "E - Unreliable", 'F': "F - Reliability cannot be judged",
}

// New checks opts and returns a Mapper.
func New(opts Options) (*Mapper, error) {
	if strings.TrimSpace(opts.BaseURL) == "" {
		return nil, errors.New("stixmap: base URL is required (it seeds the id namespace)")
	}
	t, err := tableFor(opts.TLPMode)
	if err != nil {
		return nil, fmt.Errorf("stixmap: %w", err)
	}
	if opts.DefaultTLP < tlp.None || opts.DefaultTLP > tlp.Red {
		return nil, fmt.Errorf("stixmap: default TLP %d is not a TLP level", opts.DefaultTLP)
	}
	m := &Mapper{opts: opts, ids: newIDs(opts.BaseURL), table: t}
	if r := strings.TrimSpace(opts.IndicatorReputation); r != "" {
		v, ok := reputations[strings.ToLower(r)]
		if !ok {
			return nil, fmt.Errorf("stixmap: unknown indicator reputation %q (want Bad, Suspicious, Good, Unknown or a STIX indicator type)", r)
		}
		m.reputation = v
	}
	if r := strings.TrimSpace(opts.SourceReliability); r != "" {
		v, ok := reliabilities[strings.ToUpper(r)[0]]
		if !ok || (len(r) > 1 && !strings.HasPrefix(r[1:], " ")) {
			return nil, fmt.Errorf("stixmap: source reliability %q is not A–F", r)
		}
		m.reliability = v
	}
	switch opts.ThreatAs {
	case "", "intrusion-set":
		m.threatAs = "intrusion-set"
	case "threat-actor":
		m.threatAs = "threat-actor"
	default:
		return nil, fmt.Errorf("stixmap: threat groups map to intrusion-set or threat-actor, not %q", opts.ThreatAs)
	}
	for _, v := range opts.IdentityClass {
		switch v {
		case "individual", "group", "system", "organization", "class", "unknown":
		default:
			return nil, fmt.Errorf("stixmap: identity class %q is not in identity-class-ov", v)
		}
	}
	for _, tag := range opts.FeedTags {
		if tag = strings.TrimSpace(clean(tag)); tag != "" {
			m.feedTags = append(m.feedTags, tag)
		}
	}
	m.webBase = strings.TrimSuffix(strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/"), "/api")
	m.markings = markingObjects(t)
	m.bridgeID = m.ids.make("identity", "identity|bridge")
	m.bridge = m.buildBridge()
	return m, nil
}

// Markings returns the marking definitions of the configured TLP mode (and
// the TLP 2.0 extension-definition when the mode uses TLP 2.0 markings). A
// collection serves them once; statement markings of organisation-defined
// labels come with the objects that use them.
func (m *Mapper) Markings() []Object { return append([]Object(nil), m.markings...) }

// Bridge returns the bridge's own identity, the created_by_ref of owner identities.
func (m *Mapper) Bridge() Object { return m.bridge }

func (m *Mapper) buildBridge() Object {
	o := newObj(8)
	o.str("type", "identity")
	o.str("spec_version", "2.1")
	o.str("id", m.bridgeID)
	o.time("created", fixedTime)
	o.time("modified", fixedTime)
	o.str("name", "taxii-bridge")
	o.str("description", "ThreatConnect to TAXII 2.1 bridge that republishes "+m.webBase)
	o.str("identity_class", "system")
	js, h := o.finish()
	return Object{ID: m.bridgeID, Type: "identity", Created: fixedTime, Modified: fixedTime, JSON: js, Hash: h}
}

// ownerRef is the identity id of the owner (id, name) of a TC item.
func (m *Mapper) ownerRef(id int64, name string) string {
	if id != 0 {
		if v, ok := m.ownerIDs.Load(id); ok {
			return v.(string)
		}
		ref := m.ids.owner(id)
		m.ownerIDs.Store(id, ref)
		return ref
	}
	if name != "" {
		return m.ids.ownerByName(clean(name))
	}
	return ""
}

var identityClasses = map[string]string{"Organization": "organization", "Community": "group", "Source": "system"}

// Owner maps a ThreatConnect owner to its identity (stix-mapping.md §4.9).
func (m *Mapper) Owner(ow tcapi.Owner) (Object, error) {
	name := strings.TrimSpace(clean(ow.Name))
	if name == "" {
		return Object{}, fmt.Errorf("owner %d: field name is empty", ow.ID)
	}
	id := m.ownerRef(ow.ID, name)
	class, ok := m.opts.IdentityClass[ow.Type]
	if !ok {
		class, ok = identityClasses[ow.Type]
		if !ok {
			class = "unknown"
		}
	}
	o := newObj(11)
	o.str("type", "identity")
	o.str("spec_version", "2.1")
	o.str("id", id)
	o.time("created", fixedTime)
	o.time("modified", fixedTime)
	o.str("created_by_ref", m.bridgeID)
	o.str("name", name)
	o.str("identity_class", class)
	ref := newObj(3)
	ref.str("source_name", "threatconnect")
	if ow.ID != 0 {
		ref.str("external_id", fmt.Sprintf("owner:%d", ow.ID))
	}
	desc := "ThreatConnect owner"
	if t := strings.TrimSpace(clean(ow.Type)); t != "" {
		desc += " (" + t + ")"
	}
	ref.str("description", desc)
	o.list("external_references", [][]byte{ref.bytes()})
	if m.reliability != "" {
		o.str("x_threatconnect_source_reliability", m.reliability)
	}
	if ow.ID != 0 {
		o.str("x_threatconnect_owner_id", strconv.FormatInt(ow.ID, 10))
	}
	js, h := o.finish()
	return Object{ID: id, Type: "identity", Created: fixedTime, Modified: fixedTime, JSON: js, Hash: h, Owner: name}, nil
}

// OwnerByName maps an owner known only by id and name (for example from an
// indicator) to its identity; the identity_class is "unknown" unless the
// owner type is known through Owner.
func (m *Mapper) OwnerByName(id int64, name string) (Object, error) {
	return m.Owner(tcapi.Owner{ID: id, Name: name})
}

// sha256Of is a content hash (Object.Hash): SHA-256 cut to 16 bytes.
func sha256Of(b []byte) (h [16]byte) {
	sum := sha256.Sum256(b)
	copy(h[:], sum[:])
	return h
}
