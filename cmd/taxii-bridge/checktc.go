package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
		if !visible[want] {
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
	if len(failed) > 0 {
		return fmt.Errorf("threatconnect: %s", strings.Join(failed, ", "))
	}
	return nil
}
