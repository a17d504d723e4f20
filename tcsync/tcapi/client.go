package tcapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"

	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Options configures a Client. BaseURL and one credential (AccessID with
// SecretKey, or APIToken) are required; everything else has a default.
type Options struct {
	// BaseURL is the API root including "/api", e.g. https://app.threatconnect.com/api.
	BaseURL string
	// AccessID and SecretKey select HMAC authentication (threatconnect-v3.md §2.1).
	// They win over APIToken when both are set.
	AccessID  string
	SecretKey string
	// APIToken selects "TC-Token" authentication (§2.3).
	APIToken string
	// Timeout bounds one HTTP exchange including reading the body. Default 60s.
	Timeout time.Duration
	// RequestsPerSecond limits the request rate; 0 or less means unlimited.
	RequestsPerSecond float64
	// MaxRetries is how many times a failed request is repeated (timeouts,
	// resets, truncated bodies, 429, 5xx). 0 means no retry; negative means the default 5.
	MaxRetries int
	// Proxy is an http(s) proxy URL. Empty means the environment's proxy settings.
	Proxy string
	// InsecureSkipVerify disables TLS certificate verification.
	InsecureSkipVerify bool
	// HTTPClient replaces the client built from Timeout, Proxy and InsecureSkipVerify (tests).
	HTTPClient *http.Client
	// Now is the clock used for the HMAC Timestamp. Default time.Now.
	Now func() time.Time
	// Log receives one Warn line per retried request. Default slog.Default().
	Log *slog.Logger
	// RetryBaseDelay is the first backoff delay, doubled on every retry with
	// jitter, up to RetryMaxDelay. Defaults 500ms and 30s.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured. Default 5m.
	MaxRetryAfter time.Duration
	// MaxResponseBytes bounds one response body. Default 512 MiB.
	MaxResponseBytes int64
	// Observe, when set, is called after every HTTP exchange (retries
	// included) with the status code (0 when no response arrived), the
	// transport error if any, and the time taken: the hook for metrics.
	Observe func(status int, err error, d time.Duration)
}

// Client is a read-only ThreatConnect API v3 client. It is safe for
// concurrent use.
type Client struct {
	base       *url.URL // scheme, host and path prefix (ending in /api)
	accessID   string
	secretKey  string
	token      string
	http       *http.Client
	limiter    *rate.Limiter
	maxRetries int
	now        func() time.Time
	log        *slog.Logger
	baseDelay  time.Duration
	maxDelay   time.Duration
	maxRA      time.Duration
	maxBody    int64
	observe    func(status int, err error, d time.Duration)
}

// New builds a Client from opts, checking the base URL and credentials.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("new threatconnect client: base url is empty")
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("new threatconnect client: parse base url: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("new threatconnect client: base url %q must be absolute http(s)", opts.BaseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("new threatconnect client: base url %q must not have a query or fragment", opts.BaseURL)
	}
	hmacSet := opts.AccessID != "" || opts.SecretKey != ""
	if hmacSet && (opts.AccessID == "" || opts.SecretKey == "") {
		return nil, errors.New("new threatconnect client: access id and secret key must be set together")
	}
	if !hmacSet && opts.APIToken == "" {
		return nil, errors.New("new threatconnect client: no credentials: set access id and secret key, or an api token")
	}
	c := &Client{
		base:       base,
		accessID:   opts.AccessID,
		secretKey:  opts.SecretKey,
		token:      opts.APIToken,
		http:       opts.HTTPClient,
		maxRetries: opts.MaxRetries,
		now:        opts.Now,
		log:        opts.Log,
		baseDelay:  opts.RetryBaseDelay,
		maxDelay:   opts.RetryMaxDelay,
		maxRA:      opts.MaxRetryAfter,
		maxBody:    opts.MaxResponseBytes,
		observe:    opts.Observe,
	}
	if hmacSet {
		c.token = ""
	}
	if c.maxRetries < 0 {
		c.maxRetries = 5
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.baseDelay <= 0 {
		c.baseDelay = 500 * time.Millisecond
	}
	if c.maxDelay <= 0 {
		c.maxDelay = 30 * time.Second
	}
	if c.maxRA <= 0 {
		c.maxRA = 5 * time.Minute
	}
	if c.maxBody <= 0 {
		c.maxBody = 512 << 20
	}
	if opts.RequestsPerSecond > 0 {
		burst := int(opts.RequestsPerSecond)
		if burst < 1 {
			burst = 1
		}
		c.limiter = rate.NewLimiter(rate.Limit(opts.RequestsPerSecond), burst)
	} else {
		c.limiter = rate.NewLimiter(rate.Inf, 1)
	}
	if c.http == nil {
		hc, err := buildHTTPClient(opts)
		if err != nil {
			return nil, err
		}
		c.http = hc
	}
	return c, nil
}

func buildHTTPClient(opts Options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.Proxy != "" {
		p, err := url.Parse(opts.Proxy)
		if err != nil || p.Host == "" {
			return nil, fmt.Errorf("new threatconnect client: proxy %q is not a url", opts.Proxy)
		}
		tr.Proxy = http.ProxyURL(p)
	}
	if opts.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator's explicit choice (config threatconnect.insecure_skip_verify)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// Sign returns the base64 HMAC-SHA256 of "<pathQuery>:<method>:<timestamp>"
// keyed with secret, the ThreatConnect request signature of
// threatconnect-v3.md §2.1. pathQuery must be the request target exactly as
// sent: escaped path from the root (including /api) and the raw query.
func Sign(secret, pathQuery, method, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(pathQuery + ":" + method + ":" + timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// endpoint returns the absolute URL of an API path such as "/v3/indicators"
// on the configured base, with q encoded by url.Values.Encode.
func (c *Client) endpoint(path string, q url.Values) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return &u
}

// rebase returns the next link's escaped path and raw query on the configured
// scheme and host (threatconnect-v3.md §2.1: never string-replace the base,
// always issue the link's path against the configured host). The link's path
// and query bytes are kept exactly, so the signature covers what the server sent.
func (c *Client) rebase(link string) (*url.URL, error) {
	n, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("parse next link: %w", err)
	}
	if n.Path == "" {
		return nil, fmt.Errorf("next link %q has no path", link)
	}
	u := *c.base
	u.Path, u.RawPath, u.RawQuery = n.Path, n.RawPath, n.RawQuery
	return &u, nil
}

// authorize sets the auth headers for u, signing its request target exactly
// as net/http will send it (URL.RequestURI).
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "TC-Token "+c.token)
		return
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Timestamp", ts)
	req.Header.Set("Authorization", "TC "+c.accessID+":"+Sign(c.secretKey, req.URL.RequestURI(), req.Method, ts))
}

