package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// TestCheckOwnerScope: check says which owners the sync reads — the account's
// own organization by default (the seed), every owner with ["*"].
func TestCheckOwnerScope(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "")
	_, out, errOut := runCmd(t, "", nil, "check", "-config", cfg)
	if !strings.Contains(out, `ok   sync owners     own organization only: "Demo Organization"`) {
		t.Errorf("default owners:\n%s%s", out, errOut)
	}
	cfg, _ = simConfig(t, tcsim.Options{Seed: 1, Indicators: 10}, "sync:\n  owners: [\"*\"]\n")
	_, out, errOut = runCmd(t, "", nil, "check", "-config", cfg)
	if !strings.Contains(out, `ok   sync owners     every readable owner (4;`) {
		t.Errorf("owners [*]:\n%s%s", out, errOut)
	}
}

// TestCheckRejectedTQL: a TQL ThreatConnect rejects — a group-only keyword in
// sync.tql, an indicator-only keyword in sync.group_tql — fails check with
// ThreatConnect's message and exit 2, and stops sync before it starts; a
// valid indicator TQL with a group TQL passes check and syncs.
func TestCheckRejectedTQL(t *testing.T) {
	tests := []struct {
		name, yaml, key, keyword string
	}{
		{"group keyword in sync.tql", "sync:\n  tql: 'status = \"New\"'\n", "sync.tql", "status"},
		{"indicator keyword in sync.group_tql", "sync:\n  group_tql: rating GEQ 4\n", "sync.group_tql", "rating"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, sim := simConfig(t, tcsim.Options{Seed: 1, Indicators: 30, Groups: 10}, tt.yaml)
			code, out, errOut := runCmd(t, "", nil, "check", "-config", cfg)
			if code != exitUsage {
				t.Errorf("check exit %d, want %d\n%s%s", code, exitUsage, out, errOut)
			}
			for _, want := range []string{tt.key + " rejected by ThreatConnect: TQL Parse Error", `"` + tt.keyword + `"`} {
				if !strings.Contains(out, want) || !strings.Contains(errOut, want) {
					t.Errorf("check output lacks %q:\n%s%s", want, out, errOut)
				}
			}
			before := sim.Requests()
			code, out, errOut = runCmd(t, "", nil, "sync", "-config", cfg, "-once")
			if code != exitUsage || !strings.Contains(errOut, tt.key+" rejected by ThreatConnect") {
				t.Errorf("sync -once: exit %d, want %d naming %s\n%s%s", code, exitUsage, tt.key, out, errOut)
			}
			// owners, then the indicator and group checks: nothing was synced
			if n := sim.Requests() - before; n > 3 {
				t.Errorf("sync sent %d requests before stopping; want the checks only", n)
			}
		})
	}

	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 120, Groups: 40},
		"sync:\n  first_fetch: 0s\n  owners: [\"*\"]\n  tql: 'rating GEQ 2 AND typeName IN (\"Host\", \"Address\")'\n  group_tql: 'typeName IN (\"Report\", \"Adversary\")'\n")
	code, out, errOut := runCmd(t, "", nil, "check", "-config", cfg)
	for _, want := range []string{"ok   tql indicators  accepted by ThreatConnect (sync.tql)", "ok   tql groups      accepted by ThreatConnect (sync.group_tql)"} {
		if !strings.Contains(out, want) {
			t.Errorf("valid TQLs: exit %d, output lacks %q\n%s%s", code, want, out, errOut)
		}
	}
	code, out, errOut = runCmd(t, "", nil, "sync", "-config", cfg, "-once")
	if code != exitOK || !strings.Contains(out, "synced:") {
		t.Fatalf("sync with an indicator and a group TQL: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", nil, "export", "-config", cfg, "-collection", "demo-organization")
	var bundle struct{ Objects []map[string]any }
	if code != exitOK || json.Unmarshal([]byte(out), &bundle) != nil {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	types := map[string]int{}
	for _, o := range bundle.Objects {
		types[o["type"].(string)]++
		if o["type"] == "indicator" {
			if tc := o["x_threatconnect_type"]; tc != "Host" && tc != "Address" {
				t.Errorf("indicator of type %v outside sync.tql", tc)
			}
		}
		if o["type"] == "report" || o["type"] == "threat-actor" {
			continue
		}
		if tc, _ := o["x_threatconnect_type"].(string); tc != "" && tc != "Host" && tc != "Address" {
			t.Errorf("%s of TC type %s outside the TQLs", o["type"], tc)
		}
	}
	if types["indicator"] == 0 || types["report"]+types["threat-actor"] == 0 {
		t.Errorf("synced types %v; want indicators and reports or threat actors", types)
	}
}

// TestTCGetIndicatorsInactive: -active-indicators=false returns active and
// inactive indicators (ThreatConnect's default is active only, §6.6).
func TestTCGetIndicatorsInactive(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 2, Indicators: 200}, "")
	count := func(args ...string) (active, inactive int) {
		t.Helper()
		code, out, errOut := runCmd(t, "", nil, append([]string{"tc-get-indicators", "-config", cfg, "-format", "json", "-limit", "1000", "-owners", "*"}, args...)...)
		var got []tcapi.Indicator
		if code != exitOK || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		for _, in := range got {
			if in.Active {
				active++
			} else {
				inactive++
			}
		}
		return active, inactive
	}
	a1, i1 := count()
	a2, i2 := count("-active-indicators=false")
	if i1 != 0 || a1 == 0 || i2 == 0 || a2 != a1 {
		t.Errorf("default: %d active, %d inactive; -active-indicators=false: %d active, %d inactive; want inactive ones only with false", a1, i1, a2, i2)
	}
}

