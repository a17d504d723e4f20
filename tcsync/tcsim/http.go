package tcsim

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// Error messages of the real API (threatconnect-v3.md §14.2).
const (
	msgSignature   = "Signature data did not match expected result"
	msgTimestamp   = "Timestamp out of acceptable time range"
	msgInvalidTS   = "Invalid timestamp"
	msgAccessDenid = "Access Denied"
	msgTokenBad    = "Unauthorized"
	msgNotFound    = "The requested resource was not found"
	msgNoOwner     = "The requested owner was not found"
)

// ServeHTTP serves the API under /api (threatconnect-v3.md §3, §17).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat)) // the simulator's clock, for skew checks
	f, faulty := s.nextFault()
	if faulty {
		switch f.Kind {
		case FaultStatus:
			code := f.Status
			if code == 0 {
				code = http.StatusServiceUnavailable
			}
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			}
			writeError(w, code, fmt.Sprintf("Simulated failure (%d)", code))
			return
		case FaultRateLimit:
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "Too many requests")
			return
		case FaultReset:
			resetConnection(w)
			return
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	if code, msg := s.authenticate(r); code != 0 {
		writeError(w, code, msg)
		return
	}
	var status int
	var body []byte
	switch r.Method {
	case http.MethodGet:
		status, body = s.route(r)
	case http.MethodOptions:
		status, body = s.options(r)
	default:
		writeError(w, http.StatusMethodNotAllowed, "The simulator is read-only")
		return
	}
	s.log.Debug("tcsim request", "path", r.URL.Path, "status", status, "bytes", len(body))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if faulty && f.Kind == FaultTruncate {
		w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(body)
}

// authenticate verifies auth exactly as threatconnect-v3.md §2.4 describes,
// returning a status and message on failure.
func (s *Simulator) authenticate(r *http.Request) (int, string) {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "TC-Token "):
		tok := strings.TrimPrefix(h, "TC-Token ")
		if s.token == "" || !hmac.Equal([]byte(tok), []byte(s.token)) {
			return http.StatusUnauthorized, msgTokenBad
		}
		return 0, ""
	case strings.HasPrefix(h, "TC "):
		id, sig, ok := strings.Cut(strings.TrimPrefix(h, "TC "), ":")
		if !ok || s.accessID == "" || !hmac.Equal([]byte(id), []byte(s.accessID)) {
			return http.StatusUnauthorized, msgAccessDenid
		}
		ts := r.Header.Get("Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return http.StatusUnauthorized, msgInvalidTS
		}
		if d := s.now().Unix() - sec; d > 300 || d < -300 {
			return http.StatusUnauthorized, msgTimestamp
		}
		// r.RequestURI is the raw request target as received (§2.4).
		m := hmac.New(sha256.New, []byte(s.secretKey))
		m.Write([]byte(r.RequestURI + ":" + r.Method + ":" + ts))
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(sig), []byte(want)) {
			return http.StatusUnauthorized, msgSignature
		}
		return 0, ""
	}
	return http.StatusUnauthorized, msgAccessDenid
}

func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0) // close with RST
	}
	conn.Close()
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var b []byte
	b = append(b, `{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"status":"Error"}`...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func errorBody(msg string) []byte {
	b := append([]byte(`{"message":`), appendString(nil, msg)...)
	return append(b, `,"status":"Error"}`...)
}

// apiError is a failure to answer with the error envelope.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Simulator) route(r *http.Request) (int, []byte) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	var body []byte
	var err *apiError
	switch {
	case p == "/api/v3/indicators":
		body, err = s.listIndicators(r)
	case p == "/api/v3/indicators/deleted":
		body, err = s.listDeleted(r)
	case strings.HasPrefix(p, "/api/v3/indicators/"):
		body, err = s.oneIndicator(r, strings.TrimPrefix(p, "/api/v3/indicators/"))
	case p == "/api/v3/groups":
		body, err = s.listGroups(r)
	case strings.HasPrefix(p, "/api/v3/groups/"):
		body, err = s.oneGroup(r, strings.TrimPrefix(p, "/api/v3/groups/"))
	case p == "/api/v3/security/owners":
		body, err = s.listOwners(r)
	case strings.HasPrefix(p, "/api/v3/security/owners/"):
		body, err = s.oneOwner(strings.TrimPrefix(p, "/api/v3/security/owners/"))
	case p == "/api/v3/tags":
		body, err = s.listTags(r)
	case p == "/api/v3/securityLabels":
		body, err = s.listLabels(r)
	case p == "/api/v3/indicatorAttributes":
		body, err = s.listAttributes(r, false)
	case p == "/api/v3/groupAttributes":
		body, err = s.listAttributes(r, true)
	case p == "/api/v2/owners" || p == "/api/v2/owners/mine":
		body = s.v2Owners()
	default:
		err = &apiError{http.StatusNotFound, msgNotFound}
	}
	if err != nil {
		return err.code, errorBody(err.msg)
	}
	return http.StatusOK, body
}

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

