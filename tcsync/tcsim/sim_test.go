package tcsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

func newSim(t *testing.T, opts Options) (*Simulator, *httptest.Server) {
	t.Helper()
	if opts.APIToken == "" {
		opts.APIToken = "tok"
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// get fetches target with token auth and returns status and body.
func get(t *testing.T, srv *httptest.Server, target string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+target, nil)
	req.Header.Set("Authorization", "TC-Token tok")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type page struct {
	Next   string            `json:"next"`
	Prev   string            `json:"prev"`
	Count  *int              `json:"count"`
	Status string            `json:"status"`
	Data   []tcapi.Indicator `json:"data"`
}

func getPage(t *testing.T, srv *httptest.Server, target string) page {
	t.Helper()
	code, b := get(t, srv, target)
	if code != 200 {
		t.Fatalf("GET %s = %d %s", target, code, b)
	}
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return p
}

func q(v ...string) string {
	vals := url.Values{}
	for i := 0; i+1 < len(v); i += 2 {
		vals.Add(v[i], v[i+1])
	}
	return vals.Encode()
}

func TestDeterministic(t *testing.T) {
	target := "/api/v3/indicators?" + q("fields", "tags", "fields", "attributes", "fields", "associatedGroups", "resultLimit", "1000")
	_, a1 := newSim(t, Options{Seed: 42, Indicators: 500, Groups: 30})
	_, a2 := newSim(t, Options{Seed: 42, Indicators: 500, Groups: 30})
	_, b := newSim(t, Options{Seed: 43, Indicators: 500, Groups: 30})
	_, x := get(t, a1, target)
	_, y := get(t, a2, target)
	_, z := get(t, b, target)
	if !bytes.Equal(x, y) {
		t.Error("same seed served different bytes")
	}
	if bytes.Equal(x, z) {
		t.Error("different seeds served the same bytes")
	}
}

// Issue 4: 1,000,000 indicators cost no more memory than 1,000.
func TestLazyMemory(t *testing.T) {
	measure := func(n int) uint64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := New(Options{Seed: 1, Indicators: n, Groups: n / 100, APIToken: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	}
	small, big := measure(1000), measure(1_000_000)
	if big > small+64<<10 {
		t.Errorf("1,000,000 indicators retain %d bytes, 1,000 retain %d", big, small)
	}
	// A page at the far end is served without walking from the start.
	_, srv := newSim(t, Options{Seed: 1, Indicators: 1_000_000, Groups: 10_000})
	start := time.Now()
	p := getPage(t, srv, "/api/v3/indicators?"+q("tql", fmt.Sprintf("id > %d", IndicatorID(999_990)), "sorting", "id ASC",
		"resultLimit", "100", "count", "true"))
	if len(p.Data) == 0 || p.Data[0].ID <= IndicatorID(999_990) || p.Next != "" {
		t.Errorf("last page: %d items, first %d, next %q", len(p.Data), p.Data[0].ID, p.Next)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("page at the end took %v", d)
	}
}

// Everything issue 4 §2 lists occurs in a few thousand generated objects.
func TestCoverage(t *testing.T) {
	s, srv := newSim(t, Options{Seed: 7, Indicators: 3600, Groups: 40, IncludeInactiveByDefault: true})
	types, labels, rels, customs, hostileSeen := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var unlabelled, inactive, private, noRating, noConfidence, attrLabel, hexUpper, sizeStr, sizeNum int
	ratings := map[float64]bool{}
	target := "/api/v3/indicators?" + q("fields", "tags", "fields", "securityLabels", "fields", "attributes", "fields", "attributes.securityLabels",
		"fields", "fileActions", "fields", "customAssociations", "fields", "associatedGroups", "resultLimit", "10000")
	code, raw := get(t, srv, target)
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	if bytes.Contains(raw, []byte(":null")) {
		t.Error("a field was sent as null; ThreatConnect omits empty fields (§17.9)")
	}
	sizeStr = bytes.Count(raw, []byte(`"size":"`))
	sizeNum = bytes.Count(raw, []byte(`"size":`)) - sizeStr
	var p page
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	all := string(raw)
	for _, in := range p.Data {
		types[in.Type] = true
		if len(in.SecurityLabels.Data) == 0 {
			unlabelled++
		}
		for _, l := range in.SecurityLabels.Data {
			labels[l.Name] = true
		}
		for _, a := range in.Attributes.Data {
			if len(a.SecurityLabels.Data) > 0 {
				attrLabel++
			}
		}
		for _, fa := range in.FileActions.Data {
			rels[fa.Relationship] = true
		}
		for _, c := range in.CustomAssociations.Data {
			customs[c.CustomAssociationName] = true
		}
		if !in.Active {
			inactive++
		}
		if in.PrivateFlag {
			private++
		}
		if in.Rating == nil {
			noRating++
		} else {
			ratings[*in.Rating] = true
		}
		if in.Confidence == nil {
			noConfidence++
		}
		if in.MD5 != "" && in.MD5 == strings.ToUpper(in.MD5) {
			hexUpper++
		}
	}
	for _, h := range Hostile() {
		in, _ := json.Marshal(h)
		hostileSeen[h] = strings.Contains(all, string(in[1:len(in)-1]))
	}
	for _, ty := range tcapi.IndicatorTypes() {
		if !types[ty] {
			t.Errorf("no %s indicator", ty)
		}
	}
	for _, l := range SecurityLabels() {
		if !labels[l.Name] {
			t.Errorf("no %s label", l.Name)
		}
	}
	for _, r := range linkRules {
		if r.file && !rels[r.name] || !r.file && !customs[r.name] {
			t.Errorf("no %q association", r.name)
		}
	}
	for h, ok := range hostileSeen {
		if !ok {
			t.Errorf("hostile value %.30q never served", h)
		}
	}
	counts := map[string]int{"unlabelled": unlabelled, "inactive": inactive, "private": private, "no rating": noRating,
		"no confidence": noConfidence, "attribute with label": attrLabel, "upper-case md5": hexUpper, "size as string": sizeStr, "size as number": sizeNum}
	for k, v := range counts {
		if v == 0 {
			t.Errorf("no %s indicator", k)
		}
	}
	if len(ratings) < 5 {
		t.Errorf("ratings spread only over %v", ratings)
	}
	// Groups: every type and its type-specific fields, vote counts as strings.
	code, raw = get(t, srv, "/api/v3/groups?"+q("fields", "associatedGroups", "fields", "associatedIndicators", "resultLimit", "100"))
	if code != 200 || !bytes.Contains(raw, []byte(`"upVoteCount":"`)) {
		t.Fatalf("groups: %d, vote counts not strings", code)
	}
	var gp struct{ Data []tcapi.Group }
	json.Unmarshal(raw, &gp)
	gtypes := map[string]bool{}
	for _, g := range gp.Data {
		gtypes[g.Type] = true
		switch g.Type {
		case tcapi.GroupSignature:
			if g.FileText == "" || g.FileType == "" {
				t.Errorf("signature without rule: %+v", g)
			}
		case tcapi.GroupEmail:
			if g.From == "" || g.EmailSubject == "" {
				t.Errorf("email without headers")
			}
		case tcapi.GroupDocument, tcapi.GroupReport:
			if g.FileName == "" || g.FileSize == 0 {
				t.Errorf("%s without file", g.Type)
			}
		}
		if len(g.AssociatedIndicators.Data) == 0 {
			t.Errorf("group %d has no indicators", g.ID)
		}
	}
	for _, ty := range tcapi.GroupTypes() {
		if !gtypes[ty] {
			t.Errorf("no %s group", ty)
		}
	}
	if !bytes.Contains(raw, []byte(`"associatedGroups":{"data":[`)) || !bytes.Contains(raw, []byte(`"associatedGroups":{}`)) {
		t.Error("group-group associations and empty {} expansions both expected")
	}
	_ = s
}

// Envelope rules of threatconnect-v3.md §5.1 and §17.3.
func TestEnvelope(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 1, Indicators: 50, IncludeInactiveByDefault: true})
	p := getPage(t, srv, "/api/v3/indicators?"+q("resultLimit", "20", "count", "true", "tql", `typeName != "x y"`))
	if p.Count == nil || *p.Count != 50 || p.Prev != "" || p.Next == "" || len(p.Data) != 20 {
		t.Fatalf("first page: count %v prev %q next %q len %d", p.Count, p.Prev, p.Next, len(p.Data))
	}
	if !strings.HasPrefix(p.Next, srv.URL+"/api/v3/indicators?") || !strings.Contains(p.Next, "resultStart=20") ||
		!strings.Contains(p.Next, "typeName%20%21%3D%20%22x%20y%22") || !strings.Contains(p.Next, "count=true") {
		t.Errorf("next = %q: want absolute, all parameters kept, %%20 for spaces", p.Next)
	}
	u, _ := url.Parse(p.Next)
	p2 := getPage(t, srv, u.RequestURI())
	if p2.Count != nil || p2.Prev == "" || p2.Next == "" || p2.Data[0].ID != IndicatorID(21) {
		t.Errorf("second page: count %v prev %q next %q", p2.Count, p2.Prev, p2.Next)
	}
	u, _ = url.Parse(p2.Next)
	p3 := getPage(t, srv, u.RequestURI())
	if p3.Next != "" || len(p3.Data) != 10 {
		t.Errorf("last page: next %q, %d items", p3.Next, len(p3.Data))
	}
	// An empty result.
	p4 := getPage(t, srv, "/api/v3/indicators?"+q("tql", `summary = "nothing"`))
	if p4.Status != "Success" || len(p4.Data) != 0 || p4.Next != "" {
		t.Errorf("empty result: %+v", p4)
	}
	// Requested but empty expansions are {}.
	_, raw := get(t, srv, "/api/v3/indicators/"+fmt.Sprint(IndicatorID(1))+"?fields=associatedIndicators&fields=fileActions&fields=tags")
	if !bytes.Contains(raw, []byte(`"tags":`)) {
		t.Errorf("tags expansion missing: %s", raw)
	}
}

func TestOffsetPagingMatchesOnePage(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 8, Indicators: 700})
	tql := `typeName IN ("Host","URL","File") OR confidence GT 50`
	whole := getPage(t, srv, "/api/v3/indicators?"+q("tql", tql, "resultLimit", "10000"))
	var paged []int64
	target := "/api/v3/indicators?" + q("tql", tql, "resultLimit", "33")
	for target != "" {
		p := getPage(t, srv, target)
		for _, in := range p.Data {
			paged = append(paged, in.ID)
		}
		target = ""
		if p.Next != "" {
			u, _ := url.Parse(p.Next)
			target = u.RequestURI()
		}
	}
	var want []int64
	for _, in := range whole.Data {
		want = append(want, in.ID)
	}
	if !slices.Equal(paged, want) || len(want) < 100 {
		t.Errorf("offset pages gave %d ids, one page %d", len(paged), len(want))
	}
}

