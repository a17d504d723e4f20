package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// The README's first command, in short: simulator → sync → TAXII → a client
// reads discovery, collections and objects (issue 5: CI exercises the demo).
func TestDemoOnce(t *testing.T) {
	code, out, errOut := runCmd(t, "", nil, "demo", "-once", "-listen", "127.0.0.1:0", "-indicators", "400", "-groups", "40")
	if code != exitOK {
		t.Fatalf("demo -once: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"/taxii2/", "curl -s -u demo:", "collections/tlp-green/objects/"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// simServer starts a simulator with n indicators on loopback and returns its URL.
func simServer(t *testing.T, n int) string {
	t.Helper()
	sim, err := tcsim.New(tcsim.Options{Seed: 3, Indicators: n, Groups: n / 10, AccessID: "cmd-test", SecretKey: "cmd-test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return srv.URL
}

// syncTestConfig writes a config that syncs the simulator at url into dir.
func syncTestConfig(t *testing.T, dir, url string) (cfgPath, dbPath string) {
	t.Helper()
	dbPath = filepath.Join(dir, "tb.db")
	cfg := fmt.Sprintf(`storage: {path: %q}
threatconnect:
  base_url: %s/api
  access_id: cmd-test
  requests_per_second: 1000
sync:
  first_fetch: 0
  page_size: 50
taxii:
  collections:
    - alias: tlp-green
      filter: {max_tlp: GREEN}
`, dbPath, url)
	cfgPath = filepath.Join(dir, "tb.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

// storeDigest lists every version of every object per collection alias.
func storeDigest(t *testing.T, path string) string {
	t.Helper()
	s, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return digestOf(t, s)
}

// digestOf is storeDigest of an open store (SQLite or PostgreSQL).
func digestOf(t *testing.T, s *storage.Store) string {
	t.Helper()
	ctx := context.Background()
	cols, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cols {
		q := storage.Query{CollectionID: c.ID, Versions: storage.VersionFilter{All: true}, MaxTLP: 5, Limit: 5000}
		for {
			p, err := s.Objects(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				lines = append(lines, c.Alias+" "+string(it.JSON))
			}
			if !p.More {
				break
			}
			k := p.Items[len(p.Items)-1].Key
			q.After = &k
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestSyncOnceAndExport(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := syncTestConfig(t, dir, simServer(t, 300))
	env := map[string]string{"TC_SECRET_KEY": "cmd-test-secret"}
	code, out, errOut := runCmd(t, "", env, "sync", "-once", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "synced:") {
		t.Fatalf("sync -once: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "cmd-test-secret") {
		t.Error("the secret key was printed")
	}
	// A reconciliation right after reads everything again and, with
	// nothing changed in ThreatConnect, writes nothing.
	code, out, errOut = runCmd(t, "", env, "sync", "-reconcile", "-config", cfg)
	if code != exitOK || !strings.Contains(out, " 0 new versions") || !strings.Contains(out, " 0 revoked") {
		t.Fatalf("sync -reconcile: exit %d\n%s\n%s", code, out, errOut)
	}
	bundle := filepath.Join(dir, "green.json")
	code, _, errOut = runCmd(t, "", env, "export", "-config", cfg, "-collection", "tlp-green", "-o", bundle)
	if code != exitOK {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var exported struct {
		Type    string
		ID      string
		Objects []struct{ Type string }
	}
	if err := json.Unmarshal(b, &exported); err != nil || exported.Type != "bundle" || !strings.HasPrefix(exported.ID, "bundle--") ||
		!slices.ContainsFunc(exported.Objects, func(o struct{ Type string }) bool { return o.Type == "indicator" }) {
		t.Errorf("export is not a bundle of indicators (%v): %.300s", err, b)
	}
	if strings.Contains(string(b), "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed\"]") {
		t.Error("the TLP:GREEN collection export holds RED-marked objects")
	}
	if code, _, errOut := runCmd(t, "", env, "export", "-config", cfg, "-collection", "nope"); code != exitUsage || !strings.Contains(errOut, `no collection "nope"`) {
		t.Errorf("export of an unknown collection: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCmd(t, "", env, "export", "-config", cfg, "-collection", "tlp-green", "-added-after", "yesterday"); code != exitUsage {
		t.Errorf("bad -added-after: exit %d; want 2", code)
	}
}

// gatedSim serves a simulator of n indicators (the one simServer serves)
// whose list requests (pages of indicators and groups, not the start-up
// probes of one item) can be held: after
// hold(allow), requests past the first allow wait until release is called
// or the client goes away, so a sync cannot finish before the test lets it.
type gatedSim struct {
	URL   string
	mu    sync.Mutex
	pages int
	allow int // -1: no gate
	gate  chan struct{}
}

func newGatedSim(t *testing.T, n int) *gatedSim {
	t.Helper()
	sim, err := tcsim.New(tcsim.Options{Seed: 3, Indicators: n, Groups: n / 10, AccessID: "cmd-test", SecretKey: "cmd-test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedSim{allow: -1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The start-up TQL probes (resultLimit=1, preflightTQL) pass
		// uncounted: only the sync's own pages are held.
		if r.Method == http.MethodGet && (strings.HasPrefix(r.URL.Path, "/api/v3/indicators") || strings.HasPrefix(r.URL.Path, "/api/v3/groups")) &&
			r.URL.Query().Get("resultLimit") != "1" {
			if gate := g.admit(); gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.release) // runs before srv.Close
	g.URL = srv.URL
	return g
}

// admit counts a list request and returns the gate it must wait for, or nil.
func (g *gatedSim) admit() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pages++
	if g.allow < 0 || g.pages <= g.allow {
		return nil
	}
	return g.gate
}

// held reports whether a list request is waiting at the gate.
func (g *gatedSim) held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.allow >= 0 && g.pages > g.allow
}

func (g *gatedSim) hold(allow int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pages, g.allow, g.gate = 0, allow, make(chan struct{})
}

func (g *gatedSim) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.allow >= 0 {
		close(g.gate)
		g.allow = -1
	}
}

// A real kill -9 of `sync -once` after its k-th committed batch (its k-th
// "sync progress" line), then a second run, converges to the store an
// uninterrupted run produces (issue 5). The simulator holds every page past
// k+2, so the kill lands mid-sync whatever the machine's speed: somewhere
// in committing batches k..k+2 or waiting for the next page.
func TestSyncKill9Converges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "taxii-bridge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "TC_SECRET_KEY=cmd-test-secret")

	sim := newGatedSim(t, 2000)
	refCfg, refDB := syncTestConfig(t, t.TempDir(), sim.URL)
	cmd := exec.Command(bin, "sync", "-once", "-config", refCfg)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference sync: %v\n%s", err, out)
	}
	want := storeDigest(t, refDB)

	for _, k := range []int{1, 5, 20} { // of about 45 batches (2,000 indicators and 200 groups, 50 a page)
		sim.hold(k + 2)
		cfg, db := syncTestConfig(t, t.TempDir(), sim.URL)
		cmd := exec.Command(bin, "-log-level", "debug", "-log-format", "json", "sync", "-once", "-config", cfg)
		cmd.Env = env
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		batches := 0
		sc := bufio.NewScanner(stderr)
		for batches < k && sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), `"msg":"sync progress"`) {
				batches++
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_, _ = io.Copy(io.Discard, stderr)
		werr := cmd.Wait()
		sim.release()
		if batches < k {
			t.Fatalf("sync ended after %d committed batches, before the kill after %d: %v\n%s", batches, k, werr, log.String())
		}
		partial := storeDigest(t, db)
		if partial == "" || partial == want {
			t.Fatalf("kill -9 after batch %d: the store is empty or complete (%d lines); the test proved nothing", k, strings.Count(partial, "\n"))
		}
		t.Logf("kill -9 after batch %d: %d of %d versions stored", k, strings.Count(partial, "\n")+1, strings.Count(want, "\n")+1)

		again := exec.Command(bin, "sync", "-once", "-config", cfg)
		again.Env = env
		if out, err := again.CombinedOutput(); err != nil {
			t.Fatalf("sync after kill -9 after batch %d: %v\n%s", k, err, out)
		}
		if got := storeDigest(t, db); got != want {
			t.Errorf("kill -9 after batch %d: the store differs from an uninterrupted run's (%d vs %d versions)", k, strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
	}
}
