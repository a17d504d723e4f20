package tcapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// replay serves a recorded response for the first request and an empty
// page afterwards, recording every request target.
func replay(t *testing.T, file string) (*Client, *[]string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) == 1 {
			w.Write(body)
			return
		}
		w.Write([]byte(`{"data":[],"status":"Success"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL + "/api", APIToken: "t", MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the decoded value; run go test -update and review the diff.\ngot:\n%s", path, got)
	}
}

// threatconnect-v3.md §15.1: the indicator page with every expansion.
func TestGoldenIndicatorPage(t *testing.T) {
	c, seen := replay(t, "indicators_page.json")
	var got []Indicator
	err := c.Indicators(t.Context(), Query{Fields: []string{"tags"}}, func(p []Indicator) error {
		got = append(got, p...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("decoded %d indicators, want 2", len(got))
	}
	host, file := got[0], got[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"host id", host.ID, int64(4)},
		{"host value", host.Value(), "ultrabadguy.com"},
		{"host rating", *host.Rating, 4.0},
		{"host confidence", *host.Confidence, 65},
		{"host threatAssessScore", *host.ThreatAssessScore, 405},
		{"host calScore", *host.CalScore, 410},
		{"host lastModified", host.LastModified, time.Date(2024, 5, 1, 14, 25, 55, 0, time.UTC)},
		{"host ATT&CK tag", host.Tags.Data[1].TechniqueID, "T1566"},
		{"host label", host.SecurityLabels.Data[0].Name, "TLP:AMBER"},
		{"host groups", len(host.AssociatedGroups.Data), 2},
		{"report file size", int64(host.AssociatedGroups.Data[1].FileSize), int64(24467)},
		{"report createdBy", host.AssociatedGroups.Data[1].CreatedBy.Pseudonym, "annl"},
		{"associated indicator", host.AssociatedIndicators.Data[0].Value(), "107.180.48.66"},
		{"associated confidence 0 is set", *host.AssociatedIndicators.Data[0].Confidence, 0},
		{"attribute default", host.Attributes.Data[0].Default, true},
		{"attribute id", host.Attributes.Data[1].ID, int64(71670441)},
		{"whoisActive", host.WhoisActive, true},
		{"file value", file.Value(), "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"},
		{"file rating absent", file.Rating == nil, true},
		{"file tags {}", len(file.Tags.Data), 0},
		{"file observations 0", *file.Observations, 0},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	// Keyset paging asked for the ids after the last one seen (see Query).
	if len(*seen) != 2 || !strings.Contains((*seen)[1], "id+%3E+28") {
		t.Errorf("requests = %q, want a second one with id > 28", *seen)
	}
	checkGolden(t, "indicators_page.golden.json", got)
}

// threatconnect-v3.md §15.2: groups with associations, vote counts as strings.
func TestGoldenGroupPage(t *testing.T) {
	c, _ := replay(t, "groups_page.json")
	var got []Group
	if err := c.Groups(t.Context(), Query{}, func(p []Group) error { got = append(got, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("decoded %d groups, want 2", len(got))
	}
	adv := got[0]
	if adv.Name != "Bad Guy" || adv.Type != GroupAdversary || adv.OwnerID != 2 {
		t.Errorf("adversary = %d %q %q", adv.OwnerID, adv.Type, adv.Name)
	}
	if adv.UpVoteCount != 0 || adv.Attributes.Data[1].Value != "APT28, Fancy Bear" {
		t.Errorf("votes/attributes decoded wrong: %+v", adv.Attributes.Data)
	}
	if adv.FirstSeen != time.Date(2023, 8, 25, 18, 23, 43, 0, time.UTC) {
		t.Errorf("firstSeen = %v", adv.FirstSeen)
	}
	if adv.AssociatedGroups.Data[0].ID != 77 || got[1].AssociatedGroups.Data[0].ID != 12 {
		t.Errorf("group-group association not decoded both ways")
	}
	checkGolden(t, "groups_page.golden.json", got)
}

// Ids above 2^53 survive exactly; sizes as strings, "+0000" offsets,
// trailing spaces and unknown fields are tolerated (threatconnect-v3.md §1, §5.3).
func TestGoldenPrecisionPage(t *testing.T) {
	c, _ := replay(t, "precision_page.json")
	var got []Indicator
	if err := c.Indicators(t.Context(), Query{}, func(p []Indicator) error { got = append(got, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("decoded %d indicators, want 2", len(got))
	}
	if got[0].ID != 9007199254918487 || got[0].OwnerID != 9007199254918489 || got[1].ID != 9007199254918489 {
		t.Errorf("ids = %d, %d, %d; precision lost", got[0].ID, got[0].OwnerID, got[1].ID)
	}
	if got[0].Size != 124 || got[0].FileActions.Count == nil || *got[0].FileActions.Count != 0 {
		t.Errorf("size %d / fileActions count not decoded", got[0].Size)
	}
	if got[1].Attributes.Data[0].ID != 1234567890123456 || got[1].Attributes.Data[0].SecurityLabels.Data[0].Name != "TLP:RED" {
		t.Errorf("attribute with its own label not decoded: %+v", got[1].Attributes.Data)
	}
	if v := got[1].Values(); len(v) != 3 || v[2] != "REG_DWORD" {
		t.Errorf("registry key values = %q", v)
	}
	checkGolden(t, "precision_page.golden.json", got)
}

// threatconnect-v3.md §15.3.
func TestGoldenOwners(t *testing.T) {
	c, _ := replay(t, "owners_page.json")
	owners, err := c.Owners(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 3 || owners[2].Name != "Demo Community" || owners[0].PermIndicator != "FULL" {
		t.Errorf("owners = %+v", owners)
	}
}

// threatconnect-v3.md §15.4: error envelopes become typed errors.
func TestErrorEnvelopes(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{400, `{"errCode":"0x1001","message":"Association cannot be applied to the indicator types.","status":"Error"}`, "errCode 0x1001"},
		{401, `{"message":"Signature data did not match expected result","status":"Error"}`, "Signature data did not match"},
		{400, `{"message":"TQL Parse Error: bad","status":"Error"}`, "TQL Parse Error"},
		{404, `<html>not json</html>`, "<html>not json</html>"},
		{200, `{"message":"Odd","status":"Failure"}`, "Odd"},
		{200, `{"data":[{"id":"abc","name":"x","type":"Source"}],"status":"Success"}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
			w.Write([]byte(tt.body))
		}))
		var calls atomic.Int32
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(tt.status)
			w.Write([]byte(tt.body))
		})
		c, _ := New(Options{BaseURL: srv.URL + "/api", APIToken: "t", MaxRetries: 3, RetryBaseDelay: time.Millisecond})
		_, err := c.Owners(t.Context())
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("status %d: error = %v, want it to contain %q", tt.status, err, tt.want)
		}
		if calls.Load() != 1 {
			t.Errorf("status %d %.30s: %d requests, want 1 (not retryable)", tt.status, tt.body, calls.Load())
		}
	}
}

// A timestamp no lenient form can read fails the page at once, naming key
// and value, instead of being retried or silently zeroed.
func TestBadTimestampIsPermanent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"data":[{"id":1,"type":"Host","hostName":"x","lastModified":"someday"}],"status":"Success"}`))
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURL: srv.URL + "/api", APIToken: "t", MaxRetries: 3, RetryBaseDelay: time.Millisecond})
	err := c.Indicators(t.Context(), Query{}, func([]Indicator) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `decode lastModified: parse time "someday"`) || calls.Load() != 1 {
		t.Errorf("error = %v after %d requests", err, calls.Load())
	}
}

// A server that ignores sorting=id ASC would make keyset paging skip items;
// the client refuses to go on instead (see Query).
func TestKeysetRefusesUnsortedPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"next":"http://x/api/v3/indicators?resultStart=2","data":[{"id":9,"type":"Host"},{"id":3,"type":"Host"}],"status":"Success"}`))
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURL: srv.URL + "/api", APIToken: "t"})
	called := false
	err := c.Indicators(t.Context(), Query{}, func([]Indicator) error { called = true; return nil })
	if !errors.Is(err, errNoProgress) || called {
		t.Errorf("error = %v, callback called %v; want errNoProgress before any page", err, called)
	}
}
