package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// simConfig starts a simulator and writes a configuration for it.
func simConfig(t *testing.T, opts tcsim.Options, extra string) (string, *tcsim.Simulator) {
	t.Helper()
	opts.AccessID, opts.SecretKey = "sim-id", "sim-secret"
	sim, err := tcsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "taxii-bridge.yaml")
	yaml := fmt.Sprintf("storage:\n  path: %s\nthreatconnect:\n  base_url: %s/api\n  access_id: sim-id\n  secret_key: sim-secret\n  max_retries: 1\n%s",
		filepath.Join(dir, "db.sqlite"), srv.URL, extra)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, sim
}

func TestTCGetOwners(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "")
	code, out, errOut := runCmd(t, "", nil, "tc-get-owners", "-config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "Demo Organization") || !strings.Contains(lines[1], "Organization") {
		t.Errorf("table:\n%s", out)
	}
	// The hostile owner name is printed escaped, on one line.
	if !strings.Contains(lines[4], `Tricky "Quoted" \\ Source's`) {
		t.Errorf("hostile owner line = %q", lines[4])
	}
	code, out, _ = runCmd(t, "", nil, "tc-get-owners", "-config", cfg, "-format", "json")
	var owners []tcapi.Owner
	if code != exitOK || json.Unmarshal([]byte(out), &owners) != nil || len(owners) != 4 || owners[3].Name != `Tricky "Quoted" \ Source's` {
		t.Errorf("json: exit %d, %q", code, out)
	}
}

func TestTCGetIndicators(t *testing.T) {
	cfg, sim := simConfig(t, tcsim.Options{Seed: 2, Indicators: 400, Groups: 20}, "")
	code, out, errOut := runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "json", "-limit", "5", "-offset", "3")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var got []tcapi.Indicator
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	// The seed's offset counts active indicators (the default -active-indicators=true)
	// of the account's own organization (no -owners and an empty sync.owners, as the seed).
	var active []int64
	for i := 1; len(active) < 8; i++ {
		if in, _ := sim.Indicator(tcsim.IndicatorID(i)); in.Active && in.OwnerName == "Demo Organization" {
			active = append(active, in.ID)
		}
	}
	if len(got) != 5 || got[0].ID != active[3] || got[4].ID != active[7] {
		t.Errorf("got %d indicators starting at %d, want 5 starting at %d", len(got), got[0].ID, active[3])
	}
	if got[0].Tags.Data == nil && got[0].SecurityLabels.Data == nil && got[0].ThreatAssessScore == nil {
		t.Errorf("expansions missing: %+v", got[0])
	}

	code, out, _ = runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "json", "-limit", "1000",
		"-indicator-type", "Mutex, Registry Key", "-active-indicators=false", "-confidence", "10", "-threat-assess-score", "100",
		"-owners", `Tricky "Quoted" \ Source's,Demo Source`)
	got = nil
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || len(got) == 0 {
		t.Fatalf("filtered: exit %d, %d indicators", code, len(got))
	}
	for _, in := range got {
		if in.Type != "Mutex" && in.Type != "Registry Key" || *in.Confidence < 10 || *in.ThreatAssessScore < 100 ||
			in.OwnerName != "Demo Source" && in.OwnerName != `Tricky "Quoted" \ Source's` {
			t.Errorf("indicator outside the filters: %d %s %s conf %d", in.ID, in.Type, in.OwnerName, *in.Confidence)
		}
	}

	code, out, errOut = runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "stix", "-limit", "20", "-indicator-type", "Host,URL,File")
	var bundle struct {
		Type    string
		Objects []map[string]any
	}
	if code != exitOK || json.Unmarshal([]byte(out), &bundle) != nil || bundle.Type != "bundle" || len(bundle.Objects) < 20 {
		t.Errorf("-format stix: exit %d, %d objects\n%.300s%s", code, len(bundle.Objects), out, errOut)
	}

	// -tql overrides the other filters; a TQL error is a runtime failure naming it.
	code, out, _ = runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "json", "-tql", `summary = "ASN6"`, "-indicator-type", "Host")
	if code != exitOK || !strings.Contains(out, `"AS Number": "ASN6"`) {
		t.Errorf("-tql: exit %d\n%s", code, out)
	}
	code, _, errOut = runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-tql", `bogus = 1`)
	if code != exitFailure || !strings.Contains(errOut, "TQL Parse Error") {
		t.Errorf("bad tql: exit %d, stderr %q", code, errOut)
	}
}

// Hostile values never break the table: one line per indicator, no raw
// control or bidi characters, long values cut.
func TestTCGetIndicatorsTableIsTerminalSafe(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 3, Indicators: 3600, Groups: 20, IncludeInactiveByDefault: true}, "")
	code, out, errOut := runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-limit", "3600", "-active-indicators=false",
		"-tql", `typeName IN ("Mutex","Email Subject","User Agent","Hashtag","URL","Registry Key")`)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	want := 0
	for i := 1; i <= 3600; i++ {
		switch (i - 1) % 12 {
		case 2, 7, 8, 9, 10, 11:
			want++
		}
	}
	if len(lines) != want+2 || lines[len(lines)-1] != fmt.Sprintf("%d indicators", want) {
		t.Errorf("%d lines for %d indicators; last %q", len(lines), want, lines[len(lines)-1])
	}
	for _, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || r == '\u202e') {
			t.Fatalf("raw control character %U in table output", r)
		}
	}
	if !strings.Contains(out, `\u202e`) || !strings.Contains(out, `\n`) || !strings.Contains(out, "…") {
		t.Error("hostile values were not escaped and cut visibly")
	}
}

