package taxii

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzParseQuery: no query string makes parseQuery panic, and every failure
// is a 400 TAXII error (taxii21.md S-7.3, D-17).
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "limit=0", "limit=-1", "limit=1e9", "limit=x", "limit=1&limit=2",
		"added_after=2020-01-01T00:00:00Z", "added_after=2020-01-01T00:00:00.123456789+01:00",
		"added_after=2020-01-01T00:00:00.1 00:00", "match[id]=a,b,c&match[id]=d", "match[type]=indicator,malware",
		"match[version]=first,last", "match[version]=all", "match[version]=all,first", "match[version]=2020-01-01T00:00:00Z",
		"match[spec_version]=2.1", "next=abc.def", "next=", "%zz", "match[id]=,,", "match[foo]=bar",
	} {
		f.Add(s, uint8(0))
	}
	srv, err := New(nopStore{}, testConfig(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	eps := []endpoint{epObjects, epManifest, epObject, epVersions, epDelete}
	f.Fuzz(func(t *testing.T, raw string, e uint8) {
		q, err := srv.parseQuery(raw, eps[int(e)%len(eps)], "c", "indicator--x")
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("parseQuery(%q) error %v is not a 400", raw, err)
			}
			return
		}
		if q.limit <= 0 || q.limit > srv.cfg.MaxPageSize {
			t.Fatalf("parseQuery(%q) limit %d out of range", raw, q.limit)
		}
		if len(q.filter.IDs) > maxMatchValues || len(q.filter.Types) > maxMatchValues {
			t.Fatalf("parseQuery(%q) let through %d ids", raw, len(q.filter.IDs))
		}
		if q.filter.All && (q.filter.First || q.filter.Last || len(q.filter.At) > 0) {
			t.Fatalf("parseQuery(%q) combined all with other versions", raw)
		}
	})
}
