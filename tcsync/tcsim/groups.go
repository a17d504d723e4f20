package tcsim

import (
	"net/http"
	"strconv"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The group endpoints: /v3/groups and one group (threatconnect-v3.md §3, §7).

var groupSorts = set("id", "dateadded", "lastmodified", "summary", "name", "typename", "ownername")

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
