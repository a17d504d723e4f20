package storage

import (
	"strings"
	"testing"
)

// Every id maps to a distinct key and back; canonical ids get short keys.
func TestObjKeyRoundTrip(t *testing.T) {
	ids := []string{
		"indicator--be258d77-31b9-5466-ad14-47c3c8f0a401",
		"observed-data--00000000-0000-0000-0000-000000000000",
		"x-custom-thing--ffffffff-ffff-ffff-ffff-ffffffffffff",
		"indicator--BE258D77-31B9-5466-AD14-47C3C8F0A401", // not canonical: kept as text
		"indicator--be258d77-31b9-5466-ad14-47c3c8f0a40",
		"--be258d77-31b9-5466-ad14-47c3c8f0a401",
		"~~indicator--x", "~", "", "plain",
	}
	seen := map[string]string{}
	for _, id := range ids {
		k := objKey(id)
		if back := stixID(k); back != id {
			t.Errorf("%q -> %q -> %q", id, k, back)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%q and %q share key %q", id, other, k)
		}
		seen[k] = id
	}
	if k := objKey(ids[0]); len(k) != 24 || !strings.HasPrefix(k, "~") {
		t.Errorf("canonical indicator id keyed as %q (%d bytes)", k, len(k))
	}
}

func FuzzObjKey(f *testing.F) {
	f.Add("indicator--be258d77-31b9-5466-ad14-47c3c8f0a401")
	f.Add("~AAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, id string) {
		if back := stixID(objKey(id)); back != id {
			t.Fatalf("%q -> %q -> %q", id, objKey(id), back)
		}
	})
}
