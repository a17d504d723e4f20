package stixmap

import (
	"fmt"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// TLP modes (stix-mapping.md §4.5).
const (
	// ModeCompat uses the TLP 1.0 ids for CLEAR/WHITE, GREEN, AMBER and RED
	// and the OASIS TLP 2.0 id for AMBER+STRICT, which TLP 1.0 lacks.
	ModeCompat = "compat"
	// ModeTLP2 uses the five OASIS TLP 2.0 marking definitions.
	ModeTLP2 = "tlp2"
	// ModeV1Only uses only the four TLP 1.0 ids; AMBER+STRICT becomes RED
	// (never AMBER, which would widen sharing).
	ModeV1Only = "v1-only"
)

// tlp2Extension is the OASIS TLP 2.0 extension-definition id.
const tlp2Extension = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

// marking is one TLP marking definition we can reference.
type marking struct {
	id      string
	level   tlp.Level // the level it stands for when we emit it
	created time.Time
	json    []byte
}

var (
	tlp1Created = time.Date(2017, 1, 20, 0, 0, 0, 0, time.UTC)
	tlp2Created = time.Date(2022, 10, 1, 0, 0, 0, 0, time.UTC)
)

// tlp1 builds a TLP 1.0 marking definition (STIX 2.1 §7.2.1.4).
func tlp1(id, colour string, l tlp.Level) marking {
	o := newObj(7)
	o.str("type", "marking-definition")
	o.str("spec_version", "2.1")
	o.str("id", id)
	o.time("created", tlp1Created)
	o.str("definition_type", "tlp")
	o.str("name", "TLP:"+strings.ToUpper(colour))
	d := newObj(1)
	d.str("tlp", colour)
	o.raw("definition", d.bytes())
	return marking{id: id, level: l, created: tlp1Created, json: o.bytes()}
}

// tlp2 builds an OASIS TLP 2.0 marking definition (stix-mapping.md §3.4).
func tlp2(id, value string, l tlp.Level) marking {
	o := newObj(6)
	o.str("type", "marking-definition")
	o.str("spec_version", "2.1")
	o.str("id", id)
	o.time("created", tlp2Created)
	o.str("name", "TLP:"+strings.ToUpper(value))
	ext := newObj(2)
	ext.str("extension_type", "property-extension")
	ext.str("tlp_2_0", value)
	exts := newObj(1)
	exts.raw(tlp2Extension, ext.bytes())
	o.raw("extensions", exts.bytes())
	return marking{id: id, level: l, created: tlp2Created, json: o.bytes()}
}

var (
	tlp1White = tlp1(tlp.MarkingV1White, "white", tlp.Clear)
	tlp1Green = tlp1(tlp.MarkingV1Green, "green", tlp.Green)
	tlp1Amber = tlp1(tlp.MarkingV1Amber, "amber", tlp.Amber)
	tlp1Red   = tlp1(tlp.MarkingV1Red, "red", tlp.Red)

	tlp2Clear       = tlp2(tlp.MarkingV2Clear, "clear", tlp.Clear)
	tlp2Green       = tlp2(tlp.MarkingV2Green, "green", tlp.Green)
	tlp2Amber       = tlp2(tlp.MarkingV2Amber, "amber", tlp.Amber)
	tlp2AmberStrict = tlp2(tlp.MarkingV2AmberStrict, "amber+strict", tlp.AmberStrict)
	tlp2Red         = tlp2(tlp.MarkingV2Red, "red", tlp.Red)
)

// tlp2ExtensionDefinition is the OASIS extension-definition object the TLP
// 2.0 markings refer to, served next to them so the references resolve.
func tlp2ExtensionDefinition() Object {
	o := newObj(11)
	o.str("type", "extension-definition")
	o.str("spec_version", "2.1")
	o.str("id", tlp2Extension)
	o.str("name", "TLP 2.0")
	o.str("description", "This defines TLP 2.0 as a STIX extension")
	o.time("created", tlp2Created)
	o.time("modified", tlp2Created)
	o.str("created_by_ref", tlp2CreatorID)
	o.str("schema", "https://github.com/oasis-open/cti-stix-common-objects/tree/master/extension-definition-specifications/tlp-2.0")
	o.str("version", "1.0.0")
	o.strs("extension_types", []string{"property-extension"})
	js, h := o.finish()
	return Object{ID: tlp2Extension, Type: "extension-definition", Created: tlp2Created, Modified: tlp2Created, JSON: js, Hash: h}
}

// tlp2CreatorID is the created_by_ref of the OASIS TLP 2.0
// extension-definition.
const tlp2CreatorID = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"

// tlp2Creator is an identity for the creator of the TLP 2.0
// extension-definition, served with it so that its created_by_ref resolves
// in every collection (DESIGN.md §10). OASIS publishes no object for it.
func tlp2Creator() Object {
	o := newObj(8)
	o.str("type", "identity")
	o.str("spec_version", "2.1")
	o.str("id", tlp2CreatorID)
	o.time("created", tlp2Created)
	o.time("modified", tlp2Created)
	o.str("name", "OASIS CTI TC")
	o.str("description", "Creator of the OASIS TLP 2.0 extension-definition (cti-stix-common-objects)")
	o.str("identity_class", "organization")
	js, h := o.finish()
	return Object{ID: tlp2CreatorID, Type: "identity", Created: tlp2Created, Modified: tlp2Created, JSON: js, Hash: h}
}

// tlpTable maps each level to its marking definition in one mode.
type tlpTable [tlp.Red + 1]*marking

func tableFor(mode string) (tlpTable, error) {
	switch mode {
	case "", ModeCompat:
		return tlpTable{tlp.Clear: &tlp1White, tlp.Green: &tlp1Green, tlp.Amber: &tlp1Amber, tlp.AmberStrict: &tlp2AmberStrict, tlp.Red: &tlp1Red}, nil
	case ModeTLP2:
		return tlpTable{tlp.Clear: &tlp2Clear, tlp.Green: &tlp2Green, tlp.Amber: &tlp2Amber, tlp.AmberStrict: &tlp2AmberStrict, tlp.Red: &tlp2Red}, nil
	case ModeV1Only:
		return tlpTable{tlp.Clear: &tlp1White, tlp.Green: &tlp1Green, tlp.Amber: &tlp1Amber, tlp.AmberStrict: &tlp1Red, tlp.Red: &tlp1Red}, nil
	}
	return tlpTable{}, fmt.Errorf("unknown TLP mode %q (want %s, %s or %s)", mode, ModeCompat, ModeTLP2, ModeV1Only)
}

// markingObjects returns the distinct marking definitions of a table (and
// the TLP 2.0 extension-definition when a TLP 2.0 marking is among them),
// in level order.
func markingObjects(t tlpTable) []Object {
	var out []Object
	seen := map[string]bool{}
	usesTLP2 := false
	for l := tlp.Clear; l <= tlp.Red; l++ {
		m := t[l]
		if m == nil || seen[m.id] {
			continue
		}
		seen[m.id] = true
		if strings.Contains(string(m.json), tlp2Extension) {
			usesTLP2 = true
		}
		out = append(out, markingObject(m.id, m.level, m.created, m.json))
	}
	if usesTLP2 {
		out = append(out, tlp2Creator(), tlp2ExtensionDefinition())
	}
	return out
}

// markingObject is a marking definition as an Object: not versioned (no
// modified), so its version instant is its created time (taxii21.md D-5).
func markingObject(id string, l tlp.Level, created time.Time, js []byte) Object {
	return Object{ID: id, Type: "marking-definition", Created: created, TLP: l, JSON: js, Hash: sha256Of(js)}
}

// statementCreated is the fixed created time of statement markings made from
// organisation-defined TC labels: marking definitions cannot be versioned
// and the label's own dateAdded is not always present, so the id (name +
// description) and a constant time keep them identical on every run.
var statementCreated = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// statement builds the statement marking of an organisation-defined TC
// security label (stix-mapping.md §4.5).
func (m *Mapper) statement(name, description string) Object {
	id := m.ids.make("marking-definition", "marking-definition|tc-security-label|"+name+"|"+description)
	text := name
	if description != "" {
		text = name + ": " + description
	}
	o := newObj(8)
	o.str("type", "marking-definition")
	o.str("spec_version", "2.1")
	o.str("id", id)
	o.time("created", statementCreated)
	o.str("created_by_ref", m.bridgeID)
	o.str("name", name)
	o.str("definition_type", "statement")
	d := newObj(1)
	d.str("statement", text)
	o.raw("definition", d.bytes())
	return markingObject(id, tlp.None, statementCreated, o.bytes())
}
