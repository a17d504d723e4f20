package tcsim

import (
	"net/http"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The indicator and group attribute endpoints (threatconnect-v3.md §3, §8.3).

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
