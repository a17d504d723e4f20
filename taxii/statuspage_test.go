package taxii

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// statusFixture is a server whose alice is an admin, with data in two
// collections, one recorded poll and two sync runs.
func statusFixture(t *testing.T) *fixture {
	t.Helper()
	started := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := newFixture(t, func(c *Config) {
		c.Users[0].Admin = true
		c.Status = StatusSource{
			Version: "taxii-bridge v0.0.0-test",
			SyncRuns: func() []SyncRun {
				return []SyncRun{
					{Started: started.Add(15 * time.Minute), Duration: 2 * time.Second, Err: `list owners: threatconnect GET /v3/owners: 503 <script>alert(1)</script>`},
					{Started: started, Duration: 1500 * time.Millisecond, Fetched: 1234, NewVersions: 1200, Unchanged: 30, Revoked: 4, Skipped: map[string]int{"excluded": 3, "private": 1}},
				}
			},
			Settings: []Setting{{"threatconnect.base_url", "https://tc.example/api"}, {"threatconnect.secret_key", "set (redacted)"}},
		}
	})
	var objs []stixObj
	for i := range 7 {
		objs = append(objs, ind(i, 0, ""))
	}
	f.put("intel", objs...)
	f.put("submissions", ind(100, 0, ""))
	wantStatus(t, f.get("greg", f.colPath("intel", "objects/?limit=3")), http.StatusOK)
	return f
}

// The status page is for admins only, shows each collection's counts, the
// sync runs with their errors escaped, each client's last poll and how far
// behind it is, and the configuration summary it was given.
func TestStatusPage(t *testing.T) {
	f := statusFixture(t)
	if w := f.get("greg", adminStatusPath); w.Code != http.StatusForbidden {
		t.Errorf("non-admin = %d, want 403", w.Code)
	}
	if w := f.get("", adminStatusPath); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "Basic") {
		t.Errorf("anonymous = %d (WWW-Authenticate %q), want a 401 Basic challenge so a browser asks", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	w := f.do(req{path: adminStatusPath, who: "alice", accept: ptr("text/html,application/xhtml+xml,*/*;q=0.8")})
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("admin = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{
		"Intel", f.cols["intel"].ID, `<td class="num">7</td>`, `<td class="num">1</td>`,
		"1234", "excluded 3, private 1", "&lt;script&gt;", "user:greg", "newer objects up to", "user:rita", "never polled",
		"threatconnect.secret_key", "set (redacted)", "taxii-bridge v0.0.0-test",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("status page contains an unescaped <script>")
	}
}

func ptr[T any](v T) *T { return &v }

// findChromium returns a Chromium binary, or "" when there is none.
func findChromium() string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// The status page in a real browser (headless Chromium through chromedp):
// it loads, shows each collection's object count and the last sync, and a
// screenshot is written under the test's temp dir (and copied to
// $TAXII_BRIDGE_SCREENSHOT_DIR when set, to look at).
func TestStatusPageBrowser(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but no Chromium was found; .ci/run installs Debian's chromium")
		}
		t.Skip("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH: skipping the browser test of the status page; apt-get install chromium to run it")
	}
	f := statusFixture(t)
	ts := httptest.NewServer(f.srv)
	defer ts.Close()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// Run each step; a deadline names the step that hung.
	step := func(what string, err error) {
		t.Helper()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: the browser did not answer within 60 s: %v", what, err)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basic("alice", "alice-pw")}})
	step("set the Authorization header", err)
	step("load the page", chromedp.Do(ctx, chromedp.Navigate(ts.URL+adminStatusPath), chromedp.WaitVisible(chromedp.CSS("#collections table"))))
	title, err := chromedp.Run(ctx, chromedp.Title())
	step("title", err)
	collections, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#collections")))
	step("collections text", err)
	syncText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#sync")))
	step("sync text", err)
	clients, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#clients")))
	step("clients text", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot", err)
	if !strings.Contains(title, "Status") {
		t.Errorf("title = %q", title)
	}
	for _, want := range []string{"Intel", "Submissions", "7", f.cols["intel"].ID} {
		if !strings.Contains(collections, want) {
			t.Errorf("collections section lacks %q:\n%s", want, collections)
		}
	}
	for _, want := range []string{"1234", "failed", "503", "2026-01-02 03:00:00Z"} {
		if !strings.Contains(syncText, want) {
			t.Errorf("sync section lacks %q:\n%s", want, syncText)
		}
	}
	if !strings.Contains(clients, "user:greg") || !strings.Contains(clients, "behind") && !strings.Contains(clients, "additions") {
		t.Errorf("clients section:\n%s", clients)
	}
	path := filepath.Join(t.TempDir(), "status.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	if dir := os.Getenv("TAXII_BRIDGE_SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "status.png"), shot, 0o644); err != nil {
			t.Error(err)
		}
	}
}
