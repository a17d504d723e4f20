package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/taxii"
)

// opsFixture loads a config that syncs the simulator and serves user
// "demo" (password demo-password) with metrics on, and opens its store.
func opsFixture(t *testing.T, extra string) (*env, *config.Config, *storage.Store, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	cfgPath, dbPath := syncTestConfig(t, dir, simServer(t, 200))
	addDemoUser(t, cfgPath, "metrics:\n  listen: 127.0.0.1:0\n"+extra)
	logs := &syncBuffer{}
	e := &env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == "TC_SECRET_KEY" {
			return "cmd-test-secret"
		}
		return ""
	}, Log: slog.New(slog.NewTextHandler(logs, nil))}
	cfg, err := e.loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return e, cfg, store, logs
}

// addDemoUser appends the admin user demo (password demo-password) to a
// syncTestConfig file, then extra top-level YAML.
func addDemoUser(t *testing.T, cfgPath, extra string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b) + "  users:\n    - name: demo\n      password_hash: \"" + string(hash) + "\"\n      read: [\"*\"]\n      admin: true\n" + extra
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", w.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels include want, or NaN.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return math.NaN()
}

// After a sync and a client poll, /metrics (parsed with expfmt) shows that
// client's last poll and the newest date_added it was served, next to the
// sync, ThreatConnect, HTTP and storage series (issue 11 acceptance).
func TestMetricsAfterSyncAndPoll(t *testing.T) {
	ctx := t.Context()
	e, cfg, store, _ := opsFixture(t, "")
	o := newOps(e, cfg, store)
	w, err := newWorker(ctx, e, cfg, store, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	srv, err := newTAXIIServer(ctx, e, cfg, store, w.Health, o)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	req := httptest.NewRequest(http.MethodGet, "/threatconnect/collections/tlp-green/objects/?limit=10", nil)
	req.SetBasicAuth("demo", "demo-password")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("poll = %d %s", rec.Code, rec.Body.String())
	}
	last, err := time.Parse(time.RFC3339Nano, rec.Header().Get("X-TAXII-Date-Added-Last"))
	if err != nil {
		t.Fatalf("X-TAXII-Date-Added-Last: %v", err)
	}

	fams := scrape(t, o.metrics.Handler())
	client := map[string]string{"principal": "user:demo", "collection": "tlp-green"}
	if got := value(fams, "taxii_bridge_client_last_poll_timestamp_seconds", client); math.IsNaN(got) || got < float64(before.Unix())-1 || got > float64(time.Now().Unix())+1 {
		t.Errorf("last poll = %v, want about %d", got, before.Unix())
	}
	if got, want := value(fams, "taxii_bridge_client_newest_date_added_timestamp_seconds", client), float64(last.UnixMicro())/1e6; math.Abs(got-want) > 1e-6 {
		t.Errorf("newest date_added served = %f, want %f (the page's X-TAXII-Date-Added-Last)", got, want)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"taxii_bridge_client_polls_total", client, 1},
		{"taxii_bridge_client_objects_served_total", client, 10},
		{"taxii_bridge_client_bytes_served_total", client, 1000},
		{"taxii_bridge_sync_runs_total", map[string]string{"result": "success"}, 1},
		{"taxii_bridge_sync_items_fetched_total", nil, 100},
		{"taxii_bridge_sync_versions_written_total", nil, 100},
		{"taxii_bridge_sync_duration_seconds", nil, 1},
		{"taxii_bridge_sync_last_success_timestamp_seconds", nil, float64(before.Add(-time.Minute).Unix())},
		{"taxii_bridge_sync_threatconnect_newest_modified_timestamp_seconds", nil, 1},
		{"taxii_bridge_sync_lag_seconds", nil, 0},
		{"taxii_bridge_threatconnect_requests_total", map[string]string{"outcome": "2xx"}, 3},
		{"taxii_bridge_http_requests_total", map[string]string{"route": "/threatconnect/collections/:collection/objects", "code": "200"}, 1},
		{"taxii_bridge_http_request_duration_seconds", map[string]string{"route": "/threatconnect/collections/:collection/objects"}, 1},
		{"taxii_bridge_storage_objects", map[string]string{"collection": "tlp-green"}, 10},
		{"taxii_bridge_storage_versions", map[string]string{"collection": "tlp-green"}, 10},
		{"taxii_bridge_storage_database_bytes", nil, 4096},
		{"taxii_bridge_storage_stats_up", nil, 1},
	} {
		if got := value(fams, c.name, c.labels); math.IsNaN(got) || got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	for name := range fams {
		if !strings.HasPrefix(name, "taxii_bridge_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s lacks the taxii_bridge_ prefix", name)
		}
	}
	// The status page shows the same sync run.
	req = httptest.NewRequest(http.MethodGet, "/admin/status", nil)
	req.SetBasicAuth("demo", "demo-password")
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "user:demo") || !strings.Contains(rec.Body.String(), `<span class="ok">ok</span>`) {
		t.Errorf("status page = %d:\n%.2000s", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "cmd-test-secret") {
		t.Error("the status page shows the ThreatConnect secret key")
	}
}

