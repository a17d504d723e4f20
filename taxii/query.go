package taxii

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// endpoint names a listing endpoint; it is bound into cursors so a next
// value from one endpoint is refused by another.
type endpoint string

const (
	epObjects  endpoint = "objects"
	epManifest endpoint = "manifest"
	epObject   endpoint = "object"
	epVersions endpoint = "versions"
	epDelete   endpoint = "delete"
)

// maxMatchValues caps the values of one match[...] field (taxii21.md D-17,
// B-17: query-cost protection).
const maxMatchValues = 1000

// Request bounds (issue 14), each checked before any work proportional to
// what it bounds, each refused with a 400 TAXII error:
//
//   - maxQueryBytes: the raw query string, before it is parsed. It leaves
//     room for a full filter sent together with its next cursor (C-6).
//   - maxFilterBytes: the values of all match[...] fields together, after
//     parsing; it keeps every next cursor the server issues (which carries
//     the filter, D-8) under maxNextBytes.
//   - maxNextBytes: a next value, before it is decoded and its HMAC checked.
//
// The request line and header block as a whole are bounded by
// http.Server.MaxHeaderBytes (listen.go), which net/http enforces before
// the handler runs.
const (
	maxQueryBytes  = 384 << 10
	maxFilterBytes = 64 << 10
	maxNextBytes   = 128 << 10
)

// parseQueryString parses a raw query string after checking its length.
func parseQueryString(raw string) (url.Values, error) {
	if len(raw) > maxQueryBytes {
		return nil, fail(http.StatusBadRequest, "query string of %d bytes is longer than the %d allowed", len(raw), maxQueryBytes)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed query string: %v", shortErr(err))
	}
	return vals, nil
}

// filter is the normalized, principal-independent part of a listing query:
// sorted, de-duplicated value lists, the version selector made explicit.
// Two requests select the same rows iff their filters are equal, so the
// cursor binds it (D-8).
type filter struct {
	AddedAfter   int64    `json:"a,omitempty"` // µs, exclusive; 0 = none
	IDs          []string `json:"i,omitempty"`
	Types        []string `json:"t,omitempty"`
	SpecVersions []string `json:"s,omitempty"`
	Last         bool     `json:"l,omitempty"`
	First        bool     `json:"f,omitempty"`
	All          bool     `json:"v,omitempty"`
	At           []int64  `json:"m,omitempty"` // explicit versions, ns since the epoch
}

func (f filter) equal(g filter) bool {
	return f.AddedAfter == g.AddedAfter && slices.Equal(f.IDs, g.IDs) && slices.Equal(f.Types, g.Types) &&
		slices.Equal(f.SpecVersions, g.SpecVersions) && f.Last == g.Last && f.First == g.First && f.All == g.All &&
		slices.Equal(f.At, g.At)
}

// size is roughly the bytes the filter's value lists take.
func (f filter) size() int {
	n := 20 * len(f.At)
	for _, l := range [][]string{f.IDs, f.Types, f.SpecVersions} {
		for _, v := range l {
			n += len(v) + 3
		}
	}
	return n
}

func (f filter) versionFilter() storage.VersionFilter {
	vf := storage.VersionFilter{Last: f.Last, First: f.First, All: f.All}
	for _, ns := range f.At {
		vf.At = append(vf.At, time.Unix(0, ns).UTC())
	}
	return vf
}

// listQuery is a parsed listing request.
type listQuery struct {
	filter filter
	limit  int
	after  *storage.Key
	// next is the verified next value the request carried, "" for none.
	next string
	// askedLimit is the client's limit (from the request or, failing that,
	// the cursor), 0 when none; it is carried into the next cursor.
	askedLimit int
}

// paramSet says which query parameters an endpoint takes (taxii21.md §1.7 table).
type paramSet struct {
	addedAfter, limit, next, id, typ, version, specVersion bool
}

var endpointParams = map[endpoint]paramSet{
	epObjects:  {true, true, true, true, true, true, true},
	epManifest: {true, true, true, true, true, true, true},
	epObject:   {true, true, true, false, false, true, true},
	epVersions: {true, true, true, false, false, false, true},
	epDelete:   {false, false, false, false, false, true, true},
}

