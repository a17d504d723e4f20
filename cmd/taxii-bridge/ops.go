package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/metrics"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/taxii"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// ops is the operational wiring of one process (issue 11): metrics, the
// storage health that /readyz and exit codes report, and the recent sync
// runs the status page shows. A nil *ops does nothing.
type ops struct {
	log     *slog.Logger
	metrics *metrics.Metrics // nil when metrics.listen is empty
	health  *storageHealth
	runs    syncHistory

	// Scale-out: elector, when set, decides whether this replica runs the
	// sync (newElector); fence, on PostgreSQL, keeps the sync's writes
	// inside this replica's leadership term.
	elector elector
	fence   *leader.Fence
}

func newOps(e *env, cfg *config.Config, store *storage.Store) *ops {
	o := &ops{log: e.Log, health: &storageHealth{log: e.Log, path: storeName(cfg.Storage)}}
	if cfg.Storage.Postgres() {
		o.fence = &leader.Fence{}
	}
	if cfg.Metrics.Listen != "" {
		o.metrics = metrics.New(metrics.Options{ProcessMetrics: true, Storage: storageStats(store)})
	}
	o.health.metrics = o.metrics
	return o
}

// storageStats adapts storage.Store.Stats to the metrics' view.
func storageStats(store *storage.Store) func(ctx context.Context) (metrics.StorageStats, error) {
	return func(ctx context.Context) (metrics.StorageStats, error) {
		st, err := store.Stats(ctx)
		if err != nil {
			return metrics.StorageStats{}, err
		}
		out := metrics.StorageStats{DatabaseBytes: st.DatabaseBytes}
		for _, c := range st.Collections {
			out.Collections = append(out.Collections, metrics.CollectionStats{
				Collection: c.Alias, Objects: c.Objects, Versions: c.Versions, NewestDateAdded: c.NewestDateAdded,
			})
		}
		return out, nil
	}
}

// serveMetrics serves /metrics on metrics.listen until ctx ends; nothing
// when metrics are off.
func (o *ops) serveMetrics(ctx context.Context, cfg *config.Config) error {
	if o == nil || o.metrics == nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: listen on %s: %w", cfg.Metrics.Listen, err)
	}
	return o.serveMetricsOn(ctx, ln)
}

func (o *ops) serveMetricsOn(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.metrics.Handler())
	o.log.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	if err := taxii.Serve(ctx, ln, mux, taxii.ServeOptions{Log: o.log}); err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// observer is what the TAXII server reports to; nil when metrics are off.
func (o *ops) observer() taxii.Observer {
	if o == nil || o.metrics == nil {
		return nil
	}
	return o.metrics
}

// storageHealth remembers the first storage fault (a damaged or unusable
// database file) and logs it once, with the file and what to do.
type storageHealth struct {
	log     *slog.Logger
	path    string
	metrics *metrics.Metrics

	mu    sync.Mutex
	fault error
}

// report records err when it is a storage fault; other errors are ignored.
func (h *storageHealth) report(err error) {
	if h == nil || !storage.IsFault(err) {
		return
	}
	h.metrics.StorageFault()
	h.mu.Lock()
	first := h.fault == nil
	if first {
		h.fault = err
	}
	h.mu.Unlock()
	if first {
		h.log.Error("storage fault: the database file is damaged or unusable (serve keeps running; /readyz reports not ready until a restart)",
			"file", h.path, "error", err,
			"what_to_do", "stop taxii-bridge, run `taxii-bridge check -full -config FILE`, then restore the file from a backup or move it aside and let the next sync rebuild it")
	}
}

// err is the recorded fault, nil when none.
func (h *storageHealth) err() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// quickCheck runs the store's quick_check and reports a failure.
func (h *storageHealth) quickCheck(ctx context.Context, store *storage.Store) error {
	err := store.Check(ctx, false)
	if err != nil && ctx.Err() == nil {
		if !storage.IsFault(err) {
			err = &storage.IntegrityError{Path: h.path, Problems: []string{err.Error()}}
		}
		h.report(err)
	}
	return err
}

// syncHistory keeps the last few sync runs for the status page.
type syncHistory struct {
	mu   sync.Mutex
	runs []taxii.SyncRun // newest first
}

const syncHistoryLen = 10

func (h *syncHistory) add(r taxii.SyncRun) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append([]taxii.SyncRun{r}, h.runs...)
	if len(h.runs) > syncHistoryLen {
		h.runs = h.runs[:syncHistoryLen]
	}
}

func (h *syncHistory) list() []taxii.SyncRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]taxii.SyncRun(nil), h.runs...)
}

// recordRun feeds one finished sync run to the metrics, the status page's
// history and the storage health.
func (o *ops) recordRun(started time.Time, sum tcsync.Summary, err error) {
	if o == nil {
		return
	}
	o.metrics.Sync(metrics.SyncRun{Started: started, Duration: sum.Duration, Err: err,
		Fetched: sum.Fetched, NewVersions: sum.NewVersions, Unchanged: sum.Unchanged, Revoked: sum.Revoked, Skipped: sum.Skipped})
	r := taxii.SyncRun{Started: started, Duration: sum.Duration, Fetched: sum.Fetched, NewVersions: sum.NewVersions,
		Unchanged: sum.Unchanged, Revoked: sum.Revoked, Skipped: sum.Skipped}
	if err != nil {
		r.Err = err.Error()
	}
	o.runs.add(r)
	o.health.report(err)
}

// modifiedSource reports the newest lastModified of every page the worker
// receives (the metrics' ThreatConnect high-water mark).
type modifiedSource struct {
	tcsync.Source
	seen func(time.Time)
}

