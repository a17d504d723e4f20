package tcsim

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// Listing machinery shared by every list endpoint: paging, fields and
// sorting parameters, the page selection and the response envelope
// (threatconnect-v3.md §4, §5).

// paging reads resultStart/resultLimit (§4.1, §17.3).
func paging(q url.Values) (start, limit int, err *apiError) {
	start, limit = 0, 100
	if v := q.Get("resultStart"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 0 {
			return 0, 0, badRequest("Invalid resultStart: %s", v)
		}
		start = n
	}
	if v := q.Get("resultLimit"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 {
			return 0, 0, badRequest("Invalid resultLimit: %s", v)
		}
		if n > tcapi.MaxPageSize {
			return 0, 0, badRequest("resultLimit must be less than or equal to %d", tcapi.MaxPageSize)
		}
		limit = n
	}
	return start, limit, nil
}

var (
	indicatorFields = set("tags", "securityLabels", "attributes", "associatedGroups", "associatedIndicators",
		"associatedCases", "associatedArtifacts", "customAssociations", "associationName", "fileActions",
		"fileOccurrences", "threatAssess", "observations", "falsePositives", "trackedUsers", "sightings",
		"externalDates", "genericCustomIndicatorValues", "dnsResolution", "whoIs", "geoLocation", "enrichment",
		"investigationLinks", "userDetails")
	groupFields = set("tags", "securityLabels", "attributes", "associatedGroups", "associatedIndicators",
		"associatedVictimAssets", "associatedCases", "associatedArtifacts", "sightings", "externalDates",
		"userDetails", "intelReviews", "insights", "common", "linkedGroups", "aliases")
	attributeFields = set("securityLabels", "userDetails")
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

// parseFields reads repeated fields= parameters with one level of dot
// notation; deeper paths exceed the default API link limit (§4.4).
func parseFields(values []string, allowed map[string]bool) (expand, *apiError) {
	ex := expand{set: map[string]bool{}, nested: map[string]map[string]bool{}}
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			parts := strings.Split(f, ".")
			if len(parts) > 2 {
				return ex, badRequest("Requested fields %q exceed the API link limit", f)
			}
			if !allowed[parts[0]] {
				return ex, badRequest("Invalid fields parameter value: %s", parts[0])
			}
			ex.set[parts[0]] = true
			if len(parts) == 2 {
				var inner map[string]bool
				switch parts[0] {
				case "associatedGroups":
					inner = groupFields
				case "associatedIndicators", "customAssociations", "fileActions":
					// fileActions.x expands the action's indicator [I]
					inner = indicatorFields
				case "attributes":
					inner = attributeFields
				default:
					return ex, badRequest("Field %q cannot be expanded", parts[0])
				}
				if !inner[parts[1]] {
					return ex, badRequest("Invalid fields parameter value: %s", f)
				}
				if ex.nested[parts[0]] == nil {
					ex.nested[parts[0]] = map[string]bool{}
				}
				ex.nested[parts[0]][parts[1]] = true
			}
		}
	}
	return ex, nil
}

type sortKey struct {
	key  string
	desc bool
}