// garbleTable overwrites the root page of a table with junk: Open,
// migrations and the collection list never read it, every read of the
// table and SQLite's integrity checks fail.
func garbleTable(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = ?", table).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := bytes.Repeat([]byte{0xA5, 0x17, 0xFF, 0x03}, int(pageSize)/4)
	if _, err := f.WriteAt(junk, (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// A garbled database: check exits 1 naming the file, sync -once exits 1,
// /readyz is 503 once the start-up check has run, and the fault is
// logged once with the file and what to do (issue 11 acceptance). A
// truncated one: check and sync -once exit 1 naming the file.
func TestDamagedDatabase(t *testing.T) {
	env := map[string]string{"TC_SECRET_KEY": "cmd-test-secret"}
	for _, damage := range []string{"garbled", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath, dbPath := syncTestConfig(t, dir, simServer(t, 300))
			addDemoUser(t, cfgPath, "")
			if code, out, errOut := runCmd(t, "", env, "sync", "-once", "-config", cfgPath); code != exitOK {
				t.Fatalf("first sync: %d\n%s%s", code, out, errOut)
			}
			if _, out, _ := runCmd(t, "", env, "check", "-config", cfgPath); !strings.Contains(out, "quick_check ok") {
				t.Fatalf("check of the sound database:\n%s", out)
			}
			switch damage {
			case "garbled":
				garbleTable(t, dbPath, "versions")
			case "truncated":
				fi, _ := os.Stat(dbPath)
				if err := os.Truncate(dbPath, fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"check"}, {"check", "-full"}} {
				code, out, errOut := runCmd(t, "", env, append(args, "-config", cfgPath)...)
				if code != exitFailure || !strings.Contains(out, "FAIL database") || !strings.Contains(out, dbPath) || !strings.Contains(errOut, dbPath) {
					t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and FAIL database naming %s", args, code, out, errOut, dbPath)
				}
			}
			code, out, errOut := runCmd(t, "", env, "sync", "-once", "-config", cfgPath)
			if code != exitFailure || !strings.Contains(errOut, dbPath) {
				t.Errorf("sync -once: exit %d\n%s%s\nwant exit 1 naming %s", code, out, errOut, dbPath)
			}
			if damage != "garbled" {
				return
			}
			// /readyz through serve's wiring: the first read of the damaged
			// table is a 500 that records the fault; readiness reports it.
			e, cfg, store, logs := opsFixtureAt(t, cfgPath)
			o := newOps(e, cfg, store)
			srv, err := newTAXIIServer(t.Context(), e, cfg, store, nil, o)
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) int {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.SetBasicAuth("demo", "demo-password")
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				return rec.Code
			}
			if code := get("/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz before anything read the damage = %d", code)
			}
			if code := get("/threatconnect/collections/tlp-green/objects/"); code != http.StatusInternalServerError {
				t.Errorf("objects from a damaged table = %d, want 500", code)
			}
			if code := get("/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz after a storage fault = %d, want 503", code)
			}
			// serve's start-up check finds it too; the fault is logged once.
			if err := o.health.quickCheck(t.Context(), store); err == nil {
				t.Error("quick_check passed a garbled file")
			}
			if n := strings.Count(logs.String(), "storage fault"); n != 1 {
				t.Errorf("storage fault logged %d times, want once:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), dbPath) || !strings.Contains(logs.String(), "check -full") {
				t.Errorf("the fault log line lacks the file or what to do:\n%s", logs.String())
			}
		})
	}
}

// opsFixtureAt loads an existing config and opens its store.
func opsFixtureAt(t *testing.T, cfgPath string) (*env, *config.Config, *storage.Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e := &env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == "TC_SECRET_KEY" {
			return "cmd-test-secret"
		}
		return ""
	}, Log: slog.New(slog.NewTextHandler(logs, nil))}
	cfg, err := e.loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(context.Background(), cfg.Storage.Path)
	if err != nil {
		t.Fatalf("open the damaged store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return e, cfg, store, logs
}

// version prints the VCS revision the build carries, and says how to get
// one when it carries none.
func TestReadBuild(t *testing.T) {
	var out bytes.Buffer
	e := &env{Stdout: &out}
	printVersion(e, readBuild(nil, false))
	if !strings.Contains(out.String(), "revision unknown") {
		t.Errorf("without build info: %s", out.String())
	}
	out.Reset()
	b := readBuild(&debugBuildInfo, true)
	printVersion(e, b)
	if !strings.Contains(out.String(), "revision 0123456789abcdef0123456789abcdef01234567 (modified) 2026-11-29T18:00:00Z") {
		t.Errorf("with vcs settings:\n%s", out.String())
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "taxii-bridge v1.2.3") {
		t.Errorf("version line: %s", got)
	}
}

var debugBuildInfo = func() debug.BuildInfo {
	var bi debug.BuildInfo
	bi.Main.Version = "v1.2.3"
	bi.Settings = []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.modified", Value: "true"},
		{Key: "vcs.time", Value: "2026-11-29T18:00:00Z"},
	}
	return bi
}()

// The configuration accepts exactly the profiles the server knows.
func TestProfileNamesAgree(t *testing.T) {
	if got, want := strings.Join(config.ProfileNames, ","), strings.Join(taxii.ProfileNames(), ","); got != want {
		t.Errorf("config.ProfileNames = %s, taxii.ProfileNames() = %s", got, want)
	}
}

// metrics.listen serves /metrics on its own listener, nothing else, and
// stops with its context.
func TestServeMetricsOn(t *testing.T) {
	e, cfg, store, _ := opsFixture(t, "")
	o := newOps(e, cfg, store)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.serveMetricsOn(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "taxii_bridge_storage_stats_up 1") {
		t.Errorf("/metrics = %d:\n%.500s", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/taxii2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/taxii2/ on the metrics address = %d, want 404", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveMetricsOn after cancel: %v", err)
	}
	if (&ops{}).serveMetrics(ctx, cfg) != nil {
		t.Error("serveMetrics without metrics should do nothing")
	}
}