var indicatorSorts = set("id", "dateadded", "lastmodified", "summary", "typename", "ownername", "rating", "confidence", "threatassessscore")
var groupSorts = set("id", "dateadded", "lastmodified", "summary", "name", "typename", "ownername")

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

func indicatorKey(in *tcapi.Indicator, k string) any {
	switch k {
	case "id":
		return in.ID
	case "dateadded":
		return in.DateAdded
	case "lastmodified":
		return in.LastModified
	case "summary":
		return in.Summary
	case "typename":
		return in.Type
	case "ownername":
		return in.OwnerName
	case "rating":
		if in.Rating != nil {
			return *in.Rating
		}
		return -1.0
	case "confidence":
		if in.Confidence != nil {
			return int64(*in.Confidence)
		}
		return int64(-1)
	case "threatassessscore":
		if in.ThreatAssessScore != nil {
			return int64(*in.ThreatAssessScore)
		}
		return int64(-1)
	}
	return int64(0)
}

func groupKey(g *tcapi.Group, k string) any {
	switch k {
	case "id":
		return g.ID
	case "dateadded":
		return g.DateAdded
	case "lastmodified":
		return g.LastModified
	case "summary", "name":
		return g.Name
	case "typename":
		return g.Type
	case "ownername":
		return g.OwnerName
	}
	return int64(0)
}

func (s *Simulator) listIndicators(r *http.Request) ([]byte, *apiError) {
	spec, err := s.parseList(r, indicatorScope, indicatorSorts)
	if err != nil {
		return nil, err
	}
	ex, err := parseFields(r.URL.Query()["fields"], indicatorFields)
	if err != nil {
		return nil, err
	}
	owner := r.URL.Query().Get("owner")
	activeOnly := s.activeDefault && !mentions(spec.expr, "indicatoractive")
	env := &evalEnv{now: s.now()}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sel := selector[tcapi.Indicator]{
		base: IndicatorIDBase, maxIdx: s.maxInd, get: s.indicator, keyOf: indicatorKey,
		match: func(in *tcapi.Indicator) bool {
			if owner != "" && in.OwnerName != owner || activeOnly && !in.Active {
				return false
			}
			return spec.expr == nil || spec.expr.eval(indSubject{s, in}, env)
		},
	}
	page, more, total := selectPage(s, sel, spec, idLowerBound(spec.expr), spec.count && spec.start == 0)
	if ex.has("associationName") {
		for i, in := range page {
			if links := s.customLinks(in); len(links) > 0 {
				c := *in
				c.AssociationName = links[0].name
				page[i] = &c
			}
		}
	}
	return s.envelope(r, spec, more, total, len(page), func(w *jw, i int) { s.writeIndicator(w, page[i], ex, false) }), nil
}

