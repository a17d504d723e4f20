package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

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
	ctx := context.Background()
	s, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

// A real kill -9 of `sync -once` at a random point, then a second run,
// converges to the store an uninterrupted run produces (issue 5).
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

	url := simServer(t, 2000)
	refCfg, refDB := syncTestConfig(t, t.TempDir(), url)
	cmd := exec.Command(bin, "sync", "-once", "-config", refCfg)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference sync: %v\n%s", err, out)
	}
	want := storeDigest(t, refDB)

	interrupted := 0
	for _, delay := range []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond} {
		dir := t.TempDir()
		cfg, db := syncTestConfig(t, dir, url)
		cmd := exec.Command(bin, "sync", "-once", "-config", cfg)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if _, err := os.Stat(db); err == nil {
			if partial := storeDigest(t, db); partial != "" && partial != want {
				interrupted++
			}
		}

		again := exec.Command(bin, "sync", "-once", "-config", cfg)
		again.Env = env
		if out, err := again.CombinedOutput(); err != nil {
			t.Fatalf("sync after kill -9 at %v: %v\n%s", delay, err, out)
		}
		if got := storeDigest(t, db); got != want {
			t.Errorf("kill -9 at %v: the store differs from an uninterrupted run's (%d vs %d versions)", delay, strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
	}
	if interrupted == 0 {
		t.Error("no kill -9 landed mid-sync (every store was empty or complete); the test proved nothing")
	}
}