// queryParam is one query parameter of the listing endpoints
// (taxii21.md §1.7 table): whether an endpoint takes it, whether it may
// appear only once (else repeats are a union, A-10), whether it is part
// of the filter a cursor binds (C-6), and how its values are read.
type queryParam struct {
	name   string
	takes  func(paramSet) bool
	single bool
	filter bool
	read   func(s *Server, q *listQuery, vals []string) error
}

// listParams are read in this order; next is read last (parseQuery), as
// it is checked against the filter the others built.
var listParams = [...]queryParam{
	{name: "added_after", takes: func(p paramSet) bool { return p.addedAfter }, single: true, filter: true,
		read: func(_ *Server, q *listQuery, v []string) error {
			t, err := parseTimestamp(v[0])
			if err != nil {
				return fail(http.StatusBadRequest, "added_after: %v", err)
			}
			if us := t.UnixMicro(); us > 0 {
				// date_added > t ⇔ date_added > floor_µs(t) for integer µs (UnixMicro floors towards zero, t > 0).
				q.filter.AddedAfter = us
			}
			return nil
		}},
	{name: "limit", takes: func(p paramSet) bool { return p.limit }, single: true,
		read: func(s *Server, q *listQuery, v []string) error {
			raw := strings.TrimSpace(v[0])
			n, err := strconv.Atoi(raw)
			switch {
			case err != nil && isAllDigits(raw):
				n = s.cfg.MaxPageSize // a huge positive integer: clamp
			case err != nil:
				return fail(http.StatusBadRequest, "limit: %q is not an integer", v[0])
			case n <= 0:
				return fail(http.StatusBadRequest, "limit: must be greater than 0, got %d", n)
			}
			q.limit = min(n, s.cfg.MaxPageSize)
			q.askedLimit = q.limit
			return nil
		}},
	{name: "match[id]", takes: func(p paramSet) bool { return p.id }, filter: true,
		read: func(_ *Server, q *listQuery, v []string) error { q.filter.IDs = v; return nil }},
	{name: "match[type]", takes: func(p paramSet) bool { return p.typ }, filter: true,
		read: func(_ *Server, q *listQuery, v []string) error { q.filter.Types = v; return nil }},
	{name: "match[spec_version]", takes: func(p paramSet) bool { return p.specVersion }, filter: true,
		read: func(_ *Server, q *listQuery, v []string) error { q.filter.SpecVersions = v; return nil }},
	{name: "match[version]", takes: func(p paramSet) bool { return p.version }, filter: true,
		read: func(_ *Server, q *listQuery, v []string) error { return q.filter.setVersions(v) }},
}

// parseQuery parses and checks the query string of a listing request
// (taxii21.md S-7.3…S-7.14, D-10, D-17, A-10, C-10, C-25). Malformed or
// repeated added_after, limit and next are 400s; repeated match[...] fields
// are a union; unknown parameters and match fields are ignored; limits above
// the maximum are clamped. A next cursor is verified and, when the request
// also carries filters, they must equal the ones the cursor was issued for
// (C-6). The returned filter is the cursor's when only next was sent.
func (s *Server) parseQuery(rawQuery string, ep endpoint, collectionID, objectID string) (listQuery, error) {
	vals, err := parseQueryString(rawQuery)
	if err != nil {
		return listQuery{}, err
	}
	allowed := endpointParams[ep]
	q := listQuery{limit: s.cfg.DefaultPageSize}
	sawFilter := false
	for _, p := range listParams {
		raw, ok := vals[p.name]
		if !ok || !p.takes(allowed) {
			continue
		}
		if p.single && len(raw) != 1 {
			return q, fail(http.StatusBadRequest, "%s given %d times; it may appear once", p.name, len(raw))
		}
		if !p.single {
			if raw, err = splitMatch(p.name, raw); err != nil {
				return q, err
			}
		}
		if err := p.read(s, &q, raw); err != nil {
			return q, err
		}
		sawFilter = sawFilter || p.filter
	}
	f := &q.filter
	if !f.All && !f.First && len(f.At) == 0 {
		f.Last = true // the TAXII default (S-7.13)
	}
	if ep == epVersions {
		f.Last = false // the versions endpoint lists every version
	}
	if ep == epObject || ep == epVersions || ep == epDelete {
		f.IDs = []string{objectID}
	}
	if n := f.size(); n > maxFilterBytes {
		return q, fail(http.StatusBadRequest, "the match[...] values add up to %d bytes, more than the %d allowed", n, maxFilterBytes)
	}
	if raw, ok := vals["next"]; ok && allowed.next {
		if err := s.readNext(&q, raw, sawFilter, ep, collectionID, objectID); err != nil {
			return q, err
		}
	}
	return q, nil
}

