package taxii

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// Tests of issue 14 "Bounded work per request".

// processRSS reads the resident set size of this process (Linux); ok is
// false where /proc is not available.
func processRSS(t testing.TB) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse VmRSS %q: %v", line, err)
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// junkEnvelope is {"objects":[first…,1,1,…]} with n entries of 1.
func junkEnvelope(n int, first ...string) []byte {
	var b bytes.Buffer
	b.Grow(2*n + 64)
	b.WriteString(`{"objects":[`)
	for _, f := range first {
		b.WriteString(f)
		b.WriteByte(',')
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('1')
	}
	b.WriteString("]}")
	return b.Bytes()
}

// rawPost sends a POST over a plain TCP connection and reads the answer
// without waiting for the body to be written: a server that refuses early
// stops reading, which a client library would report as a write error.
func rawPost(t *testing.T, addr, path, auth string, body []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nAccept: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			path, addr, auth, MediaType, MediaType, len(body))
		conn.Write(body) // may fail once the server has answered and closed
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// Issue 14 acceptance: an 8 MB body {"objects":[1,1,1,…]} of 4 million
// entries (below max_content_length) is refused within 1 s, and the server
// grows by less than 50 MB — measured as the bytes the Go runtime allocated
// while serving it (an upper bound of the heap growth) and as the process's
// resident set.
func TestPOSTFourMillionEntryEnvelopeRefusedCheaply(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	body := junkEnvelope(4_000_000)
	if len(body) > int(f.srv.cfg.MaxContentLength) {
		t.Fatalf("body is %d bytes, above max_content_length", len(body))
	}
	auth := basic("alice", "alice-pw")
	// Warm up (bcrypt cache, connection code paths) with a small refusal.
	rawPost(t, ts.Listener.Addr().String(), f.colPath("submissions", "objects/"), auth, junkEnvelope(20_000))

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0, haveRSS := processRSS(t)
	start := time.Now()
	resp, got := rawPost(t, ts.Listener.Addr().String(), f.colPath("submissions", "objects/"), auth, body)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	rss1, _ := processRSS(t)

	if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != MediaType {
		t.Fatalf("answer %d %q %s, want a 422 TAXII error", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	var e errorBody
	if err := json.Unmarshal(got, &e); err != nil || e.HTTPStatus != "422" || !strings.Contains(e.Description, "max_objects_per_post") {
		t.Errorf("error resource %s does not name max_objects_per_post: %v", got, err)
	}
	alloc := int64(m1.TotalAlloc - m0.TotalAlloc)
	t.Logf("4M-entry envelope (%d bytes): refused in %v; allocated %.1f MB while serving; RSS %+.1f MB",
		len(body), elapsed, float64(alloc)/1e6, float64(rss1-rss0)/1e6)
	if elapsed > time.Second {
		t.Errorf("refusal took %v, want under 1 s", elapsed)
	}
	if alloc > 50<<20 {
		t.Errorf("allocated %d bytes serving the refusal, want under 50 MB", alloc)
	}
	if haveRSS && rss1-rss0 > 50<<20 {
		t.Errorf("RSS grew by %d bytes, want under 50 MB", rss1-rss0)
	}
	if n := f.count("submissions"); n != 0 {
		t.Errorf("%d versions stored from a refused envelope", n)
	}
}

// Issue 14: the maximum is checked as entries arrive, so the refusal does
// not depend on the envelope's length; one entry over is enough.
func TestPOSTMaxObjectsPerPost(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxObjectsPerPost = 3 })
	objs := []string{string(ind(1, 0, "").raw()), string(ind(2, 0, "").raw()), string(ind(3, 0, "").raw())}
	wantStatus(t, f.post("alice", "submissions", envelopeOf(objs...)), http.StatusAccepted)
	w := f.post("alice", "submissions", envelopeOf(append(objs, string(ind(4, 0, "").raw()))...))
	wantError(t, w, http.StatusUnprocessableEntity, "more than 3 objects")
	wantError(t, f.post("alice", "submissions", envelopeOf(append(objs, `1`)...)), http.StatusUnprocessableEntity, "max_objects_per_post")
	// The refused envelope stored nothing: indicator 4 is unknown.
	wantError(t, f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 4)+"/")), http.StatusNotFound, "")
}