// envelope is the v3 response envelope (threatconnect-v3.md §5.1).
type envelope[T any] struct {
	Next    string `json:"next"`
	Prev    string `json:"prev"`
	Count   *int   `json:"count"`
	Status  string `json:"status"`
	Message string `json:"message"`
	ErrCode string `json:"errCode"`
	Data    T      `json:"data"`
}

// get fetches u and decodes its envelope, retrying transient failures.
// Nothing is returned unless a complete, valid response was read, so a
// truncated page is never handed over.
func get[T any](ctx context.Context, c *Client, u *url.URL) (*envelope[T], error) {
	var env *envelope[T]
	_, err := c.fetch(ctx, u, func(body []byte) error {
		e := new(envelope[T])
		if err := Unmarshal(body, e); err != nil {
			return err
		}
		env = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	if env.Status != "Success" {
		return nil, &APIError{Method: http.MethodGet, Path: u.Path, StatusCode: http.StatusOK,
			Status: env.Status, ErrCode: env.ErrCode, Message: env.Message}
	}
	return env, nil
}

// fetch GETs u, retrying transient failures, and returns the body of a
// complete 2xx response that check accepted. check runs on every received
// body: an error from it means a corrupted or truncated transfer and is
// retried like a reset connection.
func (c *Client) fetch(ctx context.Context, u *url.URL, check func(body []byte) error) ([]byte, error) {
	var lastErr error
	retried401 := false
	for attempt := 0; ; attempt++ {
		body, retryAfter, err := c.fetchOnce(ctx, u, check)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("threatconnect GET %s: %w", u.Path, ctx.Err())
		}
		lastErr = err
		var apiErr *APIError
		isAPI := errors.As(err, &apiErr)
		switch {
		case isAPI && apiErr.StatusCode == http.StatusUnauthorized && c.token == "" && !retried401:
			// One retry with a fresh Timestamp (threatconnect-v3.md §2.1, tcex).
			retried401 = true
			attempt--
			continue
		case isAPI && !apiErr.Retryable():
			return nil, err
		}
		if p, ok := err.(permanentError); ok {
			return nil, p.err
		}
		if attempt >= c.maxRetries {
			if c.maxRetries == 0 {
				return nil, lastErr
			}
			return nil, fmt.Errorf("threatconnect GET %s: giving up after %d attempts: %w", u.Path, attempt+1, lastErr)
		}
		wait := c.backoff(attempt, retryAfter)
		c.log.WarnContext(ctx, "threatconnect request failed, retrying",
			"path", u.Path, "attempt", attempt+1, "wait", wait, "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("threatconnect GET %s: %w (last error: %w)", u.Path, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

// backoff is base·2^attempt with ±25 % jitter, capped, and never shorter
// than the server's Retry-After (itself capped at MaxRetryAfter).
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := c.baseDelay
	for range attempt {
		d *= 2
		if d >= c.maxDelay {
			d = c.maxDelay
			break
		}
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
	if retryAfter > c.maxRA {
		retryAfter = c.maxRA
	}
	return max(d, retryAfter)
}

func (c *Client) fetchOnce(ctx context.Context, u *url.URL, check func([]byte) error) ([]byte, time.Duration, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, 0, fmt.Errorf("threatconnect GET %s: rate limit: %w", u.Path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("threatconnect GET %s: build request: %w", u.Path, err)
	}
	// Send exactly the URL we sign.
	req.URL = u
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	began := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if c.observe != nil {
			c.observe(0, err, time.Since(began))
		}
		return nil, 0, fmt.Errorf("threatconnect GET %s: %w", u.Path, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp, c.maxBody)
	if c.observe != nil {
		c.observe(resp.StatusCode, err, time.Since(began))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("threatconnect GET %s: read body (status %d): %w", u.Path, resp.StatusCode, err)
	}
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, retryAfter, newAPIError(resp, u.Path, body, retryAfter)
	}
	if err := check(body); err != nil {
		err = fmt.Errorf("threatconnect GET %s: decode response (%d bytes): %w", u.Path, len(body), err)
		// A 2xx whose body is not a complete JSON document is a truncated
		// or corrupted transfer: transient. Well-formed JSON that does not
		// fit the types (a bad timestamp, a string id) will not improve.
		var syntax *json.SyntaxError
		if !errors.As(err, &syntax) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, permanentError{err}
		}
		return nil, retryAfter, err
	}
	return body, 0, nil
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func readBody(resp *http.Response, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("response body larger than %d bytes", limit)
	}
	if resp.ContentLength > 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("body has %d of %d bytes: %w", n, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return buf.Bytes(), nil
}

func newAPIError(resp *http.Response, path string, body []byte, retryAfter time.Duration) *APIError {
	e := &APIError{Method: http.MethodGet, Path: path, StatusCode: resp.StatusCode, RetryAfter: retryAfter}
	var env envelope[json.RawMessage]
	if json.Unmarshal(body, &env) == nil && (env.Message != "" || env.Status != "") {
		e.Status, e.ErrCode, e.Message = env.Status, env.ErrCode, env.Message
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	e.Message = msg
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
