package tcapi

import (
	"strconv"
	"strings"
	"time"
)

// Filter is what the sync selects from ThreatConnect, mirroring the seed
// feed's parameters (threatconnect-v3.md §12.1). IndicatorTQL and GroupTQL
// turn it into TQL with every string quoted and escaped (§11.1).
//
// UserTQL is the seed's "Indicator Query": when set it replaces the
// generated filters (owners, tags, types, active-only, thresholds) for
// indicators only — indicator keywords such as rating do not exist on
// /v3/groups, where ThreatConnect rejects them (§11.2, §11.3).
// GroupUserTQL is the same for groups (the seed's "Group Query", 2.2.0+).
// Unlike the seed, the lastModified window is still ANDed to either, so a
// custom query does not silently turn off incremental sync (§12.3 lists that
// as a flaw of the seed), and without ActiveOnly an indicator query that does
// not mention indicatorActive also gets inactive indicators (§6.6).
type Filter struct {
	// Owners restricts to these owner names (ownerName IN (…)).
	Owners []string
	// Tags keeps items carrying at least one of these tags (tag IN (…)).
	Tags []string
	// IndicatorTypes and GroupTypes restrict typeName; empty or containing
	// "All" means every type.
	IndicatorTypes []string
	GroupTypes     []string
	// ActiveOnly adds indicatorActive = true; false asks for active and
	// inactive indicators explicitly, because ThreatConnect returns active
	// ones only unless the query mentions indicatorActive (indicators only;
	// §6.6, §11.4).
	ActiveOnly bool
	// MinConfidence, when > 0, keeps indicators with confidence of at least
	// it ("confidence GEQ N"): the seed calls it the "minimal confidence
	// value" (§12.1; the seed's code sent GT, off by one from its own text).
	MinConfidence int
	// MinThreatAssessScore, when > 0, keeps indicators with a
	// threatAssessScore of at least it (indicators only).
	MinThreatAssessScore int
	// ModifiedSince and ModifiedUntil bound lastModified as
	// lastModified GEQ since AND lastModified LT until, both at second
	// precision in UTC (§11.1: fractional seconds make TC reject the
	// timestamp; §11.6: GEQ plus dedup, never +1 s). Zero means unbounded.
	ModifiedSince time.Time
	ModifiedUntil time.Time
	// UserTQL replaces the generated indicator filters (see Filter).
	UserTQL string
	// GroupUserTQL replaces the generated group filters (see Filter).
	GroupUserTQL string
}

// BothActiveStates is the clause that asks ThreatConnect for active and
// inactive indicators (threatconnect-v3.md §6.6: without a mention of
// indicatorActive it returns active ones only).
const BothActiveStates = "(indicatorActive = true OR indicatorActive = false)"

// IndicatorTQL returns the TQL for /v3/indicators, "" when nothing is filtered.
func (f Filter) IndicatorTQL() string {
	var parts []string
	if user := strings.TrimSpace(f.UserTQL); user != "" {
		parts = append(parts, "("+user+")")
		if !f.ActiveOnly && !strings.Contains(strings.ToLower(user), "indicatoractive") {
			// The query replaces the filters, but without a word on
			// indicatorActive ThreatConnect would still drop inactive ones.
			parts = append(parts, BothActiveStates)
		}
	} else {
		parts = append(parts, f.common()...)
		if f.ActiveOnly {
			parts = append(parts, "indicatorActive = true")
		} else {
			parts = append(parts, BothActiveStates)
		}
		if f.MinConfidence > 0 {
			parts = append(parts, "confidence GEQ "+strconv.Itoa(f.MinConfidence))
		}
		if f.MinThreatAssessScore > 0 {
			parts = append(parts, "threatAssessScore GEQ "+strconv.Itoa(f.MinThreatAssessScore))
		}
		if c := inClause("typeName", f.IndicatorTypes, true); c != "" {
			parts = append(parts, c)
		}
	}
	parts = append(parts, f.window()...)
	return strings.Join(parts, " AND ")
}

// GroupTQL returns the TQL for /v3/groups: owners, tags, group types and the
// lastModified window (the seed applies no activity or score filter to
// groups, §12.2), or the user's group TQL with the window. The indicator
// TQL (UserTQL) never reaches /v3/groups.
func (f Filter) GroupTQL() string {
	var parts []string
	if strings.TrimSpace(f.GroupUserTQL) != "" {
		parts = append(parts, "("+strings.TrimSpace(f.GroupUserTQL)+")")
	} else {
		parts = append(parts, f.common()...)
		if c := inClause("typeName", f.GroupTypes, true); c != "" {
			parts = append(parts, c)
		}
	}
	parts = append(parts, f.window()...)
	return strings.Join(parts, " AND ")
}

func (f Filter) common() []string {
	var parts []string
	if c := inClause("ownerName", f.Owners, false); c != "" {
		parts = append(parts, c)
	}
	if c := inClause("tag", f.Tags, false); c != "" {
		parts = append(parts, c)
	}
	return parts
}

func (f Filter) window() []string {
	var parts []string
	if !f.ModifiedSince.IsZero() {
		parts = append(parts, "lastModified GEQ "+Quote(FormatTime(f.ModifiedSince)))
	}
	if !f.ModifiedUntil.IsZero() {
		parts = append(parts, "lastModified LT "+Quote(FormatTime(f.ModifiedUntil)))
	}
	return parts
}

// inClause renders `key IN ("a","b")`, dropping empty values and, when
// allMeansAny, returning "" if any value is "All".
func inClause(key string, values []string, allMeansAny bool) string {
	var quoted []string
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if allMeansAny && strings.EqualFold(strings.TrimSpace(v), "All") {
			return ""
		}
		quoted = append(quoted, Quote(v))
	}
	if len(quoted) == 0 {
		return ""
	}
	return key + " IN (" + strings.Join(quoted, ",") + ")"
}

// Quote returns s as a double-quoted TQL string, escaping backslash, double
// quote, single quote and backtick with a backslash (threatconnect-v3.md
// §11.1). Other characters, newlines and non-ASCII included, pass through.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"', '\'', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FormatTime renders t for TQL: UTC, second precision, RFC 3339 with Z.
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// And joins non-empty TQL expressions with AND, parenthesising each one that
// contains more than a single comparison, so "a OR b" keeps its meaning.
func And(exprs ...string) string {
	var parts []string
	for _, e := range exprs {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		parts = append(parts, e)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	for i, p := range parts {
		if !isWrapped(p) {
			parts[i] = "(" + p + ")"
		}
	}
	return strings.Join(parts, " AND ")
}

// isWrapped reports whether e is one parenthesised group from its first to
// its last byte, ignoring parentheses inside quoted strings.
func isWrapped(e string) bool {
	if len(e) < 2 || e[0] != '(' || e[len(e)-1] != ')' {
		return false
	}
	depth := 0
	var quote byte
	for i := 0; i < len(e); i++ {
		c := e[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(e)-1 {
				return false
			}
		}
	}
	return depth == 0
}
