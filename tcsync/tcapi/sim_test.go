package tcapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

const (
	accessID  = "12345678901234567890"
	secretKey = "s3cr3tK3y"
)

var vectorTime = time.Unix(1714521600, 0) // threatconnect-v3.md §2.2 vectors B and C

type fixture struct {
	sim    *tcsim.Simulator
	srv    *httptest.Server
	client *tcapi.Client
}

func newFixture(t *testing.T, simOpts tcsim.Options, clientOpts tcapi.Options) *fixture {
	t.Helper()
	if simOpts.AccessID == "" && simOpts.APIToken == "" {
		simOpts.AccessID, simOpts.SecretKey = accessID, secretKey
	}
	sim, err := tcsim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	clientOpts.BaseURL = srv.URL + "/api"
	if clientOpts.AccessID == "" && clientOpts.APIToken == "" {
		clientOpts.AccessID, clientOpts.SecretKey = accessID, secretKey
	}
	if clientOpts.RetryBaseDelay == 0 {
		clientOpts.RetryBaseDelay = 5 * time.Millisecond
	}
	if clientOpts.Now == nil {
		clientOpts.Now = simOpts.Now
	}
	if clientOpts.Log == nil {
		clientOpts.Log = slog.New(slog.DiscardHandler)
	}
	c, err := tcapi.New(clientOpts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, srv: srv, client: c}
}

// rawGet sends a GET with exactly this request target and headers.
func rawGet(t *testing.T, base, target string, hdr map[string]string) int {
	t.Helper()
	u, err := url.Parse(base + target)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base, nil)
	req.URL = u
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// threatconnect-v3.md §2.2–§2.4: the simulator verifies HMAC over the raw
// request target with a ±5 minute window, accepts %20 and + alike when the
// signature covers the bytes sent, and refuses everything else with 401.
func TestSimulatorAuthentication(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 1, Indicators: 20, Groups: 5, APIToken: "tok", AccessID: accessID, SecretKey: secretKey,
		Now: func() time.Time { return vectorTime }}, tcapi.Options{})
	const vectorC = "/api/v3/indicators?tql=typeName%20IN%20%28%22Address%22%2C%22Host%22%29%20AND%20lastModified%20GEQ%20%222024-05-01T00%3A00%3A00Z%22&fields=tags&fields=securityLabels&resultStart=0&resultLimit=1000&sorting=lastModified%20ASC"
	vectorC2 := strings.ReplaceAll(vectorC, "%20", "+")
	hmacHdr := func(target, secret string, ts int64) map[string]string {
		s := fmt.Sprint(ts)
		return map[string]string{"Timestamp": s, "Authorization": "TC " + accessID + ":" + tcapi.Sign(secret, target, "GET", s)}
	}
	now := vectorTime.Unix()
	tests := []struct {
		name   string
		target string
		hdr    map[string]string
		want   int
	}{
		{"vector B", "/api/v3/security/owners", map[string]string{"Timestamp": "1714521600",
			"Authorization": "TC " + accessID + ":LcJLwvLS0M+A3smtgO5n7+m+8UJbRMgi5Ioizemp/NI="}, 200},
		{"vector C %20", vectorC, map[string]string{"Timestamp": "1714521600", "Authorization": "TC " + accessID + ":g5o0DT9zXnF9WGazYymWX6U15k17UB/HLmT2rzOPzQo="}, 200},
		{"vector C' +", vectorC2, map[string]string{"Timestamp": "1714521600", "Authorization": "TC " + accessID + ":xXczxdQLlXPjNvh3iYCW6rklvs/jZf3YodSxvGJtPL8="}, 200},
		{"%20 signed, + sent", vectorC2, map[string]string{"Timestamp": "1714521600", "Authorization": "TC " + accessID + ":g5o0DT9zXnF9WGazYymWX6U15k17UB/HLmT2rzOPzQo="}, 401},
		{"wrong secret", "/api/v3/security/owners", hmacHdr("/api/v3/security/owners", "wrong", now), 401},
		{"tampered query", "/api/v3/indicators?resultLimit=11", hmacHdr("/api/v3/indicators?resultLimit=10", secretKey, now), 401},
		{"stale by 301 s", "/api/v3/security/owners", hmacHdr("/api/v3/security/owners", secretKey, now-301), 401},
		{"future by 301 s", "/api/v3/security/owners", hmacHdr("/api/v3/security/owners", secretKey, now+301), 401},
		{"edge of window -300 s", "/api/v3/security/owners", hmacHdr("/api/v3/security/owners", secretKey, now-300), 200},
		{"edge of window +300 s", "/api/v3/security/owners", hmacHdr("/api/v3/security/owners", secretKey, now+300), 200},
		{"missing timestamp", "/api/v3/security/owners", map[string]string{"Authorization": "TC " + accessID + ":x"}, 401},
		{"non-numeric timestamp", "/api/v3/security/owners", map[string]string{"Timestamp": "soon", "Authorization": "TC " + accessID + ":x"}, 401},
		{"unknown access id", "/api/v3/security/owners", map[string]string{"Timestamp": "1714521600",
			"Authorization": "TC someoneelse:LcJLwvLS0M+A3smtgO5n7+m+8UJbRMgi5Ioizemp/NI="}, 401},
		{"no auth", "/api/v3/security/owners", nil, 401},
		{"token ok", "/api/v3/security/owners", map[string]string{"Authorization": "TC-Token tok"}, 200},
		{"token wrong", "/api/v3/security/owners", map[string]string{"Authorization": "TC-Token nope"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawGet(t, f.srv.URL, tt.target, tt.hdr); got != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.target, got, tt.want)
			}
		})
	}
}