// readNext verifies a next cursor against the request (C-6) and resumes
// its listing: position, filter and, unless the request sets one, limit.
func (s *Server) readNext(q *listQuery, raw []string, sawFilter bool, ep endpoint, collectionID, objectID string) error {
	if len(raw) != 1 {
		return fail(http.StatusBadRequest, "next given %d times; it may appear once", len(raw))
	}
	v := raw[0]
	if len(v) > maxNextBytes {
		return fail(http.StatusBadRequest, "next: %d bytes, longer than any cursor this server issues", len(v))
	}
	cur, err := s.cursors.decode(v)
	if err != nil {
		return fail(http.StatusBadRequest, "next: %v", err)
	}
	if cur.Collection != collectionID || cur.Endpoint != string(ep) || cur.Object != objectID {
		return fail(http.StatusBadRequest, "next: the cursor belongs to a different collection or endpoint")
	}
	if sawFilter && !cur.Filter.equal(q.filter) {
		return fail(http.StatusBadRequest, "next: the cursor was issued for different filters; repeat the original query or send next alone")
	}
	q.filter = cur.Filter
	q.after = &storage.Key{DateAdded: cur.DateAdded, RowID: cur.RowID}
	q.next = v
	if q.askedLimit == 0 && cur.Limit > 0 {
		q.askedLimit = min(cur.Limit, s.cfg.MaxPageSize)
		q.limit = q.askedLimit
	}
	return nil
}

// matchValues collects one match[...] field: comma-separated values, repeats
// of the field unioned, sorted and de-duplicated.
func matchValues(vals url.Values, name string) ([]string, bool, error) {
	raw, ok := vals[name]
	if !ok {
		return nil, false, nil
	}
	out, err := splitMatch(name, raw)
	return out, err == nil, err
}

// splitMatch splits and unions the values of a match[...] field given
// one or more times.
func splitMatch(name string, raw []string) ([]string, error) {
	var out []string
	for _, r := range raw {
		// Count before splitting, so a long list costs nothing (D-17).
		if len(out)+strings.Count(r, ",")+1 > maxMatchValues {
			return nil, fail(http.StatusBadRequest, "%s: more than %d values", name, maxMatchValues)
		}
		for _, v := range strings.Split(r, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				return nil, fail(http.StatusBadRequest, "%s: empty value", name)
			}
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// setVersions reads match[version]: last, first, all (alone) or STIX
// timestamps compared as instants (S-7.13, D-5).
func (f *filter) setVersions(vs []string) error {
	for _, v := range vs {
		switch strings.ToLower(v) {
		case "last":
			f.Last = true
		case "first":
			f.First = true
		case "all":
			f.All = true
		default:
			t, err := parseTimestamp(v)
			if err != nil {
				return fail(http.StatusBadRequest, "match[version]: %q is not last, first, all or a timestamp", v)
			}
			f.At = append(f.At, t.UnixNano())
		}
	}
	if f.All && (f.Last || f.First || len(f.At) > 0) {
		return fail(http.StatusBadRequest, "match[version]: all cannot be combined with other values")
	}
	slices.Sort(f.At)
	f.At = slices.Compact(f.At)
	return nil
}

// parseTimestamp reads an RFC 3339 instant with 0–9 fractional digits and
// any offset, tolerating a '+' that form decoding turned into a space
// (taxii21.md C-10, A-7).
func parseTimestamp(v string) (time.Time, error) {
	s := strings.TrimSpace(v)
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i] + "+" + s[i+1:]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 timestamp", v)
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%q is out of range", v)
	}
	return t.UTC(), nil
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// taxiiTime formats µs since the epoch as a TAXII timestamp: exactly six
// fractional digits and Z (S-4.1, D-1, C-11).
func taxiiTime(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000Z")
}

// stixTime formats a STIX timestamp with millisecond precision, or more
// digits when the instant needs them, so a version string reads like the
// object's own modified.
func stixTime(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Nanosecond()%1e6 == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	case t.Nanosecond()%1e3 == 0:
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
