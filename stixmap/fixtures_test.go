package stixmap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sharedFixture is the STIX bundle other packages test with
// (testdata/stix/README.md): every object of every golden case, once.
var sharedFixture = filepath.Join("..", "testdata", "stix", "mapped-bundle.json")

// TestSharedFixture keeps ../testdata/stix/mapped-bundle.json equal to what
// the mapper produces (rewrite with -update) and schema-valid.
func TestSharedFixture(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.tc.json"))
	sort.Strings(files)
	var all []Object
	seen := map[string]bool{}
	for _, f := range files {
		in := mustReadInput(t, f)
		for _, o := range mapAll(t, mustMapper(t, in), in) {
			if !seen[o.ID] {
				seen[o.ID] = true
				all = append(all, o)
			}
		}
	}
	got := bundleJSON(t, all)
	if *update {
		if err := os.WriteFile(sharedFixture, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(sharedFixture)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	var gv, wv any
	_ = json.Unmarshal(got, &gv)
	if err := json.Unmarshal(want, &wv); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wv, gv); d != "" {
		t.Errorf("%s is stale (-file +mapper):\n%s", sharedFixture, d)
	}
}