// The client's wrong credentials surface as ErrUnauthorized with the
// server's message, after exactly one fresh-timestamp retry.
func TestClientWrongSecret(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 1, Indicators: 10}, tcapi.Options{AccessID: accessID, SecretKey: "nope", MaxRetries: 3})
	_, err := f.client.Owners(t.Context())
	if !errors.Is(err, tcapi.ErrUnauthorized) || !strings.Contains(err.Error(), "Signature data did not match expected result") {
		t.Fatalf("error = %v, want ErrUnauthorized naming the signature", err)
	}
	if n := f.sim.Requests(); n != 2 {
		t.Errorf("requests = %d, want 2 (one 401 retry, no more)", n)
	}
}

// Offset paging sends + for spaces, the simulator answers next links with
// %20, and the client signs those bytes as received (threatconnect-v3.md §2.1, §5.1).
func TestOffsetPagingFollowsNextLinksInBothEncodings(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 2, Indicators: 200, IncludeInactiveByDefault: true}, tcapi.Options{})
	var ids []int64
	q := tcapi.Query{TQL: `typeName IN ("Address","Host") AND summary != "x y"`, Sort: "dateAdded ASC", PageSize: 7, Fields: []string{"tags"}}
	err := f.client.Indicators(t.Context(), q, func(p []tcapi.Indicator) error {
		for _, in := range p {
			ids = append(ids, in.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 34; len(ids) != want { // 200 items, types cycle every 12: 17 Address + 17 Host
		t.Errorf("got %d indicators, want %d", len(ids), want)
	}
	if f.sim.Requests() < 5 {
		t.Errorf("only %d requests: next links were not followed", f.sim.Requests())
	}
}

func allIDs(t *testing.T, c *tcapi.Client, q tcapi.Query, during func(page int, p []tcapi.Indicator)) []int64 {
	t.Helper()
	var ids []int64
	page := 0
	err := c.Indicators(t.Context(), q, func(p []tcapi.Indicator) error {
		page++
		for _, in := range p {
			ids = append(ids, in.ID)
		}
		if during != nil {
			during(page, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Issue 4 acceptance: 10,000 indicators at resultLimit=37 while the
// simulator is mutated between pages yields every id exactly once. Every
// page: delete an already-seen id (shifts offsets), modify a seen and an
// unseen one (re-dates them), deactivate an unseen one, add a new one.
func TestPagingUnderMutationSeesEveryIDOnce(t *testing.T) {
	const n = 10000
	f := newFixture(t, tcsim.Options{Seed: 3, Indicators: n, Groups: 50, IncludeInactiveByDefault: true}, tcapi.Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	deletedUnseen := map[int64]bool{}
	var added []int64
	var seenSoFar []int64
	var mu sync.Mutex
	ids := allIDs(t, f.client, tcapi.Query{PageSize: 37}, func(page int, p []tcapi.Indicator) {
		mu.Lock()
		defer mu.Unlock()
		for _, in := range p {
			seenSoFar = append(seenSoFar, in.ID)
		}
		last := p[len(p)-1].ID
		seen := seenSoFar[rng.IntN(len(seenSoFar))]
		if err := f.sim.Delete(seen); err != nil && !errors.Is(err, tcsim.ErrNotFound) {
			t.Fatal(err)
		}
		f.sim.Modify(seenSoFar[rng.IntN(len(seenSoFar))], func(in *tcapi.Indicator) { in.Description = "changed" })
		if unseen := last + 1 + int64(rng.IntN(500)); unseen < tcsim.IndicatorID(n) {
			f.sim.Modify(unseen, func(in *tcapi.Indicator) { one := 1; in.Confidence = &one })
			f.sim.Deactivate(unseen + 1)
		}
		if page%50 == 0 { // now and then an unseen item vanishes for good
			victim := last + 1 + int64(rng.IntN(100))
			if f.sim.Delete(victim) == nil {
				deletedUnseen[victim] = true
			}
		}
		id, err := f.sim.Add(tcapi.Indicator{Type: tcapi.TypeHost, HostName: fmt.Sprintf("added-%d.example", page)})
		if err != nil {
			t.Fatal(err)
		}
		added = append(added, id)
	})
	count := map[int64]int{}
	for _, id := range ids {
		count[id]++
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("id %d seen %d times", id, c)
		}
	}
	for i := 1; i <= n; i++ {
		id := tcsim.IndicatorID(i)
		if count[id] == 0 && !deletedUnseen[id] {
			t.Errorf("id %d (generated #%d) never seen", id, i)
		}
	}
	// The last two may have been added after the final page was requested
	// (the next page is prefetched while the callback runs); they are for
	// the next sync.
	for _, id := range added[:len(added)-2] {
		if count[id] != 1 {
			t.Errorf("added id %d seen %d times, want 1", id, count[id])
		}
	}
	if len(deletedUnseen) == 0 {
		t.Error("test did not delete any unseen id")
	}
	if !slices.IsSorted(ids) {
		t.Error("ids not delivered in ascending order")
	}
	t.Logf("%d ids in %d requests", len(ids), f.sim.Requests())
}

// The reason for keyset paging: plain offsets skip items when earlier
// items are deleted between pages (threatconnect-v3.md §5.4).
func TestOffsetPagingUnderDeletionSkips(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 3, Indicators: 500, IncludeInactiveByDefault: true}, tcapi.Options{})
	var seen []int64
	ids := allIDs(t, f.client, tcapi.Query{PageSize: 37, OffsetPaging: true}, func(_ int, p []tcapi.Indicator) {
		for _, in := range p {
			seen = append(seen, in.ID)
		}
		f.sim.Delete(seen[0])
		seen = seen[1:]
	})
	if len(ids) >= 500 {
		t.Fatalf("offset paging saw %d ids; expected it to skip some under deletion", len(ids))
	}
}

// TQL built by Filter, parsed by the simulator, agrees with the same filter
// evaluated in Go over every indicator, hostile owner and tag names
// included (threatconnect-v3.md §11, §12.2).
func TestFilterEndToEnd(t *testing.T) {
	const n = 1500
	f := newFixture(t, tcsim.Options{Seed: 4, Indicators: n, Groups: 40, IncludeInactiveByDefault: true}, tcapi.Options{})
	var all []tcapi.Indicator
	for i := 1; i <= n; i++ {
		in, _ := f.sim.Indicator(tcsim.IndicatorID(i))
		all = append(all, in)
	}
	hasTag := func(in tcapi.Indicator, names ...string) bool {
		for _, tg := range in.Tags.Data {
			if slices.Contains(names, tg.Name) {
				return true
			}
		}
		return false
	}
	hostileOwner := tcsim.Owners()[3].Name
	since := time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)
	until := time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    tcapi.Filter
		want func(tcapi.Indicator) bool
	}{
		{"hostile owner", tcapi.Filter{Owners: []string{hostileOwner}}, func(in tcapi.Indicator) bool { return in.OwnerName == hostileOwner }},
		{"two owners", tcapi.Filter{Owners: []string{"Demo Source", "Demo Community"}}, func(in tcapi.Indicator) bool {
			return in.OwnerName == "Demo Source" || in.OwnerName == "Demo Community"
		}},
		{"hostile tags", tcapi.Filter{Tags: []string{`a'] OR [file:name = 'x`, `tag "with" quotes`, `tag\with\backslashes`}}, func(in tcapi.Indicator) bool {
			return hasTag(in, `a'] OR [file:name = 'x`, `tag "with" quotes`, `tag\with\backslashes`)
		}},
		{"emoji tag", tcapi.Filter{Tags: []string{"tag 🔥 emoji"}}, func(in tcapi.Indicator) bool { return hasTag(in, "tag 🔥 emoji") }},
		{"types", tcapi.Filter{IndicatorTypes: []string{"Registry Key", "Email Subject"}}, func(in tcapi.Indicator) bool {
			return in.Type == "Registry Key" || in.Type == "Email Subject"
		}},
		{"active only", tcapi.Filter{ActiveOnly: true}, func(in tcapi.Indicator) bool { return in.Active }},
		{"confidence", tcapi.Filter{MinConfidence: 70}, func(in tcapi.Indicator) bool { return in.Confidence != nil && *in.Confidence >= 70 }},
		{"threat assess", tcapi.Filter{MinThreatAssessScore: 900}, func(in tcapi.Indicator) bool {
			return in.ThreatAssessScore != nil && *in.ThreatAssessScore >= 900
		}},
		{"window", tcapi.Filter{ModifiedSince: since, ModifiedUntil: until}, func(in tcapi.Indicator) bool {
			return !in.LastModified.Before(since) && in.LastModified.Before(until)
		}},
		{"user tql", tcapi.Filter{Owners: []string{"ignored"}, UserTQL: `rating GEQ 4 OR summary = "ASN12"`}, func(in tcapi.Indicator) bool {
			return in.Rating != nil && *in.Rating >= 4 || in.Summary == "ASN12"
		}},
		{"everything", tcapi.Filter{Owners: []string{"Demo Organization", hostileOwner}, IndicatorTypes: []string{"Address", "File", "Host"},
			ActiveOnly: true, MinConfidence: 20, MinThreatAssessScore: 100}, func(in tcapi.Indicator) bool {
			return (in.OwnerName == "Demo Organization" || in.OwnerName == hostileOwner) &&
				(in.Type == "Address" || in.Type == "File" || in.Type == "Host") && in.Active &&
				in.Confidence != nil && *in.Confidence >= 20 && *in.ThreatAssessScore >= 100
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int64
			for _, in := range all {
				if tt.want(in) {
					want = append(want, in.ID)
				}
			}
			got := allIDs(t, f.client, tcapi.Query{TQL: tt.f.IndicatorTQL(), PageSize: 250, Fields: []string{"tags"}}, nil)
			if !slices.Equal(got, want) {
				t.Errorf("TQL %s\n got %d ids, want %d", tt.f.IndicatorTQL(), len(got), len(want))
			}
			if len(want) == 0 {
				t.Errorf("filter matches nothing; the test proves little")
			}
		})
	}
}

func TestTQLParseErrorIsNotRetried(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 1, Indicators: 10}, tcapi.Options{MaxRetries: 5})
	err := f.client.Indicators(t.Context(), tcapi.Query{TQL: `nosuchkeyword = 1`}, func([]tcapi.Indicator) error { return nil })
	if !errors.Is(err, tcapi.ErrTQLParse) || !strings.Contains(err.Error(), "nosuchkeyword") {
		t.Fatalf("error = %v, want ErrTQLParse naming the keyword", err)
	}
	if n := f.sim.Requests(); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

// Issue 4 acceptance: 5xx, 429 with Retry-After, timeouts, truncated JSON and
// resets are retried up to the limit, then surface a clear error; no partial
// page is ever handed over. Faults that need a connection (a body cut short,
// a reset) run over loopback; the others run in process on synctest's fake
// clock, so their backoff and timeouts cost no real time.
func TestFaultsAreRetried(t *testing.T) {
	tests := []struct {
		name    string
		fault   tcsim.Fault
		network bool
	}{
		{"503", tcsim.Fault{Kind: tcsim.FaultStatus, Status: 503}, false},
		{"500", tcsim.Fault{Kind: tcsim.FaultStatus, Status: 500}, false},
		{"502", tcsim.Fault{Kind: tcsim.FaultStatus, Status: 502}, false},
		{"429", tcsim.Fault{Kind: tcsim.FaultRateLimit}, false},
		{"timeout", tcsim.Fault{Kind: tcsim.FaultSlow, Delay: 2 * time.Second}, false},
		{"truncated", tcsim.Fault{Kind: tcsim.FaultTruncate}, true},
		{"reset", tcsim.Fault{Kind: tcsim.FaultReset}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simOpts := tcsim.Options{Seed: 5, Indicators: 100, IncludeInactiveByDefault: true}
			if tt.network {
				hc := &http.Client{Timeout: 300 * time.Millisecond}
				checkFaultsRetried(t, newFixture(t, simOpts, tcapi.Options{MaxRetries: 3, HTTPClient: hc}), tt.fault)
				return
			}
			synctest.Test(t, func(t *testing.T) {
				f := newInProcessFixture(t, simOpts, tcapi.Options{MaxRetries: 3})
				f.client = f.withTimeout(t, 300*time.Millisecond)
				checkFaultsRetried(t, f, tt.fault)
			})
		})
	}
}

func checkFaultsRetried(t *testing.T, f *fixture, fault tcsim.Fault) {
	t.Helper()
	// Let page 1 through, then fail the next three requests (page 2 and its first two retries).
	pages := 0
	var ids []int64
	err := f.client.Indicators(t.Context(), tcapi.Query{PageSize: 30}, func(p []tcapi.Indicator) error {
		pages++
		if pages == 1 {
			f.sim.Fail(3, fault)
		}
		if len(p) != 30 && pages < 4 {
			t.Errorf("page %d has %d items, want 30", pages, len(p))
		}
		for _, in := range p {
			ids = append(ids, in.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("with 3 faults and 3 retries: %v", err)
	}
	if len(ids) != 100 || pages != 4 {
		t.Errorf("got %d ids in %d pages, want 100 in 4", len(ids), pages)
	}
	// Now more faults than retries: a clear error and no page at all.
	f.sim.Fail(10, fault)
	called := false
	err = f.client.Indicators(t.Context(), tcapi.Query{PageSize: 30}, func([]tcapi.Indicator) error { called = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("error = %v, want giving up after 4 attempts", err)
	}
	if called {
		t.Error("callback called although no page was fetched completely")
	}
	f.sim.ClearFaults()
}

// inProcess is an http.RoundTripper that serves every request with h in
// the calling goroutine, without a network, so that a client and the
// simulator can run together in a synctest bubble, whose fake clock
// advances only while every goroutine in it waits on time.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	in := r.Clone(r.Context())
	in.RequestURI = r.URL.RequestURI() // as a server sees the request
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

// newInProcessFixture is newFixture with the simulator served in process.
// Call it inside the synctest bubble.
func newInProcessFixture(t *testing.T, simOpts tcsim.Options, clientOpts tcapi.Options) *fixture {
	t.Helper()
	simOpts.AccessID, simOpts.SecretKey = accessID, secretKey
	sim, err := tcsim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	clientOpts.BaseURL = "http://tc.test/api"
	clientOpts.AccessID, clientOpts.SecretKey = accessID, secretKey
	clientOpts.HTTPClient = &http.Client{Transport: inProcess{sim}}
	if clientOpts.RetryBaseDelay == 0 {
		clientOpts.RetryBaseDelay = 5 * time.Millisecond
	}
	clientOpts.Log = slog.New(slog.DiscardHandler)
	c, err := tcapi.New(clientOpts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, client: c}
}

// withTimeout returns an in-process fixture's client again with an HTTP
// client timeout.
func (f *fixture) withTimeout(t *testing.T, d time.Duration) *tcapi.Client {
	t.Helper()
	c, err := tcapi.New(tcapi.Options{BaseURL: "http://tc.test/api", AccessID: accessID, SecretKey: secretKey, MaxRetries: 3,
		RetryBaseDelay: 5 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
		HTTPClient: &http.Client{Transport: inProcess{f.sim}, Timeout: d}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newInProcessFixture(t, tcsim.Options{Seed: 5, Indicators: 10}, tcapi.Options{MaxRetries: 2})
		f.sim.Fail(1, tcsim.Fault{Kind: tcsim.FaultRateLimit, RetryAfter: 3 * time.Second})
		start := time.Now()
		if _, err := f.client.Owners(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("retried after %v; want the 3s Retry-After", d)
		}
		// An exhausted 429 keeps its type.
		f.sim.Fail(5, tcsim.Fault{Kind: tcsim.FaultStatus, Status: 429})
		_, err := f.client.Owners(t.Context())
		if !errors.Is(err, tcapi.ErrRateLimited) {
			t.Errorf("error = %v, want ErrRateLimited", err)
		}
	})
}

func TestContextCancelStopsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newInProcessFixture(t, tcsim.Options{Seed: 5, Indicators: 10}, tcapi.Options{MaxRetries: 5, RetryBaseDelay: 10 * time.Second})
		f.sim.Fail(10, tcsim.Fault{Kind: tcsim.FaultStatus})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := f.client.Owners(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("gave up after %v; want 200ms, when the context ended (the backoff was 10s)", d)
		}
	})
}

// The client's own rate limit: the burst is the rate, so 31 requests at
// 20/s take 11 × 50ms after the first 20.
func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newInProcessFixture(t, tcsim.Options{Seed: 5, Indicators: 10}, tcapi.Options{RequestsPerSecond: 20})
		start := time.Now()
		for range 31 {
			if _, err := f.client.Owners(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if d, want := time.Since(start), 11*50*time.Millisecond; d < want-time.Millisecond || d > want+time.Millisecond {
			t.Errorf("31 requests at 20/s took %v; want %v", d, want)
		}
	})
}

func TestTokenAuthAndDeletedIndicators(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 6, Indicators: 50, APIToken: "tok"}, tcapi.Options{APIToken: "tok"})
	before := f.sim.Now()
	var want []string
	for _, i := range []int{3, 17, 40} {
		in, _ := f.sim.Indicator(tcsim.IndicatorID(i))
		want = append(want, in.Summary)
		if err := f.sim.Delete(in.ID); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := f.client.DeletedIndicators(t.Context(), before, "", func(p []tcapi.DeletedIndicator) error {
		for _, d := range p {
			got = append(got, d.Summary)
			if d.Type == "" || d.OwnerName == "" || d.DateAdded.IsZero() {
				t.Errorf("deleted entry incomplete: %+v", d)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("deleted = %q, want %q", got, want)
	}
	if _, err := f.client.Indicator(t.Context(), tcsim.IndicatorID(3)); !errors.Is(err, tcapi.ErrNotFound) {
		t.Errorf("deleted indicator fetch error = %v, want ErrNotFound", err)
	}
}

// threatconnect-v3.md §9.3: associations paged with nested TQL match the
// embedded expansions, and a capped embedding says so with count.
func TestAssociationPaging(t *testing.T) {
	f := newFixture(t, tcsim.Options{Seed: 7, Indicators: 3000, Groups: 10, IncludeInactiveByDefault: true, EmbedLimit: 50}, tcapi.Options{})
	gid := tcsim.GroupID(3)
	g, err := f.client.Group(t.Context(), gid, "associatedIndicators")
	if err != nil {
		t.Fatal(err)
	}
	if g.AssociatedIndicators.Count == nil || *g.AssociatedIndicators.Count <= len(g.AssociatedIndicators.Data) {
		t.Fatalf("embedded associatedIndicators not capped with a count: %d items, count %v", len(g.AssociatedIndicators.Data), g.AssociatedIndicators.Count)
	}
	var ids []int64
	err = f.client.IndicatorsOfGroup(t.Context(), gid, tcapi.Query{PageSize: 40}, func(p []tcapi.Indicator) error {
		for _, in := range p {
			ids = append(ids, in.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != *g.AssociatedIndicators.Count {
		t.Errorf("paged %d indicators of group, count says %d", len(ids), *g.AssociatedIndicators.Count)
	}
	for i, in := range g.AssociatedIndicators.Data {
		if ids[i] != in.ID {
			t.Fatalf("paged id %d = %d, embedded %d", i, ids[i], in.ID)
		}
	}
	// Back from an indicator to its group.
	var groups []int64
	if err := f.client.GroupsOfIndicator(t.Context(), ids[0], tcapi.Query{}, func(p []tcapi.Group) error {
		for _, g := range p {
			groups = append(groups, g.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(groups, gid) {
		t.Errorf("groups of indicator %d = %v, want to include %d", ids[0], groups, gid)
	}
	// Custom indicator-to-indicator associations.
	asn := tcsim.IndicatorID(6) // type cycle position 6 is ASN
	in, err := f.client.Indicator(t.Context(), asn, "customAssociations")
	if err != nil {
		t.Fatal(err)
	}
	var linked []int64
	if err := f.client.CustomAssociations(t.Context(), asn, tcapi.Query{}, func(p []tcapi.Indicator) error {
		for _, x := range p {
			linked = append(linked, x.ID)
			if x.AssociationName == "" {
				t.Errorf("associationName missing on %d", x.ID)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(linked) == 0 || len(linked) != len(in.CustomAssociations.Data) {
		t.Errorf("custom associations paged %v, embedded %d", linked, len(in.CustomAssociations.Data))
	}
	if in.CustomAssociations.Data[0].CustomAssociationName != "ASN to Address" {
		t.Errorf("customAssociationName = %q", in.CustomAssociations.Data[0].CustomAssociationName)
	}
}

// Requests go through the configured proxy; TLS verification can be switched off.
func TestProxyAndInsecureSkipVerify(t *testing.T) {
	sim, err := tcsim.New(tcsim.Options{Seed: 1, Indicators: 5, APIToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	target := httptest.NewServer(sim)
	defer target.Close()
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	defer proxy.Close()
	c, err := tcapi.New(tcapi.Options{BaseURL: target.URL + "/api", APIToken: "tok", Proxy: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Owners(t.Context()); err != nil {
		t.Fatal(err)
	}
	if proxied.Load() != 1 {
		t.Errorf("proxy saw %d requests, want 1", proxied.Load())
	}

	tlsSrv := httptest.NewTLSServer(sim)
	defer tlsSrv.Close()
	strict, _ := tcapi.New(tcapi.Options{BaseURL: tlsSrv.URL + "/api", APIToken: "tok", MaxRetries: 0})
	if _, err := strict.Owners(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate accepted without insecure_skip_verify: %v", err)
	}
	loose, _ := tcapi.New(tcapi.Options{BaseURL: tlsSrv.URL + "/api", APIToken: "tok", InsecureSkipVerify: true})
	if _, err := loose.Owners(t.Context()); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
}
