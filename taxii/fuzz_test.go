package taxii

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
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

// fuzzAllocPerByte and fuzzAllocBase bound the bytes FuzzDecodeEnvelope may
// allocate decoding and checking one input: a constant for the decoders and
// a fixed multiple of the input's length (issue 14: memory proportional to
// what was sent, never to a per-entry overhead that junk entries multiply).
const (
	fuzzAllocPerByte = 16
	fuzzAllocBase    = 64 << 10
)

// heapAllocs reads the bytes allocated by the process so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzDecodeEnvelope (issue 9 point 1, issue 14): envelope decoding and the
// object checks never panic; refusals are 400, 413 or 422 TAXII errors; the
// bytes allocated stay within fuzzAllocBase + fuzzAllocPerByte × input
// length; and every accepted object is canonical JSON with a well-formed id,
// spec_version 2.1, exactly one of each property name in any letter case
// (in what was posted and in what would be stored), and the TLP rank of
// what its exact-case object_marking_refs and granular_markings say.
func FuzzDecodeEnvelope(f *testing.F) {
	const (
		red   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
		green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
		ind   = `"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000001","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00.123Z","pattern":"[ipv4-addr:value = '1.2.3.4']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"`
	)
	for _, s := range []string{
		`{"objects":[{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000001","spec_version":"2.1","value":"1.2.3.4"}]}`,
		`{"objects":[{` + ind + `,"object_marking_refs":["` + red + `"]}]}`,
		`{"objects":[{` + ind + `,"object_marking_refs":["` + red + `"],"OBJECT_MARKING_REFS":[]}]}`,
		`{"objects":[{` + ind + `,"OBJECT_MARKING_REFS":[],"object_marking_refs":["` + red + `"]}]}`,
		`{"objects":[{` + ind + `,"Object_Marking_Refs":["` + green + `"]}]}`,
		`{"objects":[{` + ind + `,"object_marking_refs":["` + red + `"],"object_marking_refs":["` + green + `"]}]}`,
		`{"objects":[{` + ind + `,"object_marking_refs":["` + red + `"],"\u006fbject_marking_refs":[]}]}`,
		`{"objects":[{` + ind + `,"TYPE":"malware"}]}`,
		`{"objects":[{` + ind + `,"Type":"indicator"}]}`,
		`{"objects":[{` + ind + `,"ſpec_version":"2.0"}]}`,
		`{"objects":[{` + ind + `,"x_\u212Aey":1,"x_key":2}]}`,
		`{"objects":[{` + ind + `,"granular_markings":[{"marking_ref":"` + red + `","MARKING_REF":"` + green + `","selectors":["name"]}]}]}`,
		`{"objects":[{` + ind + `,"granular_markings":[{"marking_ref":"` + red + `","selectors":["name"]}]}]}`,
		`{"objects":[{` + ind + `,"x_dict":{"a":1,"A":2}}]}`,
		`{"objects":[1],"OBJECTS":[{` + ind + `}]}`,
		`{"Objects":[{` + ind + `}]}`,
		`{"objects":[]}`,
		`{"objects":[1,"a",null,{},[],true]}`,
		`[{}]`,
		`{"objects":[{"type":"x","type":"y"}]`,
		`{"objects":[{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000009","created":"2017-01-20T00:00:00.000Z","definition_type":"statement","definition":{"statement":"x"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var (
			accepted []storage.Object
			raws     [][]byte
			err      error
		)
		run := func() uint64 {
			accepted, raws = nil, nil
			a0 := heapAllocs()
			_, err = decodeEnvelope(bytes.NewReader(body), 100, func(_ int, raw []byte) error {
				obj, _, err := checkObject(raw)
				if err == nil {
					accepted = append(accepted, obj)
					raws = append(raws, bytes.Clone(raw))
				}
				return nil
			})
			return heapAllocs() - a0
		}
		// The counter is the process's: the smaller of two runs leaves out
		// what the fuzzing engine's own goroutines allocate meanwhile.
		if a := min(run(), run()); a > fuzzAllocBase+fuzzAllocPerByte*uint64(len(body)) {
			t.Fatalf("allocated %d bytes for a %d-byte input, more than %d + %d per byte", a, len(body), fuzzAllocBase, fuzzAllocPerByte)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != http.StatusBadRequest && ae.status != http.StatusUnprocessableEntity && ae.status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("decodeEnvelope error %v is not a 400, 413 or 422", err)
			}
			return
		}
		for i, obj := range accepted {
			raw := raws[i]
			if !json.Valid(obj.JSON) || obj.SpecVersion != "2.1" || !strings.HasPrefix(obj.ID, obj.Type+"--") {
				t.Fatalf("accepted object %+v from %s", obj, raw)
			}
			// The canonical form is RFC 8785's, as an independent
			// implementation writes it.
			if want, err := jcs.Transform(raw); err != nil || !bytes.Equal(obj.JSON, want) {
				t.Fatalf("canonical form of %s:\n got %s\nwant %s (%v)", raw, obj.JSON, want, err)
			}
			for _, doc := range [][]byte{raw, obj.JSON} {
				keys := topLevelKeys(t, doc)
				for a := range keys {
					for b := a + 1; b < len(keys); b++ {
						if strings.EqualFold(keys[a], keys[b]) {
							t.Fatalf("accepted object has %q and %q in %s", keys[a], keys[b], doc)
						}
					}
				}
				var m map[string]json.RawMessage // exact names
				if err := json.Unmarshal(doc, &m); err != nil {
					t.Fatalf("accepted object %s: %v", doc, err)
				}
				var typ, id, sv string
				json.Unmarshal(m["type"], &typ)
				json.Unmarshal(m["id"], &id)
				json.Unmarshal(m["spec_version"], &sv)
				if typ != obj.Type || id != obj.ID || sv != "2.1" {
					t.Fatalf("exact-case type/id/spec_version %q %q %q differ from %s/%s in %s", typ, id, sv, obj.Type, obj.ID, doc)
				}
				if want := exactCaseTLP(m); obj.TLP != want {
					t.Fatalf("stored TLP %d, exact-case markings say %d, in %s", obj.TLP, want, doc)
				}
			}
		}
	})
}

// topLevelKeys lists the property names of a JSON object as written.
func topLevelKeys(t *testing.T, doc []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", doc)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// exactCaseTLP is the test's own reading of an object's TLP: the strictest
// TLP marking among object_marking_refs and granular_markings[].marking_ref,
// names matched exactly.
func exactCaseTLP(m map[string]json.RawMessage) int {
	level := tlp.None
	var refs []string
	json.Unmarshal(m["object_marking_refs"], &refs)
	for _, r := range refs {
		level = tlp.Max(level, markingTLP(r))
	}
	var gms []map[string]json.RawMessage
	json.Unmarshal(m["granular_markings"], &gms)
	for _, g := range gms {
		var r string
		json.Unmarshal(g["marking_ref"], &r)
		level = tlp.Max(level, markingTLP(r))
	}
	return int(level)
}