func TestTCGetIndicatorsUsageErrors(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 1}, "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-limit", "0"}, "-limit"},
		{[]string{"-offset", "-1"}, "-offset"},
		{[]string{"-confidence", "101"}, "-confidence"},
		{[]string{"-threat-assess-score", "1001"}, "-threat-assess-score"},
		{[]string{"-format", "xml"}, "-format"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, "", nil, append([]string{"tc-get-indicators", "-config", cfg}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tt.args, code, errOut, tt.want)
		}
	}
}

func TestCheckThreatConnect(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "sync:\n  owners: [Demo Source]\n")
	code, out, errOut := runCmd(t, "", nil, "check", "-config", cfg)
	for _, want := range []string{"ok   tc reachable", "ok   tc clock skew", "ok   tc auth         HMAC", "ok   tc owners       4 visible"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s%s", want, out, errOut)
		}
	}
	_ = code // the database check (another helper's) decides the overall code

	// A configured owner the credentials cannot see fails and is named.
	cfg, _ = simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "sync:\n  owners: [Nobody Inc]\n")
	code, out, errOut = runCmd(t, "", nil, "check", "-config", cfg)
	if code == exitOK || !strings.Contains(out, `FAIL tc owners`) || !strings.Contains(out, `"Nobody Inc"`) || !strings.Contains(errOut, "configured owners not visible") {
		t.Errorf("missing owner: exit %d\n%s%s", code, out, errOut)
	}

	// A skewed clock is reported as such, and authentication then fails.
	cfg, _ = simConfig(t, tcsim.Options{Seed: 1, Indicators: 10, Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}, "")
	code, out, errOut = runCmd(t, "", nil, "check", "-config", cfg)
	if code == exitOK || !strings.Contains(out, "FAIL tc clock skew") || !strings.Contains(out, "Timestamp out of acceptable time range") {
		t.Errorf("skew: exit %d\n%s%s", code, out, errOut)
	}

	// A base URL without /api.
	cfg, _ = simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "/api\n", "\n", 1)), 0o600)
	code, out, _ = runCmd(t, "", nil, "check", "-config", cfg)
	if code == exitOK || !strings.Contains(out, "must end in /api") {
		t.Errorf("base url without /api: exit %d\n%s", code, out)
	}

	// Nothing listening.
	dir := t.TempDir()
	bad := filepath.Join(dir, "c.yaml")
	os.WriteFile(bad, []byte("storage:\n  path: "+filepath.Join(dir, "db")+"\nthreatconnect:\n  base_url: http://127.0.0.1:1/api\n  api_token: x\n  max_retries: 0\n"), 0o600)
	code, out, _ = runCmd(t, "", nil, "check", "-config", bad)
	if code == exitOK || !strings.Contains(out, "FAIL tc reachable") {
		t.Errorf("unreachable: exit %d\n%s", code, out)
	}
}

// tc-simulator as a new user runs it: start it, let it write a
// configuration, point the tc-* commands at it, stop it with a signal.
func TestTCSimulatorCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sim.yaml")
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"tc-simulator", "-listen", "127.0.0.1:0", "-indicators", "300", "-seed", "9", "-write-config", cfgPath},
			strings.NewReader(""), out, io.Discard, func(string) string { return "" })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("simulator did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	banner := out.String()
	sc := bufio.NewScanner(strings.NewReader(banner))
	fields := map[string]string{}
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(fields["base URL"], "http://127.0.0.1:") || fields["access id"] == "" || fields["secret key"] == "" {
		t.Errorf("banner:\n%s", banner)
	}
	code, stdout, errOut := runCmd(t, "", nil, "tc-get-indicators", "-config", cfgPath, "-limit", "3")
	if code != exitOK || !strings.Contains(stdout, "3 indicators") {
		t.Errorf("tc-get-indicators against tc-simulator: exit %d\n%s%s", code, stdout, errOut)
	}
	code, stdout, _ = runCmd(t, "", nil, "tc-get-owners", "-config", cfgPath)
	if code != exitOK || !strings.Contains(stdout, "Demo Community") {
		t.Errorf("tc-get-owners against tc-simulator: exit %d\n%s", code, stdout)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("tc-simulator exit %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tc-simulator did not stop")
	}
	// Refuses to overwrite the configuration.
	if code, _, errOut := runCmd(t, "", nil, "tc-simulator", "-listen", "127.0.0.1:0", "-write-config", cfgPath); code != exitUsage || !strings.Contains(errOut, "exists") {
		t.Errorf("overwrite: exit %d %q", code, errOut)
	}
}

// TestJSONArrayWriterMatchesWriteJSON: tc-get-indicators -format json
// streams its array page by page, byte for byte as the whole array was
// written before.
func TestJSONArrayWriterMatchesWriteJSON(t *testing.T) {
	items := []tcapi.Indicator{{ID: 1, Type: "Host", Summary: "a.example"}, {ID: 2, Type: "Address", Summary: "192.0.2.1 <&>"},
		{ID: 3, Type: "URL", Summary: "https://b.example/x?y=1"}}
	for n := 0; n <= len(items); n++ {
		var want, got bytes.Buffer
		if err := writeJSON(&want, items[:n]); err != nil {
			t.Fatal(err)
		}
		a := newJSONArrayWriter(&got)
		for _, it := range items[:n] {
			if err := a.add(it); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.close(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d items: streamed\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}
}