// parseSorting reads "key dir[, key dir]" (§4.1, §17.7).
func parseSorting(v string, allowed map[string]bool) ([]sortKey, *apiError) {
	var keys []sortKey
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	for i := 0; i < len(fields); i++ {
		k := sortKey{key: strings.ToLower(fields[i])}
		if !allowed[k.key] {
			return nil, badRequest("Invalid sorting field: %s", fields[i])
		}
		if i+1 < len(fields) {
			switch strings.ToLower(fields[i+1]) {
			case "asc":
				i++
			case "desc":
				k.desc = true
				i++
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func ownerKnown(name string) bool {
	for _, o := range owners {
		if o.Name == name {
			return true
		}
	}
	return false
}

// listSpec is everything a list request selects.
type listSpec struct {
	start, limit int
	count        bool
	expr         node
	sort         []sortKey
	memoKey      string
}

func (s *Simulator) parseList(r *http.Request, sc *scope, sorts map[string]bool) (*listSpec, *apiError) {
	q := r.URL.Query()
	start, limit, err := paging(q)
	if err != nil {
		return nil, err
	}
	expr, perr := parseTQL(q.Get("tql"), sc)
	if perr != nil {
		return nil, badRequest("%s", perr.Error())
	}
	sort, err := parseSorting(q.Get("sorting"), sorts)
	if err != nil {
		return nil, err
	}
	if o := q.Get("owner"); o != "" && !ownerKnown(o) {
		return nil, &apiError{http.StatusNotFound, msgNoOwner}
	}
	return &listSpec{
		start: start, limit: limit, count: q.Get("count") == "true", expr: expr, sort: sort,
		memoKey: r.URL.Path + "\x00" + q.Get("tql") + "\x00" + q.Get("owner") + "\x00" + q.Get("sorting"),
	}, nil
}

// selector abstracts over indicators and groups for the paging engine.
type selector[T any] struct {
	base   int64
	maxIdx int64
	get    func(id int64) *T
	match  func(*T) bool
	keyOf  func(*T, string) any
}

// selectPage returns the page, whether more matches follow, and the total
// when wanted. The default order is id ascending; an id lower bound in the
// TQL (the client's keyset paging) starts the scan there, so paging all of
// a million items is linear.
func selectPage[T any](s *Simulator, sel selector[T], spec *listSpec, lowID int64, wantCount bool) (page []*T, more bool, total int) {
	byID := len(spec.sort) == 0 || (len(spec.sort) == 1 && spec.sort[0].key == "id")
	if byID {
		desc := len(spec.sort) == 1 && spec.sort[0].desc
		lo := max(int64(1), lowID-sel.base)
		idx, skip := lo, spec.start
		if !desc && spec.start > 0 {
			if v, ok := s.memoGet(spec.memoKey, spec.start); ok {
				idx, skip = v, 0
			}
		}
		step := int64(1)
		if desc {
			idx, step = sel.maxIdx, -1
		}
		for ; idx >= lo && idx <= sel.maxIdx; idx += step {
			it := sel.get(sel.base + idx)
			if it == nil || !sel.match(it) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if len(page) == spec.limit {
				more = true
				break
			}
			page = append(page, it)
			if len(page) == spec.limit && !desc {
				s.memoPut(spec.memoKey, spec.start+len(page), idx+1)
			}
		}
		if wantCount {
			for i := lo; i <= sel.maxIdx; i++ {
				if it := sel.get(sel.base + i); it != nil && sel.match(it) {
					total++
				}
			}
		}
		return page, more, total
	}
	type row struct {
		id   int64
		keys []any
	}
	var rows []row
	for i := max(int64(1), lowID-sel.base); i <= sel.maxIdx; i++ {
		it := sel.get(sel.base + i)
		if it == nil || !sel.match(it) {
			continue
		}
		rw := row{id: sel.base + i}
		for _, k := range spec.sort {
			rw.keys = append(rw.keys, sel.keyOf(it, k.key))
		}
		rows = append(rows, rw)
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		for i, k := range spec.sort {
			c := compareKey(a.keys[i], b.keys[i])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.id, b.id)
	})
	total = len(rows)
	if spec.start < len(rows) {
		end := min(len(rows), spec.start+spec.limit)
		for _, rw := range rows[spec.start:end] {
			page = append(page, sel.get(rw.id))
		}
		more = end < len(rows)
	}
	return page, more, total
}

func compareKey(a, b any) int {
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return strings.Compare(strings.ToLower(x), strings.ToLower(b.(string)))
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return 0
}

func (s *Simulator) memoGet(key string, start int) (int64, bool) {
	s.memoMu.Lock()
	defer s.memoMu.Unlock()
	v, ok := s.memo[key+"\x00"+strconv.Itoa(start)]
	return v, ok
}

// memoPut remembers where page (key, start) ends, so offset paging by
// next links is linear too. It is written under the read lock, so it has
// its own lock.
func (s *Simulator) memoPut(key string, start int, idx int64) {
	s.memoMu.Lock()
	defer s.memoMu.Unlock()
	if len(s.memo) > 4096 {
		clear(s.memo)
	}
	s.memo[key+"\x00"+strconv.Itoa(start)] = idx
}

// envelope writes {next?, data, count|prev?, status} (§5.1).
func (s *Simulator) envelope(r *http.Request, spec *listSpec, more bool, total, n int, item func(w *jw, i int)) []byte {
	per := max(int64(256), s.itemBytes.Load()) // bytes per item of recent pages, to size the buffer once
	w := &jw{b: make([]byte, 0, 512+int64(n)*per*9/8)}
	defer func() {
		if n > 0 {
			s.itemBytes.Store(int64(len(w.b)) / int64(n))
		}
	}()
	w.open()
	if more {
		w.str("next", pageLink(r, spec.start+n))
	}
	w.key("data")
	w.b = append(w.b, '[')
	for i := range n {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.first = true
		item(w, i)
	}
	w.b = append(w.b, ']')
	w.first = false
	if spec.count && spec.start == 0 {
		w.i64("count", int64(total))
	}
	if spec.start > 0 {
		w.str("prev", pageLink(r, max(0, spec.start-spec.limit)))
	}
	w.strAlways("status", "Success")
	w.close()
	return w.b
}

// pageLink is the absolute URL of the same request with resultStart changed,
// keeping every other parameter in order. Values are re-encoded with %20 for
// spaces whatever the client sent, so a client must sign the link as received.
func pageLink(r *http.Request, start int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var parts []string
	replaced := false
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if dk == "resultStart" {
			dv, replaced = strconv.Itoa(start), true
		}
		parts = append(parts, escape20(dk)+"="+escape20(dv))
	}
	if !replaced {
		parts = append(parts, "resultStart="+strconv.Itoa(start))
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}

func escape20(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
