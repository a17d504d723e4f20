package tcsim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The indicator endpoints: /v3/indicators, one indicator, and the deleted
// indicators (threatconnect-v3.md §3, §6, §6.5).

var indicatorSorts = set("id", "dateadded", "lastmodified", "summary", "typename", "ownername", "rating", "confidence", "threatassessscore")

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