func TestSorting(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 9, Indicators: 300})
	p := getPage(t, srv, "/api/v3/indicators?"+q("sorting", "lastModified desc", "resultLimit", "300"))
	if !slices.IsSortedFunc(p.Data, func(a, b tcapi.Indicator) int { return b.LastModified.Compare(a.LastModified) }) {
		t.Error("not sorted by lastModified desc")
	}
	p = getPage(t, srv, "/api/v3/indicators?"+q("sorting", "id DESC", "resultLimit", "5"))
	if p.Data[0].ID != IndicatorID(300) && p.Data[0].ID != IndicatorID(299) {
		t.Errorf("id desc starts at %d", p.Data[0].ID)
	}
	code, raw := get(t, srv, "/api/v3/indicators?sorting=color+asc")
	if code != 400 || !bytes.Contains(raw, []byte("sorting")) {
		t.Errorf("bad sort: %d %s", code, raw)
	}
}

// threatconnect-v3.md §14, §17: error shapes.
func TestErrors(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 1, Indicators: 5})
	tests := []struct {
		target string
		code   int
		msg    string
	}{
		{"/api/v3/indicators?resultLimit=10001", 400, "resultLimit"},
		{"/api/v3/indicators?resultLimit=abc", 400, "resultLimit"},
		{"/api/v3/indicators?resultStart=-1", 400, "resultStart"},
		{"/api/v3/indicators?fields=nope", 400, "Invalid fields parameter value: nope"},
		{"/api/v3/indicators?fields=associatedGroups.attributes.securityLabels", 400, "link limit"},
		{"/api/v3/indicators?owner=Nobody", 404, "The requested owner was not found"},
		{"/api/v3/indicators/999", 404, "The requested resource was not found"},
		{"/api/v3/cases", 404, "The requested resource was not found"},
		{"/api/v3/indicators?" + q("tql", `lastModified GEQ "2024-05-01T00:00:00.123Z"`), 400, "TQL Parse Error: invalid date"},
		{"/api/v3/indicators?" + q("tql", `active = true`), 400, "TQL Parse Error: unknown keyword"},
	}
	for _, tt := range tests {
		code, raw := get(t, srv, tt.target)
		var env struct{ Message, Status string }
		json.Unmarshal(raw, &env)
		if code != tt.code || env.Status != "Error" || !strings.Contains(env.Message, tt.msg) {
			t.Errorf("GET %s = %d %s; want %d with %q", tt.target, code, raw, tt.code, tt.msg)
		}
	}
}

