package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/config"
)

// seedParameters are the parameters and commands of the XSOAR ThreatConnect
// Feed (../shared/seed/threatconnect-feed.txt and threatconnect-v3.md
// §12.1, §12.8), each of which the README's seed table must map.
var seedParameters = []string{
	"Base URL", "Access ID", "Secret key", "Tags to filter results by", "Owners", "Fetch indicators",
	"Indicator Reputation", "Source Reliability", "Traffic Light Protocol Color", "Feed Fetch Interval",
	"Trust any certificate (not secure)", "Bypass exclusion list", "Tags", "Indicator types", "Group type",
	"Active Indicators Only", "Create Relationships", "Indicator Query", "Group Query (seed 2.2.0)",
	"Confidence Threshold", "Threat Assess Score Threshold", "Test (button)",
	"tc-get-indicators", "tc-get-indicators owners", "tc-get-indicators limit", "tc-get-indicators offset",
	"tc-get-indicators tql_query", "tc-get-indicators indicator_type", "tc-get-indicators active_indicators",
	"tc-get-indicators confidence", "tc-get-indicators threat_assess_score", "tc-get-owners",
}

// TestREADMESeedTable keeps the README's seed table true: every seed
// parameter has a row, and every config key, flag and command a row names
// exists.
func TestREADMESeedTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "<!-- seed-parameters:begin -->")
	table, _, ok2 := strings.Cut(table, "<!-- seed-parameters:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no seed-parameters table")
	}
	rows := map[string]string{} // seed name → mapping cell
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 3 || strings.HasPrefix(cells[0], "---") || cells[0] == "seed parameter or command" {
			continue
		}
		if strings.TrimSpace(cells[2]) == "" {
			t.Errorf("row %q describes no behaviour", cells[0])
		}
		rows[strings.TrimSpace(cells[0])] = cells[1]
	}
	keys := configKeys(reflect.TypeOf(config.Config{}), "")
	tick := regexp.MustCompile("`([^`]+)`")
	for _, name := range seedParameters {
		cell, ok := rows[name]
		if !ok {
			t.Errorf("seed parameter %q has no row in the README table", name)
			continue
		}
		targets := tick.FindAllStringSubmatch(cell, -1)
		if len(targets) == 0 {
			t.Errorf("%q: no config key, flag or command in %q", name, cell)
		}
		for _, m := range targets {
			target := m[1]
			switch {
			case strings.HasPrefix(target, "taxii-bridge "):
				if _, ok := commands[strings.TrimPrefix(target, "taxii-bridge ")]; !ok {
					t.Errorf("%q maps to %s, which is no command", name, target)
				}
			case strings.HasPrefix(target, "-"):
				cmd, _, _ := strings.Cut(name, " ")
				if !hasFlag(t, cmd, target) {
					t.Errorf("%q maps to %s, which %s does not take", name, target, cmd)
				}
			default:
				if !keys[target] {
					t.Errorf("%q maps to %s, which is no configuration key", name, target)
				}
			}
		}
	}
	for name := range rows {
		found := false
		for _, p := range seedParameters {
			found = found || p == name
		}
		if !found {
			t.Errorf("README row %q is not a known seed parameter (add it to seedParameters)", name)
		}
	}
	// With the seed's documentation at hand, every parameter name above is
	// checked against it, so a typo cannot hide a missing mapping.
	shared := filepath.Join("..", "..", "..", "shared")
	if d := os.Getenv("TB_SHARED"); d != "" {
		shared = d // worktrees keep ../shared elsewhere
	}
	seedDoc := filepath.Join(shared, "seed", "threatconnect-feed.txt")
	if d := os.Getenv("SEED_DOC"); d != "" {
		seedDoc = d
	}
	seed, err := os.ReadFile(seedDoc)
	if err != nil {
		t.Logf("seed documentation not found (%v); names not cross-checked", err)
		return
	}
	for _, name := range seedParameters {
		base := strings.TrimSuffix(strings.TrimSuffix(name, " (seed 2.2.0)"), " (button)")
		if _, arg, ok := strings.Cut(base, " "); ok && strings.HasPrefix(base, "tc-get-indicators") {
			base = arg
		}
		if !strings.Contains(string(seed), base) && base != "Group Query" {
			t.Errorf("%q does not occur in the seed documentation", base)
		}
	}
}

// configKeys lists the dotted YAML keys of t ("sync.owners").
func configKeys(t reflect.Type, prefix string) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		out[key] = true
		if f.Type.Kind() == reflect.Struct {
			for k := range configKeys(f.Type, key+".") {
				out[k] = true
			}
		}
	}
	return out
}

// hasFlag reports whether command cmd takes flag (as "-name").
func hasFlag(t *testing.T, cmd, flag string) bool {
	t.Helper()
	_, _, usage := runCmd(t, "", nil, cmd, "-h")
	for _, line := range strings.Split(usage, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == flag {
			return true
		}
	}
	return false
}
