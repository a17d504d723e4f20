package tcapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Probe is what one signed request to GET /v3/security/owners?resultLimit=1
// tells about the connection, for `taxii-bridge check` (the seed's "Test"
// button): whether any HTTP answer came back, its status, and the server's
// clock from the Date header.
type Probe struct {
	// StatusCode is the HTTP status; 0 when no answer came back.
	StatusCode int
	// ServerTime is the Date header, zero when absent.
	ServerTime time.Time
	// LocalTime is the client's clock when the answer arrived.
	LocalTime time.Time
}

// Skew is ServerTime − LocalTime, or 0 when the server sent no Date. HMAC
// requests fail when it exceeds ±5 minutes (threatconnect-v3.md §2.1).
func (p Probe) Skew() time.Duration {
	if p.ServerTime.IsZero() {
		return 0
	}
	return p.ServerTime.Sub(p.LocalTime.Truncate(time.Second))
}

// Probe sends one authenticated request without retries. A transport error
// (unreachable, TLS, timeout) is returned as an error; any HTTP answer,
// including 401, is a Probe.
func (c *Client) Probe(ctx context.Context) (Probe, error) {
	u := c.endpoint("/v3/security/owners", map[string][]string{"resultLimit": {"1"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Probe{}, fmt.Errorf("probe %s: %w", u.Host, err)
	}
	req.URL = u
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return Probe{}, fmt.Errorf("probe %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	p := Probe{StatusCode: resp.StatusCode, LocalTime: c.now()}
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		p.ServerTime = t
	}
	return p, nil
}
