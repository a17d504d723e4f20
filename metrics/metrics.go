package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the one prefix of every metric (Prometheus naming conventions).
const Namespace = "taxii_bridge"

// Metrics holds every taxii-bridge metric in its own registry. The zero
// value is not usable; a nil *Metrics is, and records nothing, so callers
// need no "metrics enabled" branches.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	polls         *prometheus.CounterVec
	objectsServed *prometheus.CounterVec
	bytesServed   *prometheus.CounterVec
	lastPoll      *prometheus.GaugeVec
	newestServed  *prometheus.GaugeVec
	rateLimited   *prometheus.CounterVec
	authFailures  *prometheus.CounterVec

	syncRuns        *prometheus.CounterVec
	syncDuration    prometheus.Histogram
	syncFetched     prometheus.Counter
	syncVersions    prometheus.Counter
	syncUnchanged   prometheus.Counter
	syncSkipped     *prometheus.CounterVec
	syncRevocations prometheus.Counter
	syncLastSuccess prometheus.Gauge
	syncTCNewest    prometheus.Gauge
	syncLeader      *prometheus.GaugeVec

	tcRequests *prometheus.CounterVec
	tcDuration prometheus.Histogram

	storageFaults prometheus.Counter

	mu            sync.Mutex
	lastSyncStart time.Time // start of the last successful run: the store holds TC as of then
	tcNewest      time.Time
}

// Options configures New.
type Options struct {
	// Storage, when set, is read at scrape time for the storage gauges,
	// at most once per StorageTTL (default 30 s): counting a large
	// collection reads its whole membership index.
	Storage    func(ctx context.Context) (StorageStats, error)
	StorageTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ProcessMetrics adds the standard Go runtime and process collectors.
	ProcessMetrics bool
}

// StorageStats is what the storage gauges report.
type StorageStats struct {
	DatabaseBytes int64
	Collections   []CollectionStats
}

// CollectionStats describes one collection.
type CollectionStats struct {
	// Collection is the label value: the collection's alias.
	Collection string
	// Objects counts distinct objects (one latest version each), Versions
	// every stored version membership.
	Objects, Versions int64
	// NewestDateAdded is the newest date_added in µs since the epoch, 0 when empty.
	NewestDateAdded int64
}

