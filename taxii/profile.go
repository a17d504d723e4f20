package taxii

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Profiles are named bundles of wire behaviours that particular TAXII
// clients need (taxii21.md §3, C-*), chosen per principal with
// `profile:` so the spec-compliant default stays clean (B-9). Behaviours
// every client gets anyway are not switches: lenient Accept (C-1), a
// Content-Type on GET ignored (§3.9: Elastic sends one), both slash forms
// (C-2), next exactly when more (C-4, C-5), self-contained next (C-6),
// cursors valid for days (C-7), the X-TAXII-Date-Added headers on every
// non-empty page.
const (
	ProfileDefault  = "default"
	ProfileSentinel = "sentinel"
	ProfileElastic  = "elastic"
	ProfileOpenCTI  = "opencti"
	ProfileXSOAR    = "xsoar"
	ProfileSplunk   = "splunk"
	ProfileMISP     = "misp"
)

// wire is what a profile changes.
type wire struct {
	name string
	// emptyList answers an empty listing {"more":false,"objects":[]}
	// (or "versions":[]) instead of {} (C-16, D-21).
	emptyList bool
	// echoAddedAfter sends X-TAXII-Date-Added-Last equal to the request's
	// added_after on an empty page, so a client that otherwise falls back
	// to its own clock keeps its position (OpenCTI ingester, §3.9).
	echoAddedAfter bool
	// nextInAddedAfter takes an added_after value that is not a timestamp
	// but a next cursor as next (older XSOAR TAXII2ApiModule, §3.7).
	nextInAddedAfter bool
}

var profiles = map[string]wire{
	// The spec's shapes: {} for an empty listing.
	ProfileDefault: {},
	// Sentinel reads the spec shapes; it needs Basic auth, UUIDv4
	// collection ids and X-TAXII headers, which every principal gets.
	ProfileSentinel: {},
	// Elastic ti_custom: older versions fail on {} (PRs #19303/#19304).
	ProfileElastic: {emptyList: true},
	// OpenCTI: KeyError on a missing more (#1371) or objects (#411); the
	// ingester falls back to its own clock without X-TAXII-Date-Added-Last.
	ProfileOpenCTI: {emptyList: true, echoAddedAfter: true},
	// XSOAR: stops at an envelope without objects and reads {} as garbage;
	// older versions sent next in the added_after slot.
	ProfileXSOAR: {emptyList: true, nextInAddedAfter: true},
	// Splunk ES 8.2+ and MISP's taxii21 module parse envelopes with
	// objects lists; an empty list is safer than {}.
	ProfileSplunk: {emptyList: true},
	ProfileMISP:   {emptyList: true},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// profileWire returns the wire behaviours of a profile name ("" is default).
func profileWire(name string) (wire, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		n = ProfileDefault
	}
	w, ok := profiles[n]
	if !ok {
		return wire{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	w.name = n
	return w, nil
}

// rewriteNextInAddedAfter moves an added_after value that is not a
// timestamp into next, when the request has no next of its own.
func rewriteNextInAddedAfter(rawQuery string) string {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil || len(vals["added_after"]) != 1 || vals.Has("next") {
		return rawQuery
	}
	v := vals.Get("added_after")
	if _, err := parseTimestamp(v); err == nil || !strings.Contains(v, ".") {
		return rawQuery
	}
	vals.Del("added_after")
	vals.Set("next", v)
	return vals.Encode()
}