// Issue 14 acceptance: one valid object and a million junk entries (with
// max_objects_per_post raised so the envelope is taken) give a status
// resource under 1 MB, stored and served: exact counts, the failures list
// cut to its first 10,000 entries and a note saying so.
func TestPOSTJunkEntriesGiveSmallStatus(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxObjectsPerPost = 2_000_000 })
	body := junkEnvelope(1_000_000, string(ind(1, 0, "").raw()))
	w := f.post("alice", "submissions", body)
	wantStatus(t, w, http.StatusAccepted)
	t.Logf("status for 1 valid + 1,000,000 junk entries (%d byte body): %d bytes", len(body), w.Body.Len())
	if w.Body.Len() >= 1<<20 {
		t.Errorf("status resource is %d bytes, want under 1 MB", w.Body.Len())
	}
	var st struct {
		statusResp
		OmittedFailures int    `json:"x_taxii_bridge_omitted_failures"`
		Note            string `json:"x_taxii_bridge_note"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if *st.TotalCount != 1_000_001 || *st.SuccessCount != 1 || *st.FailureCount != 1_000_000 || len(st.Successes) != 1 {
		t.Errorf("counts total %d success %d failure %d, successes %d", *st.TotalCount, *st.SuccessCount, *st.FailureCount, len(st.Successes))
	}
	if len(st.Failures) != 10_000 || st.OmittedFailures != 990_000 || st.Note == "" {
		t.Errorf("failures list %d entries, omitted %d, note %q; want 10000, 990000 and a note", len(st.Failures), st.OmittedFailures, st.Note)
	}
	if st.Failures[0].ID != "objects[1]" || st.Failures[9999].ID != "objects[10000]" {
		t.Errorf("failures keep %q … %q, want the first entries", st.Failures[0].ID, st.Failures[9999].ID)
	}
	// Stored and served: the stored form is as small, GET returns it.
	stored, err := f.store.Status(t.Context(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(stored); len(b) >= 1<<20 {
		t.Errorf("stored status is %d bytes", len(b))
	}
	g := f.get("alice", "/api1/status/"+st.ID+"/")
	wantStatus(t, g, http.StatusOK)
	if !bytes.Equal(g.Body.Bytes(), w.Body.Bytes()) {
		t.Errorf("GET status differs from the POST answer")
	}
	// With the default maximum the same body is refused whole.
	d := newFixture(t)
	wantError(t, d.post("alice", "submissions", body), http.StatusUnprocessableEntity, "max_objects_per_post")
}

// Issue 14 acceptance: nothing changes for well-formed envelopes up to the
// maximum — 10,000 valid objects are stored and every id is in successes.
func TestPOSTTenThousandObjectsListsEveryID(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 10,000 objects")
	}
	f := newFixture(t)
	objs := make([]string, 10_000)
	want := map[string]bool{}
	for i := range objs {
		objs[i] = string(ind(i+1, 0, tlpGreen).raw())
		want[stixID("indicator", i+1)] = true
	}
	w := f.post("alice", "submissions", envelopeOf(objs...))
	wantStatus(t, w, http.StatusAccepted)
	st := decode[statusResp](t, w)
	if *st.SuccessCount != 10_000 || *st.FailureCount != 0 || len(st.Successes) != 10_000 {
		t.Fatalf("success %d failure %d, %d listed", *st.SuccessCount, *st.FailureCount, len(st.Successes))
	}
	for _, d := range st.Successes {
		if !want[d.ID] {
			t.Fatalf("unexpected or repeated success %+v", d)
		}
		delete(want, d.ID)
	}
	if strings.Contains(w.Body.String(), "x_taxii_bridge_omitted") {
		t.Errorf("status says entries were omitted")
	}
	pg, err := f.store.Manifest(t.Context(), storage.Query{CollectionID: f.cols["submissions"].ID,
		Versions: storage.VersionFilter{All: true}, MaxTLP: storage.TLPRed, Limit: 20_000})
	if err != nil || len(pg.Items) != 10_000 {
		t.Errorf("%d versions stored (%v), want 10000", len(pg.Items), err)
	}
}

// Issue 14: the status lists are capped by StatusDetailsLimit, each list
// on its own, counts exact.
func TestStatusDetailsLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StatusDetailsLimit = 2 })
	objs := []string{string(ind(1, 0, "").raw()), `1`, string(ind(2, 0, "").raw()), `2`, string(ind(3, 0, "").raw()), `3`}
	w := f.post("alice", "submissions", envelopeOf(objs...))
	wantStatus(t, w, http.StatusAccepted)
	var st map[string]any
	json.Unmarshal(w.Body.Bytes(), &st)
	if st["success_count"] != 3.0 || st["failure_count"] != 3.0 || len(st["successes"].([]any)) != 2 || len(st["failures"].([]any)) != 2 ||
		st["x_taxii_bridge_omitted_successes"] != 1.0 || st["x_taxii_bridge_omitted_failures"] != 1.0 {
		t.Errorf("status %s", w.Body.String())
	}
	if n := f.count("submissions"); n != 3 {
		t.Errorf("%d stored, want 3: the cut is in the status only", n)
	}
}

// Issue 14: a status detail never echoes a large value: ids, versions and
// messages are bounded.
func TestStatusDetailsAreBounded(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("x", 100_000)
	bad := []string{
		`{"type":"indicator","id":"` + long + `","spec_version":"2.1"}`,
		`{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000001","spec_version":"2.1","created":"` + long + `","modified":"` + long + `"}`,
		`{"type":"` + long + `"}`,
		`{"` + long + `":1,"type":"indicator"}`,
	}
	w := f.post("alice", "submissions", envelopeOf(append(bad, string(ind(1, 0, "").raw()))...))
	wantStatus(t, w, http.StatusAccepted)
	if w.Body.Len() > 4096 {
		t.Errorf("status of %d bytes echoes the posted values: %.300s", w.Body.Len(), w.Body.String())
	}
}

