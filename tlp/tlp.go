// Package tlp defines the Traffic Light Protocol levels that taxii-bridge
// orders, filters and maps on.
//
// A Level is a rank: a larger Level is more restrictive. The zero Level is
// "no TLP marking", which sorts below CLEAR so that an unmarked object is
// visible to every principal that may see CLEAR data; collections and the
// stix.default_tlp setting decide whether unmarked data is published at all.
//
// TLP 1.0 WHITE and TLP 2.0 CLEAR are the same level. AMBER+STRICT sits
// between AMBER and RED (TLP 2.0 §"AMBER+STRICT"); it is never relaxed to AMBER.
package tlp

import (
	"fmt"
	"strings"
)

// Level is a TLP level ordered from least to most restrictive.
type Level int

// The levels, least restrictive first. None means "not marked".
const (
	None Level = iota
	Clear
	Green
	Amber
	AmberStrict
	Red
)

var names = [...]string{
	None:        "",
	Clear:       "CLEAR",
	Green:       "GREEN",
	Amber:       "AMBER",
	AmberStrict: "AMBER+STRICT",
	Red:         "RED",
}

// String returns the TLP 2.0 name of l without the "TLP:" prefix, or "" for None.
func (l Level) String() string {
	if l < None || l > Red {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return names[l]
}

// Label returns the ThreatConnect security label name of l ("TLP:AMBER"), or "" for None.
func (l Level) Label() string {
	if l == None {
		return ""
	}
	return "TLP:" + l.String()
}

// Parse reads a TLP name as users and ThreatConnect write it: case-insensitive,
// with or without the "TLP:" prefix, WHITE as a synonym of CLEAR, and
// "AMBER STRICT" / "AMBER_STRICT" as spellings of AMBER+STRICT. The empty
// string is an error; callers that allow "no level" check for it first.
func Parse(s string) (Level, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	v = strings.TrimPrefix(v, "TLP:")
	v = strings.TrimSpace(v)
	switch v {
	case "CLEAR", "WHITE":
		return Clear, nil
	case "GREEN":
		return Green, nil
	case "AMBER":
		return Amber, nil
	case "AMBER+STRICT", "AMBER STRICT", "AMBER_STRICT", "AMBER-STRICT":
		return AmberStrict, nil
	case "RED":
		return Red, nil
	}
	return None, fmt.Errorf("unknown TLP level %q (want CLEAR, WHITE, GREEN, AMBER, AMBER+STRICT or RED)", s)
}

// FromLabel returns the level of a ThreatConnect security label name and
// whether the label is a TLP label at all. Organisation-defined labels
// ("dictators") are not TLP and return (None, false).
func FromLabel(name string) (Level, bool) {
	v := strings.TrimSpace(name)
	if len(v) < 4 || !strings.EqualFold(v[:4], "TLP:") {
		return None, false
	}
	l, err := Parse(v)
	if err != nil {
		return None, false
	}
	return l, true
}

// Max returns the more restrictive of a and b.
func Max(a, b Level) Level {
	if a > b {
		return a
	}
	return b
}
