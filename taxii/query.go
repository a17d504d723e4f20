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
	f := filter{}
	sawFilter := false

	single := func(name string) (string, bool, error) {
		v, ok := vals[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, fail(http.StatusBadRequest, "%s given %d times; it may appear once", name, len(v))
		}
		return v[0], true, nil
	}

	if allowed.addedAfter {
		if v, ok, err := single("added_after"); err != nil {
			return q, err
		} else if ok {
			t, err := parseTimestamp(v)
			if err != nil {
				return q, fail(http.StatusBadRequest, "added_after: %v", err)
			}
			if us := t.UnixMicro(); us > 0 {
				// date_added > t ⇔ date_added > floor_µs(t) for integer µs (UnixMicro floors towards zero, t > 0).
				f.AddedAfter = us
			}
			sawFilter = true
		}
	}
	if allowed.limit {
		if v, ok, err := single("limit"); err != nil {
			return q, err
		} else if ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil && isAllDigits(strings.TrimSpace(v)):
				n = s.cfg.MaxPageSize // a huge positive integer: clamp
			case err != nil:
				return q, fail(http.StatusBadRequest, "limit: %q is not an integer", v)
			case n <= 0:
				return q, fail(http.StatusBadRequest, "limit: must be greater than 0, got %d", n)
			}
			q.limit = min(n, s.cfg.MaxPageSize)
			q.askedLimit = q.limit
		}
	}
	if allowed.id && ep != epObject {
		ids, ok, err := matchValues(vals, "match[id]")
		if err != nil {
			return q, err
		}
		if ok {
			f.IDs, sawFilter = ids, true
		}
	}
	if allowed.typ {
		types, ok, err := matchValues(vals, "match[type]")
		if err != nil {
			return q, err
		}
		if ok {
			f.Types, sawFilter = types, true
		}
	}
	if allowed.specVersion {
		svs, ok, err := matchValues(vals, "match[spec_version]")
		if err != nil {
			return q, err
		}
		if ok {
			f.SpecVersions, sawFilter = svs, true
		}
	}
	if allowed.version {
		vs, ok, err := matchValues(vals, "match[version]")
		if err != nil {
			return q, err
		}
		if ok {
			sawFilter = true
			if err := f.setVersions(vs); err != nil {
				return q, err
			}
		}
	}
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
	if allowed.next {
		v, ok, err := single("next")
		if err != nil {
			return q, err
		}
		if ok && len(v) > maxNextBytes {
			return q, fail(http.StatusBadRequest, "next: %d bytes, longer than any cursor this server issues", len(v))
		}
		if ok {
			cur, err := s.cursors.decode(v)
			if err != nil {
				return q, fail(http.StatusBadRequest, "next: %v", err)
			}
			if cur.Collection != collectionID || cur.Endpoint != string(ep) || cur.Object != objectID {
				return q, fail(http.StatusBadRequest, "next: the cursor belongs to a different collection or endpoint")
			}
			if sawFilter && !cur.Filter.equal(f) {
				return q, fail(http.StatusBadRequest, "next: the cursor was issued for different filters; repeat the original query or send next alone")
			}
			f = cur.Filter
			q.after = &storage.Key{DateAdded: cur.DateAdded, RowID: cur.RowID}
			q.next = v
			if q.askedLimit == 0 && cur.Limit > 0 {
				q.askedLimit = min(cur.Limit, s.cfg.MaxPageSize)
				q.limit = q.askedLimit
			}
		}
	}
	q.filter = f
	return q, nil
}

// matchValues collects one match[...] field: comma-separated values, repeats
// of the field unioned, sorted and de-duplicated.
func matchValues(vals url.Values, name string) ([]string, bool, error) {
	raw, ok := vals[name]
	if !ok {
		return nil, false, nil
	}
	var out []string
	for _, r := range raw {
		// Count before splitting, so a long list costs nothing (D-17).
		if len(out)+strings.Count(r, ",")+1 > maxMatchValues {
			return nil, false, fail(http.StatusBadRequest, "%s: more than %d values", name, maxMatchValues)
		}
		for _, v := range strings.Split(r, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				return nil, false, fail(http.StatusBadRequest, "%s: empty value", name)
			}
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), true, nil
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