func (s *Simulator) listGroups(r *http.Request) ([]byte, *apiError) {
	spec, err := s.parseList(r, groupScope, groupSorts)
	if err != nil {
		return nil, err
	}
	ex, err := parseFields(r.URL.Query()["fields"], groupFields)
	if err != nil {
		return nil, err
	}
	owner := r.URL.Query().Get("owner")
	env := &evalEnv{now: s.now()}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sel := selector[tcapi.Group]{
		base: GroupIDBase, maxIdx: s.maxGrp, get: s.group, keyOf: groupKey,
		match: func(g *tcapi.Group) bool {
			if owner != "" && g.OwnerName != owner {
				return false
			}
			return spec.expr == nil || spec.expr.eval(grpSubject{s, g}, env)
		},
	}
	page, more, total := selectPage(s, sel, spec, idLowerBound(spec.expr), spec.count && spec.start == 0)
	return s.envelope(r, spec, more, total, len(page), func(w *jw, i int) { s.writeGroup(w, page[i], ex, false) }), nil
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

func (s *Simulator) oneIndicator(r *http.Request, key string) ([]byte, *apiError) {
	ex, err := parseFields(r.URL.Query()["fields"], indicatorFields)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var in *tcapi.Indicator
	if id, e := strconv.ParseInt(key, 10, 64); e == nil {
		in = s.indicator(id)
	} else {
		summary, _ := url.PathUnescape(key)
		owner := r.URL.Query().Get("owner")
		if owner == "" {
			owner = owners[0].Name // lookup by summary searches the user's organization (§3)
		}
		for i := int64(1); i <= s.maxInd && in == nil; i++ {
			if c := s.indicator(IndicatorIDBase + i); c != nil && c.Summary == summary && c.OwnerName == owner {
				in = c
			}
		}
	}
	if in == nil {
		return nil, &apiError{http.StatusNotFound, msgNotFound}
	}
	w := &jw{}
	w.open()
	w.key("data")
	s.writeIndicator(w, in, ex, false)
	w.strAlways("status", "Success")
	w.close()
	return w.b, nil
}

func (s *Simulator) oneGroup(r *http.Request, key string) ([]byte, *apiError) {
	ex, err := parseFields(r.URL.Query()["fields"], groupFields)
	if err != nil {
		return nil, err
	}
	id, e := strconv.ParseInt(key, 10, 64)
	if e != nil {
		return nil, &apiError{http.StatusNotFound, msgNotFound}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.group(id)
	if g == nil {
		return nil, &apiError{http.StatusNotFound, msgNotFound}
	}
	w := &jw{}
	w.open()
	w.key("data")
	s.writeGroup(w, g, ex, false)
	w.strAlways("status", "Success")
	w.close()
	return w.b, nil
}

func (s *Simulator) listDeleted(r *http.Request) ([]byte, *apiError) {
	q := r.URL.Query()
	start, limit, err := paging(q)
	if err != nil {
		return nil, err
	}
	var since time.Time
	if v := q.Get("deletedSince"); v != "" {
		t, e := tcapi.ParseTime(v)
		if e != nil {
			return nil, badRequest("Invalid deletedSince: %s", v)
		}
		since = t
	}
	owner, typ := q.Get("owner"), q.Get("type")
	if owner != "" && !ownerKnown(owner) {
		return nil, &apiError{http.StatusNotFound, msgNoOwner}
	}
	s.mu.RLock()
	var match []tcapi.DeletedIndicator
	for _, d := range s.deletedLog {
		if d.DateAdded.Before(since) || owner != "" && d.OwnerName != owner || typ != "" && !strings.EqualFold(d.Type, typ) {
			continue
		}
		match = append(match, d)
	}
	s.mu.RUnlock()
	spec := &listSpec{start: start, limit: limit, count: true}
	var page []tcapi.DeletedIndicator
	if start < len(match) {
		page = match[start:min(len(match), start+limit)]
	}
	spec.count = start == 0
	return s.envelope(r, spec, start+len(page) < len(match), len(match), len(page), func(w *jw, i int) {
		d := page[i]
		w.open()
		w.str("ownerName", d.OwnerName)
		w.time("dateAdded", d.DateAdded)
		w.strAlways("type", d.Type)
		w.strAlways("summary", d.Summary)
		w.close()
	}), nil
}

func writeOwner(w *jw, o *tcapi.Owner) {
	w.open()
	w.i64("id", o.ID)
	w.strAlways("name", o.Name)
	w.strAlways("type", o.Type)
	w.str("ownerRole", o.OwnerRole)
	w.str("permIndicator", o.PermIndicator)
	w.str("permGroup", o.PermGroup)
	w.close()
}

func (s *Simulator) listOwners(r *http.Request) ([]byte, *apiError) {
	start, limit, err := paging(r.URL.Query())
	if err != nil {
		return nil, err
	}
	var page []tcapi.Owner
	if start < len(owners) {
		page = owners[start:min(len(owners), start+limit)]
	}
	spec := &listSpec{start: start, limit: limit}
	return s.envelope(r, spec, start+len(page) < len(owners), 0, len(page), func(w *jw, i int) { writeOwner(w, &page[i]) }), nil
}

func (s *Simulator) oneOwner(key string) ([]byte, *apiError) {
	id, _ := strconv.ParseInt(key, 10, 64)
	for i := range owners {
		if owners[i].ID == id {
			w := &jw{}
			w.open()
			w.key("data")
			writeOwner(w, &owners[i])
			w.strAlways("status", "Success")
			w.close()
			return w.b, nil
		}
	}
	return nil, &apiError{http.StatusNotFound, msgNotFound}
}

func (s *Simulator) listTags(r *http.Request) ([]byte, *apiError) {
	q := r.URL.Query()
	start, limit, err := paging(q)
	if err != nil {
		return nil, err
	}
	expr, perr := parseTQL(q.Get("tql"), tagScope)
	if perr != nil {
		return nil, badRequest("%s", perr.Error())
	}
	env := &evalEnv{now: s.now()}
	var match []tcapi.Tag
	for _, t := range tagPool {
		t.Owner = owners[0].Name
		if expr == nil || expr.eval(tagSubject{&t}, env) {
			match = append(match, t)
		}
	}
	var page []tcapi.Tag
	if start < len(match) {
		page = match[start:min(len(match), start+limit)]
	}
	spec := &listSpec{start: start, limit: limit}
	return s.envelope(r, spec, start+len(page) < len(match), 0, len(page), func(w *jw, i int) { writeTag(w, &page[i]) }), nil
}

func (s *Simulator) listLabels(r *http.Request) ([]byte, *apiError) {
	start, limit, err := paging(r.URL.Query())
	if err != nil {
		return nil, err
	}
	var page []tcapi.SecurityLabel
	if start < len(securityLabels) {
		page = securityLabels[start:min(len(securityLabels), start+limit)]
	}
	spec := &listSpec{start: start, limit: limit}
	return s.envelope(r, spec, start+len(page) < len(securityLabels), 0, len(page), func(w *jw, i int) { writeLabel(w, &page[i]) }), nil
}

// v2Owners answers the legacy v2 owners call used as a connectivity test (§8.5).
func (s *Simulator) v2Owners() []byte {
	w := &jw{}
	w.open()
	w.strAlways("status", "Success")
	w.key("data")
	w.open()
	w.i64("resultCount", int64(len(owners)))
	w.key("owner")
	w.b = append(w.b, '[')
	for i, o := range owners {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.open()
		w.i64("id", o.ID)
		w.strAlways("name", o.Name)
		w.strAlways("type", o.Type)
		w.close()
	}
	w.b = append(w.b, ']')
	w.close()
	w.close()
	return w.b
}

// attrSubject is an attribute with the id of the object carrying it.
type attrSubject struct {
	s     *Simulator
	a     *tcapi.Attribute
	owner subject
}

func (x attrSubject) values(key string) []any {
	a := x.a
	switch key {
	case "id":
		return []any{a.ID}
	case "type":
		return []any{a.Type}
	case "value":
		return []any{a.Value}
	case "indicatorid":
		if a.IndicatorID != 0 {
			return []any{a.IndicatorID}
		}
	case "groupid":
		if a.GroupID != 0 {
			return []any{a.GroupID}
		}
	case "dateadded":
		return []any{a.DateAdded}
	case "lastmodified":
		return []any{a.LastModified}
	case "default":
		return []any{a.Default}
	}
	return nil
}

func (x attrSubject) children(fn string) []subject {
	switch fn {
	case "hasindicator":
		if _, ok := x.owner.(indSubject); ok {
			return []subject{x.owner}
		}
	case "hasgroup":
		if _, ok := x.owner.(grpSubject); ok {
			return []subject{x.owner}
		}
	case "hassecuritylabel":
		var out []subject
		for i := range x.a.SecurityLabels.Data {
			out = append(out, labelSubject{&x.a.SecurityLabels.Data[i]})
		}
		return out
	}
	return nil
}

// listAttributes serves /v3/indicatorAttributes and /v3/groupAttributes
// (threatconnect-v3.md §3), filtered by TQL such as "indicatorId = 12" or
// "hasGroup(id in (10,15))". An indicatorId/groupId bound starts the scan at
// that object; without one every object is visited.
func (s *Simulator) listAttributes(r *http.Request, groups bool) ([]byte, *apiError) {
	q := r.URL.Query()
	start, limit, err := paging(q)
	if err != nil {
		return nil, err
	}
	expr, perr := parseTQL(q.Get("tql"), attrScope)
	if perr != nil {
		return nil, badRequest("%s", perr.Error())
	}
	ex, err := parseFields(q["fields"], set("securityLabels", "userDetails", "indicatorId", "groupId"))
	if err != nil {
		return nil, err
	}
	env := &evalEnv{now: s.now()}
	s.mu.RLock()
	defer s.mu.RUnlock()
	base, maxIdx, key := IndicatorIDBase, s.maxInd, "indicatorid"
	if groups {
		base, maxIdx, key = GroupIDBase, s.maxGrp, "groupid"
	}
	lo := max(int64(1), lowerBound(expr, key)-base)
	var match []tcapi.Attribute
	total, more := 0, false
	for i := lo; i <= maxIdx && !more; i++ {
		var attrs []tcapi.Attribute
		var owner subject
		if groups {
			g := s.group(base + i)
			if g == nil {
				continue
			}
			attrs, owner = g.Attributes.Data, grpSubject{s, g}
		} else {
			in := s.indicator(base + i)
			if in == nil {
				continue
			}
			attrs, owner = in.Attributes.Data, indSubject{s, in}
		}
		for _, a := range attrs {
			if groups {
				a.GroupID = base + i
			} else {
				a.IndicatorID = base + i
			}
			if expr != nil && !expr.eval(attrSubject{s, &a, owner}, env) {
				continue
			}
			total++
			if total <= start {
				continue
			}
			if len(match) == limit {
				more = true
				break
			}
			match = append(match, a)
		}
	}
	spec := &listSpec{start: start, limit: limit}
	return s.envelope(r, spec, more, 0, len(match), func(w *jw, i int) {
		writeAttribute(w, &match[i], ex)
	}), nil
}

var kindNames = map[valueKind]string{kInt: "Integer", kFloat: "Integer", kString: "String", kDate: "Date", kBool: "Boolean"}

// options answers OPTIONS /v3/{indicators,groups}/{tql,fields}, the
// discovery descriptors of threatconnect-v3.md §4.7.
func (s *Simulator) options(r *http.Request) (int, []byte) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	var sc *scope
	var fields map[string]bool
	switch {
	case strings.HasPrefix(p, "/api/v3/indicators/"):
		sc, fields = indicatorScope, indicatorFields
	case strings.HasPrefix(p, "/api/v3/groups/"):
		sc, fields = groupScope, groupFields
	default:
		return http.StatusNotFound, errorBody(msgNotFound)
	}
	var names []string
	w := &jw{}
	w.open()
	w.key("data")
	w.b = append(w.b, '[')
	switch {
	case strings.HasSuffix(p, "/tql"):
		for k := range sc.keys {
			names = append(names, k)
		}
		for k := range sc.subs {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			kind, ok := sc.keys[k]
			typ := "Subquery"
			if ok {
				typ = kindNames[kind]
			}
			w.open()
			w.strAlways("keyword", k)
			w.strAlways("name", k)
			w.strAlways("type", typ)
			w.close()
		}
	case strings.HasSuffix(p, "/fields"):
		for k := range fields {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.open()
			w.strAlways("name", k)
			w.boolean("includedByDefault", false)
			w.close()
		}
	default:
		return http.StatusNotFound, errorBody(msgNotFound)
	}
	w.b = append(w.b, ']')
	w.i64("count", int64(len(names)))
	w.strAlways("status", "Success")
	w.close()
	return http.StatusOK, w.b
}
