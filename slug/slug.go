// Package slug makes names safe as identifiers of ours: a collection alias
// from a ThreatConnect owner name, a STIX relationship_type from a
// ThreatConnect action name (both ^[a-z0-9-]+$).
package slug

import "strings"

// Of lower-cases s and keeps its ASCII letters and digits; every run of
// anything else between them becomes one '-'. It is "" when nothing is left.
func Of(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
