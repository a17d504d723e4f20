package taxii

import (
	"encoding/json"
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

// FuzzDecodeEnvelope: envelope decoding and object checks never panic;
// refusals are 400 or 422; accepted objects are canonical JSON with a
// well-formed id and spec_version 2.1.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"objects":[{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000001","spec_version":"2.1","value":"1.2.3.4"}]}`))
	f.Add([]byte(`{"objects":[{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000001","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00.123Z","object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}]}`))
	f.Add([]byte(`{"objects":[]}`))
	f.Add([]byte(`{"objects":[1,"a",null,{}]}`))
	f.Add([]byte(`[{}]`))
	f.Add([]byte(`{"objects":[{"type":"x","type":"y"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		objs, err := decodeEnvelope(body)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != http.StatusBadRequest && ae.status != http.StatusUnprocessableEntity) {
				t.Fatalf("decodeEnvelope error %v is not a 400 or 422", err)
			}
			return
		}
		for _, raw := range objs {
			obj, _, err := checkObject(raw)
			if err != nil {
				continue
			}
			if !json.Valid(obj.JSON) || obj.SpecVersion != "2.1" || obj.TLP < 0 || obj.TLP > 5 {
				t.Fatalf("accepted object %+v from %s", obj, raw)
			}
			var back map[string]any
			if err := json.Unmarshal(obj.JSON, &back); err != nil || back["id"] != obj.ID || back["type"] != obj.Type {
				t.Fatalf("canonical JSON %s does not match %s/%s", obj.JSON, obj.Type, obj.ID)
			}
		}
	})
}