// The TQL subset of threatconnect-v3.md §11 and §17.6, evaluated on one indicator.
func TestTQL(t *testing.T) {
	s, err := New(Options{Seed: 1, Indicators: 100, Groups: 20, APIToken: "x"})
	if err != nil {
		t.Fatal(err)
	}
	rating, conf := 4.0, 65
	in := &tcapi.Indicator{ID: IndicatorID(6), Type: "ASN", Summary: "ASN6", OwnerName: `O'Neil "Org"`, OwnerID: 7,
		LastModified: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), DateAdded: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Rating: &rating, Confidence: &conf, Active: true, ASNumber: "ASN6", Description: `back\slash`,
		Tags:           tcapi.List[tcapi.Tag]{Data: []tcapi.Tag{{Name: "APT28"}, {Name: `a'] OR [file:name = 'x`}}},
		SecurityLabels: tcapi.List[tcapi.SecurityLabel]{Data: []tcapi.SecurityLabel{{Name: "TLP:AMBER"}}}}
	subj := indSubject{s, in}
	env := &evalEnv{now: time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC)}
	tests := []struct {
		tql  string
		want bool
	}{
		{`typeName = "ASN"`, true},
		{`typename eq 'asn'`, true},
		{`TYPENAME == "Host"`, false},
		{`typeName IN ("Host", "ASN")`, true},
		{`typeName NOT IN ("Host", "ASN")`, false},
		{`summary != "ASN6"`, false},
		{`summary NE "x"`, true},
		{`ownerName = "O\'Neil \"Org\""`, true},
		{`owner = 7`, true},
		{`description = "back\\slash"`, true},
		{`rating GEQ 4`, true},
		{`rating > 4`, false},
		{`rating >= 3.5 AND rating <= 4.0`, true},
		{`confidence GT 64 AND confidence LT 66`, true},
		{`confidence LEQ 64`, false},
		{`threatAssessScore > 0`, false},
		{`threatAssessScore IS NULL`, true},
		{`confidence IS NOT NULL`, true},
		{`indicatorActive = true`, true},
		{`indicatorActive EQ False`, false},
		{`tag = "apt28"`, true},
		{`tag = "a\'] OR [file:name = \'x"`, true},
		{`tag != "APT28"`, false},
		{`tag LIKE "%PT2%"`, true},
		{`tag NOT LIKE "APT%"`, false},
		{`summary CONTAINS "SN"`, true},
		{`summary STARTSWITH "asn"`, true},
		{`summary ENDSWITH "7"`, false},
		{`summary NOT CONTAINS "zz"`, true},
		{`securityLabel = "TLP:AMBER"`, true},
		{`hasSecurityLabel(name = "TLP:RED")`, false},
		{`hasTag(name = "APT28")`, true},
		{`lastModified GEQ "2024-05-01T12:00:00Z"`, true},
		{`lastModified LT "2024-05-01"`, false},
		{`lastModified > "2024-05-01 11:59:59"`, true},
		{`lastModified LEQ "NOW()"`, true},
		{`dateAdded < "TODAY()"`, true},
		{`(typeName = "Host" OR typeName = "ASN") AND (confidence > 90 OR rating = 4)`, true},
		{`typeName = "Host" OR typeName = "ASN" AND confidence > 90`, false},
		{`id = ` + fmt.Sprint(IndicatorID(6)), true},
		{`id > ` + fmt.Sprint(IndicatorID(5)), true},
		{`id > ` + fmt.Sprint(IndicatorID(6)), false},
		{`hasGroup(typeName = "all" AND isGroup = false AND hasIndicator(id = ` + fmt.Sprint(IndicatorID(13)) + `))`, true},
		{`hasGroup(id = ` + fmt.Sprint(GroupID(6)) + `)`, false}, // every third generated indicator has no group
		{`associatedGroup = ` + fmt.Sprint(GroupID(6)), false},
		{`value1 = "ASN6"`, true},
	}
	for _, tt := range tests {
		n, err := parseTQL(tt.tql, indicatorScope)
		if err != nil {
			t.Errorf("parse %s: %v", tt.tql, err)
			continue
		}
		if got := n.eval(subj, env); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.tql, got, tt.want)
		}
	}
	bad := []string{
		`typeName = `, `typeName "ASN"`, `(typeName = "ASN"`, `typeName = "ASN")`, `color = "red"`,
		`typeName = "unterminated`, `confidence = "high"`, `indicatorActive = maybe`, `lastModified > 2024`,
		`typeName IN "ASN"`, `typeName IN ("a" "b")`, `confidence LIKE "5%"`, `summary IS "x"`, `typeName = "a" AND`,
		`hasGroup(color = 1)`, `summary NOT = "x"`, `summary ! "x"`, `#`,
	}
	for _, b := range bad {
		if _, err := parseTQL(b, indicatorScope); err == nil || !strings.HasPrefix(err.Error(), "TQL Parse Error") {
			t.Errorf("parse %q: err = %v, want a TQL Parse Error", b, err)
		}
	}
}