// New builds the metrics and registers them in a fresh registry.
func New(opt Options) *Metrics {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.StorageTTL <= 0 {
		opt.StorageTTL = 30 * time.Second
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: opt.Now}
	f := factory{m.reg}
	m.httpRequests = f.counterVec("http_requests_total", "HTTP requests answered, by route template, method and status code.", "route", "method", "code")
	m.httpDuration = f.histogramVec("http_request_duration_seconds", "Time to answer an HTTP request, by route template and method.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route", "method")
	m.polls = f.counterVec("client_polls_total", "Collection listings (objects, manifest, object, versions) answered 200 to a principal.", "principal", "collection")
	m.objectsServed = f.counterVec("client_objects_served_total", "Objects (or manifest records) delivered to a principal.", "principal", "collection")
	m.bytesServed = f.counterVec("client_bytes_served_total", "Response body bytes (before compression) of a principal's listings.", "principal", "collection")
	m.lastPoll = f.gaugeVec("client_last_poll_timestamp_seconds", "When the principal last polled the collection (Unix time), 304s included.", "principal", "collection")
	m.newestServed = f.gaugeVec("client_newest_date_added_timestamp_seconds", "Newest date_added delivered to the principal from the collection (Unix time).", "principal", "collection")
	m.rateLimited = f.counterVec("rate_limited_total", "Requests refused with 429 because the principal was over its rate limit.", "principal")
	m.authFailures = f.counterVec("auth_failures_total", "Failed authentications, by outcome: rejected (bad credentials) or throttled (refused before checking).", "outcome")

	m.syncRuns = f.counterVec("sync_runs_total", "Sync runs, by result (success or failure).", "result")
	m.syncDuration = f.histogram("sync_duration_seconds", "Duration of a sync run.", prometheus.ExponentialBuckets(0.1, 2.5, 12))
	m.syncFetched = f.counter("sync_items_fetched_total", "ThreatConnect items received by the sync (indicators, groups, deletions).")
	m.syncVersions = f.counter("sync_versions_written_total", "STIX versions written by the sync, revocations included.")
	m.syncUnchanged = f.counter("sync_unchanged_total", "Objects the sync found unchanged (no version written).")
	m.syncSkipped = f.counterVec("sync_skipped_total", "ThreatConnect items not published, by reason.", "reason")
	m.syncRevocations = f.counter("sync_revocations_total", "Revoked versions written by the sync.")
	m.syncLastSuccess = f.gauge("sync_last_success_timestamp_seconds", "When the last successful sync run ended (Unix time).")
	m.syncLeader = f.gaugeVec("sync_leader", "1 while this replica runs the sync (leads), 0 while another replica does; labelled with this replica's name. A single-process (SQLite) deployment always leads.", "replica")
	m.syncTCNewest = f.gauge("sync_threatconnect_newest_modified_timestamp_seconds", "Newest ThreatConnect lastModified the sync has received (Unix time).")
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "sync_lag_seconds",
		Help: "How far the store may be behind ThreatConnect: seconds since the start of the last successful sync run (everything ThreatConnect modified before it is stored). -1 before the first success.",
	}, m.lag))

	m.tcRequests = f.counterVec("threatconnect_requests_total", "ThreatConnect API requests, by outcome: 2xx, 429, 4xx, 5xx, timeout or error.", "outcome")
	m.tcDuration = f.histogram("threatconnect_request_duration_seconds", "Duration of a ThreatConnect API request.", prometheus.ExponentialBuckets(0.01, 2.5, 10))

	m.storageFaults = f.counter("storage_faults_total", "Storage errors that indicate a damaged or unusable database file.")
	if opt.Storage != nil {
		m.reg.MustRegister(&storageCollector{stats: opt.Storage, ttl: opt.StorageTTL, now: opt.Now})
	}
	if opt.ProcessMetrics {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry every metric is in (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request records one answered HTTP request.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Poll records one listing delivered to a principal: objects items and
// bytes body bytes, the newest date_added among them (µs, 0 when none), at
// time at. A 304 is a poll with no objects and no bytes.
func (m *Metrics) Poll(principal, collection string, objects int, bytes int64, newestDateAdded int64, at time.Time) {
	if m == nil {
		return
	}
	m.polls.WithLabelValues(principal, collection).Inc()
	m.objectsServed.WithLabelValues(principal, collection).Add(float64(objects))
	m.bytesServed.WithLabelValues(principal, collection).Add(float64(bytes))
	m.lastPoll.WithLabelValues(principal, collection).Set(unix(at))
	if newestDateAdded > 0 {
		g := m.newestServed.WithLabelValues(principal, collection)
		v := float64(newestDateAdded) / 1e6
		// The gauge only moves forward: a client re-reading old pages has
		// still received the newest it received before.
		m.mu.Lock()
		if cur := gaugeValue(g); v > cur {
			g.Set(v)
		}
		m.mu.Unlock()
	}
}

// RateLimited records a request refused for the principal's rate limit.
func (m *Metrics) RateLimited(principal string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(principal).Inc()
}

// AuthFailure records a failed authentication; throttled is true when the
// source address was refused before the credentials were checked.
func (m *Metrics) AuthFailure(throttled bool) {
	if m == nil {
		return
	}
	if throttled {
		m.authFailures.WithLabelValues("throttled").Inc()
	} else {
		m.authFailures.WithLabelValues("rejected").Inc()
	}
}

// SyncRun is the outcome of one sync run, as the metrics need it.
type SyncRun struct {
	Started                                  time.Time
	Duration                                 time.Duration
	Err                                      error
	Fetched, NewVersions, Unchanged, Revoked int
	Skipped                                  map[string]int
}

// Sync records a finished sync run.
func (m *Metrics) Sync(r SyncRun) {
	if m == nil {
		return
	}
	result := "success"
	if r.Err != nil {
		result = "failure"
	}
	m.syncRuns.WithLabelValues(result).Inc()
	m.syncDuration.Observe(r.Duration.Seconds())
	m.syncFetched.Add(float64(r.Fetched))
	m.syncVersions.Add(float64(r.NewVersions))
	m.syncUnchanged.Add(float64(r.Unchanged))
	m.syncRevocations.Add(float64(r.Revoked))
	for reason, n := range r.Skipped {
		m.syncSkipped.WithLabelValues(reason).Add(float64(n))
	}
	if r.Err == nil {
		m.syncLastSuccess.Set(unix(r.Started.Add(r.Duration)))
		m.mu.Lock()
		if r.Started.After(m.lastSyncStart) {
			m.lastSyncStart = r.Started
		}
		m.mu.Unlock()
	}
}

// SyncLeader records whether replica (this process) leads the sync.
func (m *Metrics) SyncLeader(replica string, leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.syncLeader.WithLabelValues(replica).Set(v)
}

// TCModified records a ThreatConnect lastModified the sync received.
func (m *Metrics) TCModified(t time.Time) {
	if m == nil || t.IsZero() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.tcNewest) {
		m.tcNewest = t
		m.syncTCNewest.Set(unix(t))
	}
}

func (m *Metrics) lag() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastSyncStart.IsZero() {
		return -1
	}
	return max(0, m.now().Sub(m.lastSyncStart).Seconds())
}

// TCRequest records one ThreatConnect API exchange: the HTTP status (0
// when there was no response) or the transport error, and its duration.
func (m *Metrics) TCRequest(status int, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.tcRequests.WithLabelValues(TCOutcome(status, err)).Inc()
	m.tcDuration.Observe(d.Seconds())
}

// TCOutcome classifies a ThreatConnect exchange: "2xx", "429", "4xx",
// "5xx", "timeout" (client timeout or deadline) or "error" (any other
// transport failure).
func TCOutcome(status int, err error) string {
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return "timeout"
		}
		return "error"
	}
	switch {
	case status >= 200 && status < 300:
		return "2xx"
	case status == http.StatusTooManyRequests:
		return "429"
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	}
	return "error"
}

// StorageFault records a storage error that indicates a damaged database.
func (m *Metrics) StorageFault() {
	if m == nil {
		return
	}
	m.storageFaults.Inc()
}

func unix(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }
