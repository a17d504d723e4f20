package stixmap

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata (never in CI)")

// goldenInput is a <case>.tc.json file: ThreatConnect wire JSON plus options.
type goldenInput struct {
	Comment string `json:"comment"`
	Options struct {
		BaseURL             string            `json:"base_url"`
		TLPMode             string            `json:"tlp_mode"`
		DefaultTLP          string            `json:"default_tlp"`
		IndicatorReputation string            `json:"indicator_reputation"`
		SourceReliability   string            `json:"source_reliability"`
		FeedTags            []string          `json:"feed_tags"`
		IdentityClass       map[string]string `json:"identity_class"`
		ThreatAs            string            `json:"threat_as"`
		ContextLabels       bool              `json:"context_labels"`
		OpenCTI             bool              `json:"opencti"`
	} `json:"options"`
	Owners     []tcapi.Owner     `json:"owners"`
	Indicators []tcapi.Indicator `json:"indicators"`
	Groups     []tcapi.Group     `json:"groups"`
	Deleted    []tcapi.DeletedIndicator
}

func mustReadInput(t *testing.T, path string) goldenInput {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in goldenInput
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return in
}

func mustMapper(t testing.TB, in goldenInput) *Mapper {
	t.Helper()
	o := in.Options
	level := tlp.None
	if o.DefaultTLP != "" {
		l, err := tlp.Parse(o.DefaultTLP)
		if err != nil {
			t.Fatal(err)
		}
		level = l
	}
	m, err := New(Options{BaseURL: o.BaseURL, TLPMode: o.TLPMode, DefaultTLP: level, IndicatorReputation: o.IndicatorReputation,
		SourceReliability: o.SourceReliability, FeedTags: o.FeedTags, IdentityClass: o.IdentityClass, ThreatAs: o.ThreatAs,
		ContextLabels: o.ContextLabels, OpenCTI: o.OpenCTI})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// mapAll maps a whole input the way the sync does and returns every
// distinct object. An id produced twice must have the same bytes: that is
// how both ThreatConnect sides of an association become one relationship
// (stix-mapping.md §4.4 rule 2).
func mapAll(t testing.TB, m *Mapper, in goldenInput) []Object {
	t.Helper()
	var all []Object
	seen := map[string][]byte{}
	add := func(from string, objs ...Object) {
		for _, o := range objs {
			if prev, ok := seen[o.ID]; ok {
				if !bytes.Equal(prev, o.JSON) {
					t.Errorf("%s: %s produced twice with different content:\n%s\n%s", from, o.ID, prev, o.JSON)
				}
				continue
			}
			seen[o.ID] = o.JSON
			all = append(all, o)
		}
	}
	add("markings", m.Markings()...)
	add("bridge", m.Bridge())
	for _, ow := range in.Owners {
		o, err := m.Owner(ow)
		if err != nil {
			t.Fatalf("Owner(%d): %v", ow.ID, err)
		}
		add("owner", o)
	}
	for _, ind := range in.Indicators {
		objs, err := m.Indicator(ind)
		if err != nil {
			t.Fatalf("Indicator(%d): %v", ind.ID, err)
		}
		add("indicator "+ind.Type, objs...)
	}
	for _, g := range in.Groups {
		objs, err := m.Group(g)
		if err != nil {
			t.Fatalf("Group(%d): %v", g.ID, err)
		}
		add("group "+g.Type, objs...)
	}
	return all
}

func bundleJSON(t testing.TB, objs []Object) []byte {
	t.Helper()
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		raws[i] = o.JSON
	}
	b, err := json.MarshalIndent(map[string]any{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": raws}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGolden maps every testdata/<case>.tc.json and compares the result by
// JSON meaning with testdata/<case>.stix.json. Every object is validated
// against the OASIS schemas and the invariants of checkInvariants.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.tc.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".tc.json")
		t.Run(name, func(t *testing.T) {
			in := mustReadInput(t, f)
			m := mustMapper(t, in)
			objs := mapAll(t, m, in)
			checkObjects(t, objs)
			got := bundleJSON(t, objs)
			golden := filepath.Join("testdata", name+".stix.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once to create it)", err)
			}
			var gv, wv any
			if err := json.Unmarshal(got, &gv); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &wv); err != nil {
				t.Fatalf("golden %s: %v", golden, err)
			}
			if d := cmp.Diff(wv, gv); d != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, d)
			}
		})
	}
}
