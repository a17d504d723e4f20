package tcsim

import (
	"net/http"
	"strconv"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The owner endpoints: /v3/security/owners and the v2 owners list
// (threatconnect-v3.md §3, §8.4, §8.5).

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
