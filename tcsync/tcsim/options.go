package tcsim

import (
	"net/http"
	"slices"
	"strings"
)

// OPTIONS: the TQL keywords of a list endpoint (threatconnect-v3.md §4.7).

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
