package tcsync_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// flakySource is a ThreatConnect that fails its first failures owner
// lookups and then holds one owner with nothing in it.
type flakySource struct {
	mu       sync.Mutex
	failures int
}

func (s *flakySource) Owners(context.Context) ([]tcapi.Owner, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return nil, errors.New("ThreatConnect is down")
	}
	return []tcapi.Owner{{ID: 1, Name: "Org", Type: "Organization"}}, nil
}

func (s *flakySource) Indicators(context.Context, tcapi.Query, func([]tcapi.Indicator) error) error {
	return nil
}

func (s *flakySource) Groups(context.Context, tcapi.Query, func([]tcapi.Group) error) error {
	return nil
}

func (s *flakySource) DeletedIndicators(context.Context, time.Time, string, func([]tcapi.DeletedIndicator) error) error {
	return nil
}

// Run syncs every interval; after a failure it retries in 30 s, then 1 m,
// 2 m, … but never later than the interval, and a success returns to the
// interval. The schedule is checked on synctest's fake clock: no real
// waiting, and the times are exact.
func TestRunRetriesWithBackoffThenKeepsTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		store, err := storage.Open(ctx, filepath.Join(t.TempDir(), "run.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		m, err := stixmap.New(stixmap.Options{BaseURL: "https://tc.example/api"})
		if err != nil {
			t.Fatal(err)
		}
		sc := tcsync.Sync{Interval: 100 * time.Second}
		start := time.Now()
		var runs []time.Duration
		var errs []bool
		w, err := tcsync.New(&flakySource{failures: 3}, store, tcsync.Options{Sync: sc, Mapper: m,
			OnRun: func(began time.Time, _ tcsync.Summary, err error) {
				runs = append(runs, began.Sub(start))
				errs = append(errs, err != nil)
				if len(runs) == 6 {
					cancel()
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Run(ctx); err != nil {
			t.Fatalf("Run = %v; want nil when its context ends", err)
		}
		// fail, +30s fail, +1m fail, +min(2m, 100s) ok, +100s ok, +100s ok
		want := []time.Duration{0, 30 * time.Second, 90 * time.Second, 190 * time.Second, 290 * time.Second, 390 * time.Second}
		wantErr := []bool{true, true, true, false, false, false}
		if len(runs) != len(want) {
			t.Fatalf("%d runs, want %d", len(runs), len(want))
		}
		for i := range want {
			if runs[i] != want[i] || errs[i] != wantErr[i] {
				t.Errorf("run %d at +%v (failed: %v); want +%v (failed: %v)", i+1, runs[i], errs[i], want[i], wantErr[i])
			}
		}
		if h := w.Health(); h.ConsecutiveFailures != 0 || h.LastError != "" {
			t.Errorf("health after recovering = %+v", h)
		}
	})
}