func TestMutations(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	s, srv := newSim(t, Options{Seed: 1, Indicators: 30, Groups: 5, Now: func() time.Time { return now }})
	id := IndicatorID(1)
	if err := s.Modify(id, func(in *tcapi.Indicator) { in.Description = "new"; in.ID = 1 }); err != nil {
		t.Fatal(err)
	}
	in, _ := s.Indicator(id)
	if in.Description != "new" || in.ID != id || !in.LastModified.Equal(now.Truncate(time.Second)) {
		t.Errorf("modified: %q id %d lastModified %v", in.Description, in.ID, in.LastModified)
	}
	p := getPage(t, srv, "/api/v3/indicators?"+q("tql", `lastModified GEQ "2026-01-01T00:00:00Z"`))
	if len(p.Data) != 1 || p.Data[0].ID != id {
		t.Errorf("lastModified window after modify: %d items", len(p.Data))
	}
	if err := s.Deactivate(IndicatorID(2)); err != nil {
		t.Fatal(err)
	}
	p = getPage(t, srv, "/api/v3/indicators?"+q("tql", `indicatorActive = false AND lastModified GEQ "2026-01-01T00:00:00Z"`))
	if len(p.Data) != 1 || p.Data[0].ID != IndicatorID(2) {
		t.Errorf("deactivated not found")
	}
	newID, err := s.Add(tcapi.Indicator{Type: tcapi.TypeFile, MD5: "AA", SHA256: "BB", Active: true})
	if err != nil || newID != IndicatorID(31) {
		t.Fatalf("Add = %d, %v", newID, err)
	}
	added, _ := s.Indicator(newID)
	if added.Summary != "AA : BB" {
		t.Errorf("derived summary = %q, want the present hashes joined (§6.1)", added.Summary)
	}
	gid := GroupID(2)
	before, _ := s.Group(gid)
	if err := s.Associate(newID, gid); err != nil {
		t.Fatal(err)
	}
	g, _ := s.Group(gid)
	if !g.LastModified.Equal(before.LastModified) {
		t.Errorf("association moved the group's lastModified; ThreatConnect leaves it alone (§9.7)")
	}
	p = getPage(t, srv, "/api/v3/indicators?"+q("tql", fmt.Sprintf("hasGroup(id = %d)", gid), "resultLimit", "100"))
	if !slices.ContainsFunc(p.Data, func(in tcapi.Indicator) bool { return in.ID == newID }) {
		t.Error("association not visible from the group side")
	}
	if err := s.Disassociate(newID, gid); err != nil {
		t.Fatal(err)
	}
	p = getPage(t, srv, "/api/v3/indicators?"+q("tql", fmt.Sprintf("hasGroup(id = %d)", gid), "resultLimit", "100"))
	if slices.ContainsFunc(p.Data, func(in tcapi.Indicator) bool { return in.ID == newID }) {
		t.Error("removed association still visible from the group side")
	}
	if g2, _ := s.Group(gid); !g2.LastModified.Equal(before.LastModified) {
		t.Errorf("removing an association moved the group's lastModified")
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id); err == nil {
		t.Error("deleting twice succeeded")
	}
	if code, _ := get(t, srv, fmt.Sprintf("/api/v3/indicators/%d", id)); code != 404 {
		t.Errorf("deleted indicator: %d", code)
	}
	_, raw := get(t, srv, "/api/v3/indicators/deleted?deletedSince=2026-01-01T00:00:00Z")
	if !bytes.Contains(raw, []byte(`"summary":"11.0.0.1"`)) || !bytes.Contains(raw, []byte(`"count":1`)) {
		t.Errorf("deleted list: %s", raw)
	}
	if err := s.Modify(IndicatorID(999), func(*tcapi.Indicator) {}); err == nil {
		t.Error("modifying a missing id succeeded")
	}
}