// Issue 14: a status expires after status_retention (at least the 24 hours
// of S-8.3) and is then 404, like an unknown id.
func TestStatusRetention(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StatusRetention = 48 * time.Hour })
	st := decode[statusResp](t, f.post("alice", "submissions", envelopeOf(string(ind(1, 0, "").raw()))))
	f.clock.mu.Lock()
	f.clock.t = f.clock.t.Add(47 * time.Hour)
	f.clock.mu.Unlock()
	wantStatus(t, f.get("alice", "/api1/status/"+st.ID+"/"), http.StatusOK)
	f.clock.mu.Lock()
	f.clock.t = f.clock.t.Add(time.Hour)
	f.clock.mu.Unlock()
	wantError(t, f.get("alice", "/api1/status/"+st.ID+"/"), http.StatusNotFound, "no such status")
	// The next POST deletes it from the store.
	wantStatus(t, f.post("alice", "submissions", envelopeOf(string(ind(2, 0, "").raw()))), http.StatusAccepted)
	if _, err := f.store.Status(t.Context(), st.ID); err == nil {
		t.Errorf("expired status still stored")
	}
}

// Issue 14: every query bound is checked before the work it bounds and
// answered with a TAXII error resource.
func TestQueryBounds(t *testing.T) {
	f := newFixture(t)
	f.putN("intel", 3)
	objects := f.colPath("intel", "objects/")
	ids := func(n, size int) string {
		var out []string
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("indicator--%036d", i)
			if size > len(id) {
				id += strings.Repeat("a", size-len(id))
			}
			out = append(out, id)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name, query, want string
	}{
		{"query string too long", "match[type]=" + strings.Repeat("a", maxQueryBytes), "query string of"},
		{"too many match[id] values", "match[id]=" + ids(maxMatchValues+1, 0), "more than 1000 values"},
		{"match values too large", "match[id]=" + ids(500, 200), "match[...] values add up"},
		{"next too long", "next=" + strings.Repeat("a", maxNextBytes+1), "longer than any cursor"},
		{"next not a cursor", "next=" + strings.Repeat("a", 100), "next:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, f.get("alice", objects+"?"+tt.query), http.StatusBadRequest, tt.want)
		})
	}
	wantError(t, f.do(req{method: http.MethodDelete, path: f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/") + "?x=" + strings.Repeat("a", maxQueryBytes), who: "alice"}),
		http.StatusBadRequest, "query string of")

	// The largest filter allowed still pages: its cursor fits maxNextBytes,
	// and next sent together with the filter fits maxQueryBytes.
	var real []string
	for i := 1; i <= 3; i++ {
		real = append(real, stixID("indicator", i))
	}
	big := strings.Join(real, ",") + "," + ids(maxMatchValues-3, 60)
	q := "match[id]=" + url.QueryEscape(big) + "&limit=1"
	w := f.get("alice", objects+"?"+q)
	wantStatus(t, w, http.StatusOK)
	env := decode[envelopeResp](t, w)
	if env.Next == nil {
		t.Fatalf("no next on a page with more: %s", w.Body.String())
	}
	if len(*env.Next) > maxNextBytes {
		t.Fatalf("issued a next of %d bytes, above maxNextBytes", len(*env.Next))
	}
	q2 := q + "&next=" + url.QueryEscape(*env.Next)
	if len(q2) > maxQueryBytes {
		t.Fatalf("filter + next is %d bytes, above maxQueryBytes", len(q2))
	}
	wantStatus(t, f.get("alice", objects+"?"+q2), http.StatusOK)
}

// Issue 14: what net/http answers before the handler (documented on
// NewHTTPServer): an oversized head is a 431, a malformed request line a
// 400, both plain text; a long query string that fits the head limit
// reaches the handler and gets a TAXII error.
func TestHeadLimitsAnsweredByNetHTTP(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(f.srv, nil)
	go srv.Serve(ln)
	defer srv.Close()
	send := func(head string) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go conn.Write([]byte(head))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	resp, body := send("GET /taxii2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", MaxHeaderBytes+8192) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("oversized head: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = send("GARBAGE\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("malformed request line: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = send("GET " + f.colPath("intel", "objects/") + "?match[type]=" + strings.Repeat("a", maxQueryBytes) + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("alice", "alice-pw") + "\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != MediaType || !strings.Contains(body, `"http_status":"400"`) {
		t.Errorf("long query string: %d %q %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// The envelope decoder's whole-envelope refusals (issue 14 keeps them).
func TestDecodeEnvelopeRefusals(t *testing.T) {
	tests := []struct {
		body   string
		status int
	}{
		{``, http.StatusBadRequest},
		{`{"objects":[{}`, http.StatusBadRequest},
		{`{"objects":[1,]}`, http.StatusBadRequest},
		{`[]`, http.StatusUnprocessableEntity},
		{`{}`, http.StatusUnprocessableEntity},
		{`{"objects":[]}`, http.StatusUnprocessableEntity},
		{`{"objects":{}}`, http.StatusUnprocessableEntity},
		{`{"objects":[1],"objects":[1]}`, http.StatusUnprocessableEntity},
		{`{"objects":[1],"OBJECTS":[1]}`, http.StatusUnprocessableEntity},
		{`{"Objects":[1]}`, http.StatusUnprocessableEntity},
		{`{"objects":[1]} {}`, http.StatusUnprocessableEntity},
		{`{"objects":[1]} x`, http.StatusBadRequest},
		{`{` + strings.Repeat(`"a":1,`, maxEnvelopeProperties) + `"objects":[1]}`, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		_, err := decodeEnvelope(strings.NewReader(tt.body), 10, func(int, []byte) error { return nil })
		ae, ok := err.(*apiError)
		if !ok || ae.status != tt.status {
			t.Errorf("decodeEnvelope(%.60q) = %v, want %d", tt.body, err, tt.status)
		}
	}
	n, err := decodeEnvelope(strings.NewReader(` {"more":false,"objects":[1, {"a":[2]} ,"x"],"next":"n"} `), 10, func(int, []byte) error { return nil })
	if err != nil || n != 3 {
		t.Errorf("decodeEnvelope = %d, %v; want 3 entries", n, err)
	}
}

func TestFoldName(t *testing.T) {
	for _, tt := range [][2]string{
		{"type", "TYPE"}, {"object_marking_refs", "OBJECT_MARKING_REFS"}, {"spec_version", "ſpec_version"},
		{"kind", "\u212Aind"}, {"Ω", "ω"}, {"objects", "ObJeCtS"},
	} {
		if foldName(tt[0]) != foldName(tt[1]) {
			t.Errorf("foldName(%q) = %q, foldName(%q) = %q; want equal", tt[0], foldName(tt[0]), tt[1], foldName(tt[1]))
		}
		if !strings.EqualFold(tt[0], tt[1]) {
			t.Errorf("test pair %q %q is not EqualFold", tt[0], tt[1])
		}
	}
	if foldName("type") == foldName("typе") { // Cyrillic е
		t.Errorf("different letters fold alike")
	}
}

// Issue 14: the lists of a status also have a byte budget, counted as the
// stored JSON (escaping included), so a status is always stored.
func TestStatusByteBudget(t *testing.T) {
	f := newFixture(t)
	id := strings.Repeat("<", maxDetailID)
	objs := []string{string(ind(1, 0, "").raw())}
	for i := 0; i < 8000; i++ {
		objs = append(objs, `{"type":"indicator","id":"`+id+`"}`)
	}
	w := f.post("alice", "submissions", envelopeOf(objs...))
	wantStatus(t, w, http.StatusAccepted)
	var st map[string]any
	json.Unmarshal(w.Body.Bytes(), &st)
	n := len(st["failures"].([]any))
	if st["failure_count"] != 8000.0 || n == 8000 || n == 0 || st["x_taxii_bridge_omitted_failures"] != float64(8000-n) {
		t.Errorf("failure_count %v, %d listed, omitted %v", st["failure_count"], n, st["x_taxii_bridge_omitted_failures"])
	}
	stored, err := f.store.Status(t.Context(), st["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(stored); len(b) > storage.MaxStatusBytes {
		t.Errorf("stored status is %d bytes", len(b))
	}
}
