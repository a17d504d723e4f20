package metrics_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taxii-bridge/taxii-bridge/metrics"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestTCOutcome(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   string
	}{
		{200, nil, "2xx"}, {204, nil, "2xx"}, {429, nil, "429"}, {404, nil, "4xx"}, {401, nil, "4xx"},
		{500, nil, "5xx"}, {503, nil, "5xx"}, {0, timeoutErr{}, "timeout"},
		{0, context.DeadlineExceeded, "timeout"}, {0, errors.New("connection reset"), "error"},
	}
	for _, tt := range tests {
		if got := metrics.TCOutcome(tt.status, tt.err); got != tt.want {
			t.Errorf("TCOutcome(%d, %v) = %q, want %q", tt.status, tt.err, got, tt.want)
		}
	}
}

// A nil *Metrics records nothing and does not panic, so callers need no
// "metrics enabled" branches.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.Request("/x", "GET", 200, time.Millisecond)
	m.Poll("p", "c", 1, 2, 3, time.Now())
	m.Sync(metrics.SyncRun{})
	m.TCRequest(200, nil, time.Millisecond)
	m.TCModified(time.Now())
	m.RateLimited("p")
	m.AuthFailure(true)
	m.StorageFault()
	m.SyncLeader("r", true)
}

// sync_leader says whether this replica leads, labelled with its name.
func TestSyncLeader(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.SyncLeader("host-1", true)
	if got := gathered(t, m, "taxii_bridge_sync_leader"); got != 1 {
		t.Errorf("sync_leader while leading = %v; want 1", got)
	}
	m.SyncLeader("host-1", false)
	want := `
# HELP taxii_bridge_sync_leader 1 while this replica runs the sync (leads), 0 while another replica does; labelled with this replica's name. A single-process (SQLite) deployment always leads.
# TYPE taxii_bridge_sync_leader gauge
taxii_bridge_sync_leader{replica="host-1"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "taxii_bridge_sync_leader"); err != nil {
		t.Error(err)
	}
}

// The newest date_added delivered only moves forward; the lag counts from
// the start of the last successful run; storage stats are cached.
func TestMetrics(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	calls := 0
	m := metrics.New(metrics.Options{
		Now: func() time.Time { return now },
		Storage: func(context.Context) (metrics.StorageStats, error) {
			calls++
			return metrics.StorageStats{DatabaseBytes: 4096, Collections: []metrics.CollectionStats{{Collection: "intel", Objects: 3, Versions: 5, NewestDateAdded: now.UnixMicro()}}}, nil
		},
	})
	reg := m.Registry()
	m.Poll("user:a", "intel", 10, 1000, now.Add(-time.Hour).UnixMicro(), now)
	m.Poll("user:a", "intel", 2, 100, now.Add(-2*time.Hour).UnixMicro(), now.Add(time.Minute))
	want := `
# HELP taxii_bridge_client_newest_date_added_timestamp_seconds Newest date_added delivered to the principal from the collection (Unix time).
# TYPE taxii_bridge_client_newest_date_added_timestamp_seconds gauge
taxii_bridge_client_newest_date_added_timestamp_seconds{collection="intel",principal="user:a"} 1.7672652e+09
# HELP taxii_bridge_client_objects_served_total Objects (or manifest records) delivered to a principal.
# TYPE taxii_bridge_client_objects_served_total counter
taxii_bridge_client_objects_served_total{collection="intel",principal="user:a"} 12
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taxii_bridge_client_newest_date_added_timestamp_seconds", "taxii_bridge_client_objects_served_total"); err != nil {
		t.Error(err)
	}
	if got := gathered(t, m, "taxii_bridge_sync_lag_seconds"); got != -1 {
		t.Errorf("lag before any sync = %v, want -1", got)
	}
	m.Sync(metrics.SyncRun{Started: now.Add(-10 * time.Minute), Duration: time.Minute, Fetched: 5, Skipped: map[string]int{"private": 2}})
	m.Sync(metrics.SyncRun{Started: now.Add(-time.Minute), Duration: time.Second, Err: errors.New("boom")})
	if got := gathered(t, m, "taxii_bridge_sync_lag_seconds"); got != 600 {
		t.Errorf("lag = %v, want 600 (a failed run does not count)", got)
	}
	for i := 0; i < 3; i++ {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !strings.Contains(w.Body.String(), `taxii_bridge_storage_objects{collection="intel"} 3`) || !strings.Contains(w.Body.String(), `taxii_bridge_sync_skipped_total{reason="private"} 2`) {
			t.Fatalf("scrape lacks series:\n%s", w.Body.String())
		}
	}
	if calls != 1 {
		t.Errorf("storage stats read %d times in three scrapes within the TTL, want 1", calls)
	}
}

// gathered is the value of an unlabelled gauge in the registry.
func gathered(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.Metric) == 1 {
			return f.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