// fields=genericCustomIndicatorValues replaces the named keys of custom types (§6.1).
func TestGenericCustomIndicatorValues(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 1, Indicators: 12, IncludeInactiveByDefault: true})
	_, raw := get(t, srv, "/api/v3/indicators?fields=genericCustomIndicatorValues&resultLimit=12")
	if bytes.Contains(raw, []byte(`"Key Name"`)) || !bytes.Contains(raw, []byte(`"value3":"REG_`)) || !bytes.Contains(raw, []byte(`"ip":`)) {
		t.Errorf("generic values not applied to custom types only: %s", raw)
	}
}

// /v3/indicatorAttributes and /v3/groupAttributes with TQL (threatconnect-v3.md §3, §17.2).
func TestAttributeEndpoints(t *testing.T) {
	s, srv := newSim(t, Options{Seed: 3, Indicators: 200, Groups: 20})
	var id int64
	var want []tcapi.Attribute
	for i := 1; i <= 200 && len(want) < 2; i++ {
		in, _ := s.Indicator(IndicatorID(i))
		id, want = in.ID, in.Attributes.Data
	}
	code, raw := get(t, srv, "/api/v3/indicatorAttributes?"+q("tql", fmt.Sprintf("indicatorId = %d", id), "fields", "securityLabels"))
	var p struct {
		Data []tcapi.Attribute
	}
	if code != 200 || json.Unmarshal(raw, &p) != nil || len(p.Data) != len(want) || p.Data[0].IndicatorID != id || p.Data[0].Value != want[0].Value {
		t.Errorf("indicator attributes: %d %s", code, raw)
	}
	code, raw = get(t, srv, "/api/v3/groupAttributes?"+q("tql", fmt.Sprintf("hasGroup(id in (%d,%d)) AND type = \"Description\"", GroupID(10), GroupID(15))))
	p.Data = nil
	if code != 200 || json.Unmarshal(raw, &p) != nil || len(p.Data) != 2 || p.Data[1].GroupID != GroupID(15) {
		t.Errorf("group attributes: %d %s", code, raw)
	}
	code, raw = get(t, srv, "/api/v3/indicatorAttributes?"+q("resultLimit", "7"))
	p.Data = nil
	if code != 200 || json.Unmarshal(raw, &p) != nil || len(p.Data) != 7 || !bytes.Contains(raw, []byte(`"next":`)) {
		t.Errorf("attribute paging: %d, %d items", code, len(p.Data))
	}
}