func (s modifiedSource) Indicators(ctx context.Context, q tcapi.Query, fn func(page []tcapi.Indicator) error) error {
	return s.Source.Indicators(ctx, q, watchModified(s.seen, fn, func(i *tcapi.Indicator) time.Time { return i.LastModified }))
}

func (s modifiedSource) Groups(ctx context.Context, q tcapi.Query, fn func(page []tcapi.Group) error) error {
	return s.Source.Groups(ctx, q, watchModified(s.seen, fn, func(g *tcapi.Group) time.Time { return g.LastModified }))
}

// watchModified wraps a page callback so that seen gets each page's newest
// lastModified first.
func watchModified[T any](seen func(time.Time), fn func([]T) error, modified func(*T) time.Time) func([]T) error {
	return func(page []T) error {
		var newest time.Time
		for i := range page {
			if m := modified(&page[i]); m.After(newest) {
				newest = m
			}
		}
		seen(newest)
		return fn(page)
	}
}

// readiness is /readyz: no storage fault seen, the database answers, and
// the sync (when there is one) has not failed readyFailureThreshold times
// in a row.
func (o *ops) readiness(store *storage.Store, health func() tcsync.Health) func() error {
	return func() error {
		if err := o.health.err(); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := store.Collections(ctx); err != nil {
			o.health.report(err)
			return fmt.Errorf("database: %w", err)
		}
		if health != nil {
			if h := health(); h.ConsecutiveFailures >= readyFailureThreshold {
				return errors.New("sync: " + h.LastError)
			}
		}
		return nil
	}
}

// settings is the configuration summary of the status page: what an
// operator needs to recognise the setup, every secret only as set or not.
func settings(cfg *config.Config) []taxii.Setting {
	secret := func(s config.Secret) string {
		if s.IsSet() {
			return "set (not shown)"
		}
		return "not set"
	}
	list := func(v []string) string {
		if len(v) == 0 {
			return "(all)"
		}
		return strings.Join(v, ", ")
	}
	tc := cfg.ThreatConnect
	out := []taxii.Setting{
		storageSetting(cfg.Storage),
		{Key: "threatconnect.base_url", Value: orNone(tc.BaseURL)},
		{Key: "threatconnect.access_id", Value: orNone(tc.AccessID)},
		{Key: "threatconnect.secret_key", Value: secret(tc.SecretKey)},
		{Key: "threatconnect.api_token", Value: secret(tc.APIToken)},
		{Key: "sync.interval", Value: cfg.Sync.Interval.String()},
		{Key: "sync.owners", Value: list(cfg.Sync.Owners)},
		{Key: "sync.indicator_types", Value: list(cfg.Sync.IndicatorTypes)},
		{Key: "sync.active_only", Value: fmt.Sprint(cfg.Sync.ActiveOnly)},
		{Key: "stix.tlp_mode", Value: cfg.STIX.TLPMode},
		{Key: "taxii.listen", Value: cfg.TAXII.Listen},
		{Key: "taxii.api_root", Value: "/" + cfg.TAXII.APIRoot + "/"},
		{Key: "taxii.tls", Value: fmt.Sprint(cfg.TAXII.TLSCertFile != "")},
		{Key: "taxii.cursor_secret", Value: secret(cfg.TAXII.CursorSecret)},
		{Key: "taxii.rate_limit", Value: rateString(&cfg.TAXII.RateLimit)},
		{Key: "metrics.listen", Value: orNone(cfg.Metrics.Listen)},
	}
	var principals []string
	for _, u := range cfg.TAXII.Users {
		principals = append(principals, principalSummary("user:"+u.Name, u.Read, u.Write, u.MaxTLP, u.Profile, u.RateLimit, u.Admin))
	}
	for _, k := range cfg.TAXII.APIKeys {
		principals = append(principals, principalSummary("key:"+k.Name, k.Read, k.Write, k.MaxTLP, k.Profile, k.RateLimit, k.Admin))
	}
	sort.Strings(principals)
	for _, p := range principals {
		out = append(out, taxii.Setting{Key: "principal", Value: p})
	}
	return out
}

// storageSetting is the status page's line for the backend, the
// PostgreSQL URL without its password.
func storageSetting(s config.Storage) taxii.Setting {
	if s.Postgres() {
		return taxii.Setting{Key: "storage.postgres_url", Value: s.PostgresDisplay()}
	}
	return taxii.Setting{Key: "storage.path", Value: s.Path}
}

func principalSummary(name string, read, write []string, maxTLP config.TLP, profile string, rl *config.RateLimit, admin bool) string {
	s := fmt.Sprintf("%s — read [%s], write [%s]", name, strings.Join(read, ", "), strings.Join(write, ", "))
	if maxTLP.Level != 0 {
		s += ", max TLP " + maxTLP.String()
	}
	if profile != "" {
		s += ", profile " + profile
	}
	if rl != nil {
		s += ", rate " + rateString(rl)
	}
	if admin {
		s += ", admin"
	}
	return s
}

func rateString(r *config.RateLimit) string {
	if r == nil || r.RequestsPerSecond <= 0 {
		return "no limit"
	}
	return fmt.Sprintf("%g/s, burst %d", r.RequestsPerSecond, r.Burst)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// rateLimit converts a configured limit.
func rateLimit(r *config.RateLimit) *taxii.RateLimit {
	if r == nil {
		return nil
	}
	return &taxii.RateLimit{RequestsPerSecond: r.RequestsPerSecond, Burst: r.Burst}
}
