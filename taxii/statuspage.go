package taxii

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// adminStatusPath is the operator's status page: server-rendered HTML for
// principals with admin: true (issue 11). It is outside the API root, so no
// TAXII client stumbles on it.
const adminStatusPath = "/admin/status"

// StatusSource supplies what the status page shows beyond the store.
type StatusSource struct {
	// SyncRuns returns the most recent sync runs, newest first; nil when
	// this process does not sync.
	SyncRuns func() []SyncRun
	// Settings summarises the configuration, secrets already redacted.
	Settings []Setting
	// Version is the build's version line.
	Version string
}

// SyncRun is one finished sync run as the status page shows it.
type SyncRun struct {
	Started                                  time.Time
	Duration                                 time.Duration
	Err                                      string
	Fetched, NewVersions, Unchanged, Revoked int
	Skipped                                  map[string]int
}

// Setting is one line of the configuration summary.
type Setting struct{ Key, Value string }

// statsStore is the optional store method the status page counts with.
type statsStore interface {
	Stats(ctx context.Context) (storage.Stats, error)
}

//go:embed statuspage.html
var statusFS embed.FS

var statusTemplate = template.Must(template.New("statuspage.html").Funcs(template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"us":    func(us int64) string { return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05Z") },
	"dur":   humanDuration,
	"bytes": humanBytes,
	"skips": func(m map[string]int) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		return strings.Join(parts, ", ")
	},
}).ParseFS(statusFS, "statuspage.html"))

type statusCollection struct {
	storage.CollectionStats
	Counted bool
}

type statusClient struct {
	Delivery
	Title   string
	Never   bool
	Behind  string // "" when up to date
	Ago     string
	Lagging bool
}

type statusPage struct {
	Title, Version, Generated string
	Path                      string
	DatabaseBytes             int64
	StatsError                string
	Collections               []statusCollection
	Syncs                     bool
	Runs                      []SyncRun
	Clients                   []statusClient
	Settings                  []Setting
}

// statusPage serves GET /admin/status.
func (s *Server) statusPage(c echo.Context) error {
	p := principalOf(c)
	if !p.admin {
		return fail(http.StatusForbidden, "the status page needs a principal with admin: true")
	}
	ctx := c.Request().Context()
	now := s.now()
	pg := statusPage{Title: s.cfg.Title, Version: s.cfg.Status.Version, Generated: now.UTC().Format("2006-01-02 15:04:05Z"), Settings: s.cfg.Status.Settings}
	newest := map[string]int64{} // by alias
	titles := map[string]string{}
	if ss, ok := s.store.(statsStore); ok {
		st, err := ss.Stats(ctx)
		if err != nil {
			pg.StatsError = err.Error()
		} else {
			pg.Path, pg.DatabaseBytes = st.Path, st.DatabaseBytes
			for _, cs := range st.Collections {
				pg.Collections = append(pg.Collections, statusCollection{CollectionStats: cs, Counted: true})
				newest[cs.Alias], titles[cs.Alias] = cs.NewestDateAdded, cs.Title
			}
		}
	}
	if pg.Collections == nil && pg.StatsError == "" {
		cols, err := s.store.Collections(ctx)
		if err != nil {
			return fmt.Errorf("list collections: %w", err)
		}
		for _, col := range cols {
			pg.Collections = append(pg.Collections, statusCollection{CollectionStats: storage.CollectionStats{Collection: col}})
			titles[col.Alias] = col.Title
		}
	}
	if s.cfg.Status.SyncRuns != nil {
		pg.Syncs = true
		pg.Runs = s.cfg.Status.SyncRuns()
	}
	seen := map[string]bool{}
	for _, d := range s.Deliveries() {
		seen[d.Principal] = true
		cl := statusClient{Delivery: d, Title: titles[d.Collection], Ago: humanDuration(now.Sub(d.LastPoll)) + " ago"}
		if n := newest[d.Collection]; n > d.NewestDateAdded {
			cl.Lagging = true
			if d.NewestDateAdded == 0 {
				cl.Behind = "has received nothing yet"
			} else {
				cl.Behind = "newer objects up to " + time.UnixMicro(n).UTC().Format("2006-01-02 15:04:05Z") +
					" (" + humanDuration(time.Duration(n-d.NewestDateAdded)*time.Microsecond) + " of additions)"
			}
		}
		pg.Clients = append(pg.Clients, cl)
	}
	for _, name := range s.auth.principalNames() {
		if !seen[name] {
			pg.Clients = append(pg.Clients, statusClient{Delivery: Delivery{Principal: name}, Never: true})
		}
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, pg); err != nil {
		return fmt.Errorf("render status page: %w", err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

// principalNames lists every configured principal, sorted.
func (a *authenticator) principalNames() []string {
	var out []string
	for _, u := range a.users {
		out = append(out, u.p.name)
	}
	for _, k := range a.keys {
		out = append(out, k.p.name)
	}
	sort.Strings(out)
	return out
}

// humanDuration rounds d for people: 42s, 7m12s, 3h05m, 2d4h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