// OPTIONS descriptors (threatconnect-v3.md §4.7).
func TestOptions(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 1, Indicators: 1})
	for _, tt := range []struct{ path, want string }{
		{"/api/v3/indicators/tql", `{"keyword":"indicatoractive","name":"indicatoractive","type":"Boolean"}`},
		{"/api/v3/groups/fields", `{"name":"associatedIndicators","includedByDefault":false}`},
	} {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+tt.path, nil)
		req.Header.Set("Authorization", "TC-Token tok")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(tt.want)) || !bytes.Contains(b, []byte(`"count":`)) {
			t.Errorf("OPTIONS %s = %d %s", tt.path, resp.StatusCode, b)
		}
	}
}

// TestSeedParityData: the data issue 10 needs is served — File Actions with
// expanded labels, DNS resolutions of DNS-active hosts, false-positive
// counts, and hosts whose xn-- label is not punycode.
func TestSeedParityData(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 3, Indicators: 1200, IncludeInactiveByDefault: true})
	p := getPage(t, srv, "/api/v3/indicators?"+q("resultLimit", "1200", "fields", "fileActions", "fields", "fileActions.securityLabels",
		"fields", "dnsResolution", "fields", "falsePositives"))
	var actions, labelled, resolutions, falsePos, badPuny int
	for _, in := range p.Data {
		for _, fa := range in.FileActions.Data {
			actions++
			if fa.Indicator != nil && len(fa.Indicator.SecurityLabels.Data) > 0 {
				labelled++
			}
		}
		for _, r := range in.DNSResolution.Data {
			for _, a := range r.Addresses.Data {
				if a.Type != tcapi.TypeAddress || a.IP == "" || r.ResolutionDate.IsZero() {
					t.Errorf("host %s: resolution %+v", in.Summary, r)
				}
				resolutions++
			}
		}
		if in.FalsePositives != nil && *in.FalsePositives > 0 {
			falsePos++
		}
		if strings.HasPrefix(in.HostName, "xn--bad_puny") {
			badPuny++
		}
	}
	if actions == 0 || labelled == 0 || resolutions == 0 || falsePos == 0 || badPuny == 0 {
		t.Errorf("file actions %d (labelled %d), resolutions %d, false positives %d, bad punycode hosts %d; want each > 0",
			actions, labelled, resolutions, falsePos, badPuny)
	}
}

