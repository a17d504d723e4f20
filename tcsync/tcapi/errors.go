package tcapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors an *APIError unwraps to, so callers can use errors.Is
// without looking at status codes (threatconnect-v3.md §14.1).
var (
	// ErrBadRequest is a 400 other than a TQL parse error.
	ErrBadRequest = errors.New("bad request")
	// ErrTQLParse is a 400 whose message starts "TQL Parse Error".
	ErrTQLParse = errors.New("tql parse error")
	// ErrUnauthorized is a 401: bad signature, stale timestamp, unknown access id or expired token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is a 403: owner not accessible, no API licence for the user, or no auth method.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound is a 404.
	ErrNotFound = errors.New("not found")
	// ErrRateLimited is a 429.
	ErrRateLimited = errors.New("rate limited")
	// ErrServer is any 5xx.
	ErrServer = errors.New("server error")
	// ErrUnsuccessful is a 2xx response whose envelope status is not "Success".
	ErrUnsuccessful = errors.New("unsuccessful response")
)

// APIError is an error answer from ThreatConnect: a non-2xx status, or a 2xx
// whose envelope status is not "Success" (threatconnect-v3.md §14.2).
type APIError struct {
	Method     string
	Path       string // request path without the query
	StatusCode int
	// Status is the envelope's status ("Error"; older APIs said "Failure").
	Status  string
	ErrCode string // hex code such as "0x1001" when the server sent one
	// Message is the envelope's message, or the start of the raw body when it was not JSON.
	Message string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

// Error formats the error without the query string, which may be long.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("threatconnect %s %s: status %d: %s", e.Method, e.Path, e.StatusCode, msg)
	if e.ErrCode != "" {
		s += " (errCode " + e.ErrCode + ")"
	}
	return s
}

// Unwrap returns the sentinel matching the status code.
func (e *APIError) Unwrap() error {
	switch {
	case e.StatusCode >= 200 && e.StatusCode < 300:
		return ErrUnsuccessful
	case e.StatusCode == http.StatusBadRequest:
		if strings.HasPrefix(strings.TrimSpace(e.Message), "TQL Parse Error") {
			return ErrTQLParse
		}
		return ErrBadRequest
	case e.StatusCode == http.StatusUnauthorized:
		return ErrUnauthorized
	case e.StatusCode == http.StatusForbidden:
		return ErrForbidden
	case e.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case e.StatusCode == http.StatusTooManyRequests:
		return ErrRateLimited
	case e.StatusCode >= 500:
		return ErrServer
	}
	return nil
}

// Retryable reports whether repeating the request may succeed: 429, 500,
// 502, 503 and 504 (threatconnect-v3.md §14.1 recommendation). 400, 401, 403
// and 404 are final; the client's single 401 retry with a fresh timestamp is
// handled separately.
func (e *APIError) Retryable() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
