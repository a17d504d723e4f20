package tcsim

import (
	"net/http"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The tag and security-label endpoints (threatconnect-v3.md §3, §8.1, §8.2).

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
