package main

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

func init() {
	extraChecks = append(extraChecks, checkThreatConnect)
}

// maxSkew is the HMAC Timestamp window (threatconnect-v3.md §2.1).
const maxSkew = 5 * time.Minute

// checkThreatConnect is check's ThreatConnect part, the seed feed's "Test"
// button: one line each for reachable, authenticated, owners visible and
// clock skew. It returns an error naming what failed.
func checkThreatConnect(ctx context.Context, e *env, cfg *config.Config) error {
	if !cfg.ThreatConnect.Enabled() {
		checkLine(e, true, "threatconnect", "not configured (threatconnect.base_url is empty); TAXII-only mode")
		return nil
	}
	client, err := newTCClient(cfg, e.Log)
	if err != nil {
		checkLine(e, false, "tc reachable", err.Error())
		return fmt.Errorf("threatconnect: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, max(cfg.ThreatConnect.Timeout.D(), 5*time.Second)+5*time.Second)
	defer cancel()
	host := cfg.ThreatConnect.BaseURL

	probe, err := client.Probe(ctx)
	if err != nil {
		checkLine(e, false, "tc reachable", err.Error())
		return fmt.Errorf("threatconnect: not reachable at %s", host)
	}
	if probe.StatusCode == http.StatusNotFound {
		checkLine(e, false, "tc reachable", fmt.Sprintf("%s answered HTTP 404 for /v3/security/owners; threatconnect.base_url must end in /api (https://app.threatconnect.com/api)", host))
		return fmt.Errorf("threatconnect: no API at %s", host)
	}
	checkLine(e, true, "tc reachable", fmt.Sprintf("%s answered HTTP %d", host, probe.StatusCode))

	hmac := cfg.ThreatConnect.AccessID != ""
	var failed []string
	skew := probe.Skew()
	switch {
	case probe.ServerTime.IsZero():
		checkLine(e, true, "tc clock skew", "unknown (no Date header)")
	case hmac && (skew > maxSkew || skew < -maxSkew):
		checkLine(e, false, "tc clock skew", fmt.Sprintf("server clock differs by %s; HMAC requests need ±5m — fix this machine's clock (NTP)", skew.Round(time.Second)))
		failed = append(failed, "clock skew beyond ±5m")
	default:
		checkLine(e, true, "tc clock skew", fmt.Sprintf("%s", skew.Round(time.Second)))
	}

	owners, err := client.Owners(ctx)
	var apiErr *tcapi.APIError
	switch {
	case errors.Is(err, tcapi.ErrUnauthorized) || errors.Is(err, tcapi.ErrForbidden):
		errors.As(err, &apiErr)
		method := "HMAC access_id/secret_key"
		if !hmac {
			method = "api_token"
		}
		checkLine(e, false, "tc auth", fmt.Sprintf("%s rejected: %s", method, apiErr.Message))
		return fmt.Errorf("threatconnect: %s", strings.Join(append(failed, "credentials rejected"), ", "))
	case err != nil:
		checkLine(e, false, "tc auth", err.Error())
		return fmt.Errorf("threatconnect: %w", err)
	}
	checkLine(e, true, "tc auth", map[bool]string{true: "HMAC", false: "API token"}[hmac])

	visible := map[string]bool{}
	var names []string
	for _, o := range owners {
		visible[o.Name] = true
		names = append(names, cell(o.Name, 40))
	}
	var missing []string
	for _, want := range cfg.Sync.Owners {
		if !visible[want] && want != tcapi.AllOwners {
			missing = append(missing, fmt.Sprintf("%q", want))
		}
	}
	switch {
	case len(owners) == 0:
		checkLine(e, false, "tc owners", "the credentials can read no owner")
		failed = append(failed, "no owner visible")
	case len(missing) > 0:
		checkLine(e, false, "tc owners", fmt.Sprintf("sync.owners not visible: %s (visible: %s)", strings.Join(missing, ", "), strings.Join(names, ", ")))
		failed = append(failed, "configured owners not visible")
	default:
		checkLine(e, true, "tc owners", fmt.Sprintf("%d visible: %s", len(owners), strings.Join(names, ", ")))
	}
	// Which owners the sync reads: the seed's default is the account's own
	// organization; ["*"] is every readable owner.
	scope, err := tcapi.OwnerScope(cfg.Sync.Owners, owners)
	if err != nil {
		checkLine(e, false, "sync owners", err.Error())
		failed = append(failed, "no owner to sync")
	} else {
		checkLine(e, true, "sync owners", cell(describeOwnerScope(cfg.Sync.Owners, scope, len(owners)), 200))
	}
	if len(failed) > 0 {
		return fmt.Errorf("threatconnect: %s", strings.Join(failed, ", "))
	}
	if err := checkTQL(ctx, e, client, cfg, scope); err != nil {
		return err
	}
	return nil
}

// rejection returns ThreatConnect's message when err says it rejected a
// query (a TQL parse error or another 400), and false for every other error.
func rejection(err error) (string, bool) {
	var apiErr *tcapi.APIError
	if (errors.Is(err, tcapi.ErrTQLParse) || errors.Is(err, tcapi.ErrBadRequest)) && errors.As(err, &apiErr) {
		return apiErr.Message, true
	}
	return "", false
}

// checkTQL sends the first window's indicator and group queries the sync
// would send (one item each), so a TQL that ThreatConnect rejects — a group
// keyword in sync.tql, an indicator keyword in sync.group_tql, a typo — is
// reported with ThreatConnect's own message before any sync. A rejection is
// a configuration error (exit 2).
func checkTQL(ctx context.Context, e *env, client *tcapi.Client, cfg *config.Config, owners []string) error {
	var bad []string
	for q, v := range probeQueries(ctx, client, syncQueries(cfg, owners)) {
		switch {
		case v.err == nil:
			checkLine(e, true, q.name, "accepted by ThreatConnect"+q.note)
		case v.rejected != "":
			checkLine(e, false, q.name, v.rejected)
			bad = append(bad, v.rejected)
		default:
			checkLine(e, false, q.name, v.err.Error())
			return fmt.Errorf("threatconnect: %w", v.err)
		}
	}
	if len(bad) > 0 {
		return usageErrorf("threatconnect: %s", strings.Join(bad, "; "))
	}
	return nil
}

// verdict is ThreatConnect's answer to one probed query: err nil when it
// was accepted; rejected, when ThreatConnect refused the TQL itself, says
// which setting and why; any other err is a failure to ask.
type verdict struct {
	err      error
	rejected string
}

// probeQueries sends each query of qs the sync would send (one item each)
// and yields it with ThreatConnect's verdict, for check and for serve's
// start.
func probeQueries(ctx context.Context, client *tcapi.Client, qs []syncQuery) iter.Seq2[syncQuery, verdict] {
	return func(yield func(syncQuery, verdict) bool) {
		for _, q := range qs {
			if q.skip {
				continue
			}
			v := verdict{err: q.check(ctx, client, q.tql)}
			if msg, rejected := rejection(v.err); rejected {
				v.rejected = fmt.Sprintf("%s rejected by ThreatConnect: %s", q.key, msg)
			}
			if !yield(q, v) {
				return
			}
		}
	}
}

// syncQuery is one TQL the sync sends, with the key that decides it.
type syncQuery struct {
	name, key, tql, note string
	skip                 bool
	check                func(ctx context.Context, c *tcapi.Client, tql string) error
}

// syncQueries are the first-window queries of the sync: indicators with
// sync.tql (or the generated filters), groups with sync.group_tql.
func syncQueries(cfg *config.Config, owners []string) []syncQuery {
	s := cfg.Sync
	f := tcapi.Filter{Owners: owners, Tags: s.Tags, IndicatorTypes: typesOrNil(s.IndicatorTypes), GroupTypes: typesOrNil(s.GroupTypes),
		ActiveOnly: s.ActiveOnly, MinConfidence: s.ConfidenceThreshold, MinThreatAssessScore: s.ThreatAssessScoreThreshold,
		UserTQL: s.TQL, GroupUserTQL: s.GroupTQL}
	ind := syncQuery{name: "tql indicators", key: "sync.indicator_types and filters", tql: f.IndicatorTQL(), skip: len(s.IndicatorTypes) == 0,
		check: func(ctx context.Context, c *tcapi.Client, tql string) error { return c.CheckIndicatorTQL(ctx, tql) }}
	if s.TQL != "" {
		ind.key, ind.note = "sync.tql", " (sync.tql)"
	}
	grp := syncQuery{name: "tql groups", key: "sync.group_types and filters", tql: f.GroupTQL(), skip: len(s.GroupTypes) == 0,
		check: func(ctx context.Context, c *tcapi.Client, tql string) error { return c.CheckGroupTQL(ctx, tql) }}
	if s.GroupTQL != "" {
		grp.key, grp.note = "sync.group_tql", " (sync.group_tql)"
	}
	return []syncQuery{ind, grp}
}

// typesOrNil is the type list as the sync sends it: [All] means no filter.
func typesOrNil(t []string) []string {
	if len(t) == 1 && strings.EqualFold(t[0], "All") {
		return nil
	}
	return t
}

// describeOwnerScope is a one-line account of what OwnerScope selected, for
// check output and logs.
func describeOwnerScope(configured []string, resolved []string, visible int) string {
	switch {
	case slices.Contains(configured, tcapi.AllOwners):
		return fmt.Sprintf("every readable owner (%d; sync.owners: [\"*\"])", visible)
	case len(configured) == 0:
		return fmt.Sprintf("own organization only: %s (sync.owners empty; [\"*\"] selects all %d readable owners)", quoteAll(resolved), visible)
	}
	return quoteAll(resolved)
}

func quoteAll(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