// TestTQLKeywordsPerEndpoint: indicator-only keywords are rejected on
// /v3/groups and group-only keywords on /v3/indicators, as ThreatConnect
// answers: 400 with a "TQL Parse Error" message naming the keyword.
func TestTQLKeywordsPerEndpoint(t *testing.T) {
	_, srv := newSim(t, Options{Seed: 1, Indicators: 10, Groups: 10})
	for _, tt := range []struct{ path, tql, word string }{
		{"/api/v3/groups", "rating GEQ 4", "rating"},
		{"/api/v3/groups", "confidence > 50", "confidence"},
		{"/api/v3/groups", "indicatorActive = true", "indicatorActive"},
		{"/api/v3/indicators", `status = "New"`, "status"},
		{"/api/v3/indicators", `eventDate > "2024-01-01"`, "eventDate"},
	} {
		code, body := get(t, srv, tt.path+"?"+q("tql", tt.tql))
		if code != http.StatusBadRequest || !strings.Contains(string(body), "TQL Parse Error") || !strings.Contains(string(body), tt.word) {
			t.Errorf("%s tql=%s: %d %s; want 400 TQL Parse Error naming %s", tt.path, tt.tql, code, body, tt.word)
		}
	}
	if code, body := get(t, srv, "/api/v3/groups?"+q("tql", `typeName IN ("Report") AND status = "New"`)); code != http.StatusOK {
		t.Errorf("valid group TQL: %d %s", code, body)
	}
}