// TestSyncSeedParityEndToEnd syncs the simulator into a store and reads the
// collection back: File Actions, DNS resolutions and false positives reach
// it, and a host with an invalid punycode label is published as an
// indicator without observable and counted under its skip reason.
func TestSyncSeedParityEndToEnd(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 5, Indicators: 600, Groups: 30},
		"sync:\n  first_fetch: 0s\n  owners: [\"*\"]\n  active_only: false\nstix:\n  context_labels: true\n  opencti: true\ntaxii:\n  per_owner_collections: false\n")
	code, out, errOut := runCmd(t, "", nil, "sync", "-config", cfg, "-once")
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "skipped_"+"observable_invalid_value=") {
		t.Errorf("the sync summary does not count omitted observables:\n%s", errOut)
	}
	code, out, errOut = runCmd(t, "", nil, "export", "-config", cfg, "-collection", "threatconnect")
	var bundle struct{ Objects []map[string]any }
	if code != exitOK || json.Unmarshal([]byte(out), &bundle) != nil {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	byID := map[string]map[string]any{}
	for _, o := range bundle.Objects {
		byID[o["id"].(string)] = o
	}
	rels := map[string]int{}
	var badPuny, falsePos, contextLabelled, scored int
	for _, o := range bundle.Objects {
		switch o["type"] {
		case "relationship":
			typ := o["relationship_type"].(string)
			src, tgt := o["source_ref"].(string), o["target_ref"].(string)
			switch {
			case strings.HasPrefix(typ, "file-") && strings.HasPrefix(src, "indicator--"):
				rels["file action, indicators"]++
			case strings.HasPrefix(typ, "file-") && strings.HasPrefix(src, "file--"):
				rels["file action, observables"]++
			case typ == "resolves-to" && strings.HasPrefix(src, "domain-name--"):
				rels["resolves-to"]++
				if byID[src] == nil || byID[tgt] == nil {
					t.Errorf("resolves-to %s → %s: an end is not in the collection", src, tgt)
				}
			}
		case "indicator":
			if strings.Contains(o["name"].(string), "xn--bad_puny") {
				badPuny++
			}
			if n, ok := o["x_threatconnect_false_positives"].(float64); ok && n > 0 {
				falsePos++
			}
			if _, ok := o["x_opencti_score"]; ok {
				scored++
			}
			labels, _ := o["labels"].([]any)
			for _, l := range labels {
				if strings.Contains(l.(string), ":") && !strings.HasPrefix(l.(string), "Threat Rating") {
					contextLabelled++
					break
				}
			}
		case "domain-name":
			if strings.Contains(o["value"].(string), "xn--bad_puny") {
				t.Errorf("domain-name %v published for an invalid punycode value", o["value"])
			}
		}
	}
	// The new relationships are marked at least as strictly as their ends
	// (DESIGN.md §10). Observables are shared by every item that names them,
	// so an SCO's stored marking also depends on other items (a private
	// indicator's address published only through a stricter host's
	// resolution): File Actions between observables are left to the store's
	// closure rules, as are the associations between observables before them.
	level := map[string]int{"": 0, "TLP:WHITE": 1, "TLP:CLEAR": 1, "TLP:GREEN": 2, "TLP:AMBER": 3, "TLP:AMBER+STRICT": 4, "TLP:RED": 5}
	tlpOf := func(o map[string]any) int {
		l := 0
		refs, _ := o["object_marking_refs"].([]any)
		for _, r := range refs {
			if md := byID[r.(string)]; md != nil {
				name, _ := md["name"].(string)
				l = max(l, level[name])
			}
		}
		return l
	}
	for _, o := range bundle.Objects {
		typ, _ := o["relationship_type"].(string)
		src, _ := o["source_ref"].(string)
		if o["type"] != "relationship" || !(strings.HasPrefix(typ, "file-") && strings.HasPrefix(src, "indicator--")) && typ != "resolves-to" {
			continue
		}
		for _, end := range []string{o["source_ref"].(string), o["target_ref"].(string)} {
			if e := byID[end]; e != nil && tlpOf(o) < tlpOf(e) {
				t.Errorf("%s %s is marked less strictly than its end %s", typ, o["id"], end)
			}
		}
	}
	for _, k := range []string{"file action, indicators", "file action, observables", "resolves-to"} {
		if rels[k] == 0 {
			t.Errorf("no %s relationship in the collection (%v)", k, rels)
		}
	}
	if badPuny == 0 || falsePos == 0 || contextLabelled == 0 || scored == 0 {
		t.Errorf("indicators: %d with invalid punycode, %d with false positives, %d context-labelled, %d with x_opencti_score; want each > 0",
			badPuny, falsePos, contextLabelled, scored)
	}
}
