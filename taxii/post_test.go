package taxii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type statusResp struct {
	ID               string         `json:"id"`
	Status           string         `json:"status"`
	RequestTimestamp string         `json:"request_timestamp"`
	TotalCount       *int           `json:"total_count"`
	SuccessCount     *int           `json:"success_count"`
	FailureCount     *int           `json:"failure_count"`
	PendingCount     *int           `json:"pending_count"`
	Successes        []statusDetail `json:"successes"`
	Failures         []statusDetail `json:"failures"`
}

func envelopeOf(objs ...string) []byte {
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

func (f *fixture) post(who, alias string, body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: f.colPath(alias, "objects/"), who: who, ctype: MediaType, body: body})
}

// count returns how many versions alice sees in a collection.
func (f *fixture) count(alias string) int {
	f.t.Helper()
	w := f.get("alice", f.colPath(alias, "manifest/")+"?match[version]=all")
	return len(decode[envelopeResp](f.t, w).Objects)
}

// taxii21.md S-8.8, issue 3 §4: per-object checks, 202 with a status, failures with reasons.
func TestAddObjects(t *testing.T) {
	f := newFixture(t)
	good1 := string(ind(1, 0, "").raw())
	good2 := string(stixObj{typ: "ipv4-addr", n: 2}.raw())
	marking := `{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000009","created":"2017-01-20T00:00:00.000Z","definition_type":"statement","definition":{"statement":"x"}}`
	bad := map[string]string{
		"no type":          `{"id":"indicator--00000000-0000-4000-8000-000000000010","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"id/type mismatch": `{"type":"malware","id":"indicator--00000000-0000-4000-8000-000000000011","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"bad uuid":         `{"type":"indicator","id":"indicator--1234","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"spec 2.0":         `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000012","spec_version":"2.0","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"no spec_version":  `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000013","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"no modified":      `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000014","spec_version":"2.1","created":"2025-01-01T00:00:00Z"}`,
		"no created":       `{"type":"relationship","id":"relationship--00000000-0000-4000-8000-000000000015","spec_version":"2.1","modified":"2025-01-01T00:00:00Z"}`,
		"bad timestamp":    `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000016","spec_version":"2.1","created":"yesterday","modified":"2025-01-01T00:00:00Z"}`,
		"modified<created": `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000017","spec_version":"2.1","created":"2025-01-02T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`,
		"not an object":    `"hello"`,
		"duplicate key":    `{"type":"ipv4-addr","type":"url","id":"ipv4-addr--00000000-0000-4000-8000-000000000018","spec_version":"2.1"}`,
		"too big":          `{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000019","spec_version":"2.1","x_pad":"` + strings.Repeat("a", maxObjectBytes) + `"}`,
	}
	objs := []string{good1, good2, marking, good1} // good1 twice: not an error (S-8.8)
	for _, b := range bad {
		objs = append(objs, b)
	}
	w := f.post("alice", "submissions", envelopeOf(objs...))
	wantStatus(t, w, http.StatusAccepted)
	st := decode[statusResp](t, w)
	if st.Status != "complete" || *st.TotalCount != len(objs) || *st.SuccessCount != 4 || *st.FailureCount != len(bad) || *st.PendingCount != 0 {
		t.Errorf("status = %s", w.Body.String())
	}
	if !taxiiTS.MatchString(st.RequestTimestamp) {
		t.Errorf("request_timestamp %q", st.RequestTimestamp)
	}
	for _, d := range st.Failures {
		if d.ID == "" || d.Message == "" {
			t.Errorf("failure detail without id or message: %+v", d)
		}
	}
	if st.Successes[0].ID != stixID("indicator", 1) || st.Successes[0].Version != stixTime(baseTime) {
		t.Errorf("first success = %+v", st.Successes[0])
	}
	if n := f.count("submissions"); n != 3 {
		t.Errorf("stored %d versions, want 3", n)
	}
	// The stored bytes are the canonical form, served as stored.
	w2 := f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/"))
	if !bytes.Contains(w2.Body.Bytes(), ind(1, 0, "").object(t).JSON) {
		t.Errorf("object = %s", w2.Body.String())
	}
	// The status is kept and readable (S-8.3).
	w3 := f.get("alice", "/api1/status/"+st.ID+"/")
	wantStatus(t, w3, http.StatusOK)
	if diff := cmp.Diff(st, decode[statusResp](t, w3)); diff != "" {
		t.Errorf("GET status differs from the POST answer (-post +get):\n%s", diff)
	}
	wantError(t, f.get("alice", "/api1/status/00000000-0000-4000-8000-000000000000/"), http.StatusNotFound, "")
	wantError(t, f.get("alice", "/api1/status/not-a-uuid/"), http.StatusNotFound, "")
	// Posting the same envelope again succeeds and adds nothing (S-8.8, D-4).
	w = f.post("alice", "submissions", envelopeOf(good1, good2))
	wantStatus(t, w, http.StatusAccepted)
	if st := decode[statusResp](t, w); *st.SuccessCount != 2 || *st.FailureCount != 0 {
		t.Errorf("repost status = %s", w.Body.String())
	}
	if n := f.count("submissions"); n != 3 {
		t.Errorf("after repost %d versions, want 3", n)
	}
	// A new version of good1 is a second version.
	w = f.post("alice", "submissions", envelopeOf(string(ind(1, 5, "").raw())))
	wantStatus(t, w, http.StatusAccepted)
	if n := f.count("submissions"); n != 4 {
		t.Errorf("after new version %d versions, want 4", n)
	}
}

// Issue 3 acceptance: bad envelopes get the right 4xx and store nothing.
func TestAddObjectsRefused(t *testing.T) {
	f := newFixture(t)
	good := string(ind(1, 0, "").raw())
	tests := []struct {
		name   string
		who    string
		alias  string
		ctype  string
		body   []byte
		status int
	}{
		{"invalid JSON", "alice", "submissions", MediaType, []byte(`{"objects":[` + good), http.StatusBadRequest},
		{"not an object", "alice", "submissions", MediaType, []byte(`[` + good + `]`), http.StatusUnprocessableEntity},
		{"no objects", "alice", "submissions", MediaType, []byte(`{"more":false}`), http.StatusUnprocessableEntity},
		{"objects not a list", "alice", "submissions", MediaType, []byte(`{"objects":{}}`), http.StatusUnprocessableEntity},
		{"empty objects", "alice", "submissions", MediaType, []byte(`{"objects":[]}`), http.StatusUnprocessableEntity},
		{"empty body", "alice", "submissions", MediaType, nil, http.StatusBadRequest},
		{"only non-STIX objects", "alice", "submissions", MediaType, envelopeOf(`{"hello":"world"}`, `42`, `{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000001","spec_version":"2.0"}`), http.StatusUnprocessableEntity},
		{"wrong content type", "alice", "submissions", "application/xml", envelopeOf(good), http.StatusUnsupportedMediaType},
		{"TAXII 2.0 content type", "alice", "submissions", "application/vnd.oasis.taxii+json; version=2.0", envelopeOf(good), http.StatusUnsupportedMediaType},
		{"no content type", "alice", "submissions", "", envelopeOf(good), http.StatusUnsupportedMediaType},
		{"50 MB body", "alice", "submissions", MediaType, bytes.Repeat([]byte(" "), 50<<20), http.StatusRequestEntityTooLarge},
		{"read-only TC collection", "alice", "intel", MediaType, envelopeOf(good), http.StatusForbidden},
		{"reader without write", "rita", "submissions", MediaType, envelopeOf(good), http.StatusForbidden},
		{"invisible collection", "key", "submissions", MediaType, envelopeOf(good), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(req{method: http.MethodPost, path: f.colPath(tt.alias, "objects/"), who: tt.who, ctype: tt.ctype, body: tt.body})
			wantError(t, w, tt.status, "")
			if n := f.count(tt.alias); n != 0 {
				t.Errorf("%d versions stored after a refused POST", n)
			}
		})
	}
	// application/taxii+json without version and application/json are accepted (S-3.5).
	for _, ct := range []string{"application/taxii+json", "application/json; charset=utf-8", "application/taxii+json; version=2.1"} {
		w := f.do(req{method: http.MethodPost, path: f.colPath("submissions", "objects/"), who: "wanda", ctype: ct, body: envelopeOf(good)})
		wantStatus(t, w, http.StatusAccepted)
	}
}

