package taxii

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// TestBootstrapViewServesCurrentObjectsFirst: a principal with the
// bootstrap view gets, on a poll without added_after, only current objects
// (not revoked, not past valid_until); with added_after it gets everything,
// revocations included. Other principals always get everything (issue 11).
func TestBootstrapViewServesCurrentObjectsFirst(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		for i := range c.Users {
			if c.Users[i].Name == "greg" {
				c.Users[i].BootstrapCurrent = true
			}
		}
	})
	live := ind(1, 0, tlpGreen)
	expired := ind(2, 0, tlpGreen)
	revoked := ind(3, 0, tlpGreen)
	objs := []storage.Object{live.object(t), expired.object(t), revoked.object(t)}
	objs[1].ValidUntil = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	objs[2].Revoked = true
	if err := f.store.Update(t.Context(), func(tx *storage.Tx) error {
		_, err := tx.Put(f.cols["intel"].ID, objs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	list := func(user, query string) []string {
		t.Helper()
		w := f.get(user, f.colPath("intel", "objects/"+query))
		wantStatus(t, w, http.StatusOK)
		got := ids(t, decode[envelopeResp](t, w).Objects)
		slices.Sort(got)
		return got
	}
	all := []string{stixID("indicator", 1), stixID("indicator", 2), stixID("indicator", 3)}
	if got := list("greg", ""); !slices.Equal(got, all[:1]) {
		t.Errorf("bootstrap poll from zero: %v, want only the current %v", got, all[:1])
	}
	if got := list("greg", "?match[version]=all&limit=1"); len(got) != 1 || got[0] != all[0] {
		t.Errorf("bootstrap poll from zero, all versions, first page: %v", got)
	}
	if got := list("greg", "?added_after=2000-01-01T00:00:00Z"); !slices.Equal(got, all) {
		t.Errorf("poll with added_after: %v, want everything, revocations included %v", got, all)
	}
	if got := list("alice", ""); !slices.Equal(got, all) {
		t.Errorf("a principal without the bootstrap view: %v, want everything", got)
	}
	if w := f.get("greg", f.colPath("intel", "manifest/")); !strings.Contains(w.Body.String(), all[0]) || strings.Contains(w.Body.String(), all[2]) {
		t.Errorf("bootstrap manifest from zero: %s", w.Body.String())
	}
}