// taxii21.md S-8.10 mapping and after-delete behaviour.
func TestDeleteObject(t *testing.T) {
	f := newFixture(t)
	f.put("submissions", ind(1, 0, ""), ind(2, 0, ""))
	f.put("submissions", ind(1, 1, ""))
	f.put("submissions", ind(3, 0, tlpAmber))
	f.put("intel", ind(1, 0, ""))
	del := func(who, alias string, n int, query string) *httptest.ResponseRecorder {
		return f.do(req{method: http.MethodDelete, path: f.colPath(alias, "objects/"+stixID("indicator", n)+"/") + query, who: who})
	}
	wantError(t, del("rita", "submissions", 1, ""), http.StatusForbidden, "")  // read, no write
	wantError(t, del("wanda", "submissions", 1, ""), http.StatusForbidden, "") // write, no read
	wantError(t, del("key", "submissions", 1, ""), http.StatusNotFound, "")    // neither
	wantError(t, del("alice", "intel", 1, ""), http.StatusForbidden, "")       // read-only collection
	wantError(t, del("alice", "submissions", 9, ""), http.StatusNotFound, "")
	wantError(t, del("alice", "submissions", 1, "?match[version]=last"), http.StatusBadRequest, "")

	w := del("alice", "submissions", 1, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != MediaType || w.Body.Len() != 0 {
		t.Fatalf("DELETE = %d %q %q, want 200, media type, no body", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	wantError(t, f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/")), http.StatusNotFound, "")
	if n := f.count("submissions"); n != 2 {
		t.Errorf("%d versions left, want 2", n)
	}
	// Other collections keep their copy.
	wantStatus(t, f.get("alice", f.colPath("intel", "objects/"+stixID("indicator", 1)+"/")), http.StatusOK)
	wantStatus(t, del("alice", "submissions", 2, "?match[version]=all"), http.StatusOK)
	wantError(t, del("alice", "submissions", 2, ""), http.StatusNotFound, "")
}

func TestDeleteRespectsTLPCeiling(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users[1].Write = []string{"submissions"} })
	f.put("submissions", ind(3, 0, tlpAmber))
	w := f.do(req{method: http.MethodDelete, path: f.colPath("submissions", "objects/"+stixID("indicator", 3)+"/"), who: "greg"})
	wantError(t, w, http.StatusNotFound, "")
	if n := f.count("submissions"); n != 1 {
		t.Errorf("greg deleted an AMBER object he cannot see")
	}
}

func TestCheckObjectTLP(t *testing.T) {
	tests := []struct {
		refs string
		want int
	}{
		{`[]`, 0},
		{`["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]`, 1},
		{`["` + tlpGreen + `","` + tlpRed + `"]`, 5},
		{`["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]`, 4},
		{`["marking-definition--00000000-0000-4000-8000-000000000000"]`, 0},
	}
	for _, tt := range tests {
		raw := fmt.Sprintf(`{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000001","spec_version":"2.1","value":"1.2.3.4","object_marking_refs":%s}`, tt.refs)
		obj, _, err := checkObject(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("checkObject(%s): %v", raw, err)
		}
		if obj.TLP != tt.want {
			t.Errorf("refs %s: TLP %d, want %d", tt.refs, obj.TLP, tt.want)
		}
	}
}

// onlyReader hides the length of a body, as a chunked upload does.
type onlyReader struct{ io.Reader }

// A body above max_content_length without a Content-Length is cut off at
// the limit and refused with 413, storing nothing (S-8.8, issue 3 acceptance).
func TestAddObjectsChunkedTooLarge(t *testing.T) {
	f := newFixture(t)
	body := io.MultiReader(strings.NewReader(`{"objects":[`), onlyReader{bytes.NewReader(bytes.Repeat([]byte(" "), 50<<20))})
	r := httptest.NewRequest(http.MethodPost, f.colPath("submissions", "objects/"), onlyReader{body})
	r.ContentLength = -1
	r.Header.Set("Authorization", basic("alice", "alice-pw"))
	r.Header.Set("Content-Type", MediaType)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	wantError(t, w, http.StatusRequestEntityTooLarge, "")
	if n := f.count("submissions"); n != 0 {
		t.Errorf("%d versions stored", n)
	}
}

// taxii21.md §4.3.1: status-details version is required; an SCO (no
// modified, no created) reports the same date_added the manifest shows.
func TestAddObjectsSCOVersion(t *testing.T) {
	f := newFixture(t)
	w := f.post("alice", "submissions", envelopeOf(string(stixObj{typ: "ipv4-addr", n: 1}.raw())))
	wantStatus(t, w, http.StatusAccepted)
	st := decode[statusResp](t, w)
	m := f.get("alice", f.colPath("submissions", "manifest/"))
	var man struct {
		Objects []struct {
			Version string `json:"version"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(m.Body.Bytes(), &man); err != nil || len(man.Objects) != 1 {
		t.Fatalf("manifest %s: %v", m.Body.String(), err)
	}
	if got := st.Successes[0].Version; got == "" || got != man.Objects[0].Version {
		t.Errorf("status version %q, manifest version %q", got, man.Objects[0].Version)
	}
}
