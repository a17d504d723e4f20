package tcsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error messages of the real API (threatconnect-v3.md §14.2).
const (
	msgSignature   = "Signature data did not match expected result"
	msgTimestamp   = "Timestamp out of acceptable time range"
	msgInvalidTS   = "Invalid timestamp"
	msgAccessDenid = "Access Denied"
	msgTokenBad    = "Unauthorized"
	msgNotFound    = "The requested resource was not found"
	msgNoOwner     = "The requested owner was not found"
)

// ServeHTTP serves the API under /api (threatconnect-v3.md §3, §17).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat)) // the simulator's clock, for skew checks
	f, faulty := s.nextFault()
	if faulty {
		switch f.Kind {
		case FaultStatus:
			code := f.Status
			if code == 0 {
				code = http.StatusServiceUnavailable
			}
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			}
			writeError(w, code, fmt.Sprintf("Simulated failure (%d)", code))
			return
		case FaultRateLimit:
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "Too many requests")
			return
		case FaultReset:
			resetConnection(w)
			return
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	if code, msg := s.authenticate(r); code != 0 {
		writeError(w, code, msg)
		return
	}
	var status int
	var body []byte
	switch r.Method {
	case http.MethodGet:
		status, body = s.route(r)
	case http.MethodOptions:
		status, body = s.options(r)
	default:
		writeError(w, http.StatusMethodNotAllowed, "The simulator is read-only")
		return
	}
	s.log.Debug("tcsim request", "path", r.URL.Path, "status", status, "bytes", len(body))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if faulty && f.Kind == FaultTruncate {
		w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(body)
}

// authenticate verifies auth exactly as threatconnect-v3.md §2.4 describes,
// returning a status and message on failure.
func (s *Simulator) authenticate(r *http.Request) (int, string) {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "TC-Token "):
		tok := strings.TrimPrefix(h, "TC-Token ")
		if s.token == "" || !hmac.Equal([]byte(tok), []byte(s.token)) {
			return http.StatusUnauthorized, msgTokenBad
		}
		return 0, ""
	case strings.HasPrefix(h, "TC "):
		id, sig, ok := strings.Cut(strings.TrimPrefix(h, "TC "), ":")
		if !ok || s.accessID == "" || !hmac.Equal([]byte(id), []byte(s.accessID)) {
			return http.StatusUnauthorized, msgAccessDenid
		}
		ts := r.Header.Get("Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return http.StatusUnauthorized, msgInvalidTS
		}
		if d := s.now().Unix() - sec; d > 300 || d < -300 {
			return http.StatusUnauthorized, msgTimestamp
		}
		// r.RequestURI is the raw request target as received (§2.4).
		m := hmac.New(sha256.New, []byte(s.secretKey))
		m.Write([]byte(r.RequestURI + ":" + r.Method + ":" + ts))
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(sig), []byte(want)) {
			return http.StatusUnauthorized, msgSignature
		}
		return 0, ""
	}
	return http.StatusUnauthorized, msgAccessDenid
}

func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0) // close with RST
	}
	conn.Close()
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var b []byte
	b = append(b, `{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"status":"Error"}`...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func errorBody(msg string) []byte {
	b := append([]byte(`{"message":`), appendString(nil, msg)...)
	return append(b, `,"status":"Error"}`...)
}

// apiError is a failure to answer with the error envelope.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Simulator) route(r *http.Request) (int, []byte) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	var body []byte
	var err *apiError
	switch {
	case p == "/api/v3/indicators":
		body, err = s.listIndicators(r)
	case p == "/api/v3/indicators/deleted":
		body, err = s.listDeleted(r)
	case strings.HasPrefix(p, "/api/v3/indicators/"):
		body, err = s.oneIndicator(r, strings.TrimPrefix(p, "/api/v3/indicators/"))
	case p == "/api/v3/groups":
		body, err = s.listGroups(r)
	case strings.HasPrefix(p, "/api/v3/groups/"):
		body, err = s.oneGroup(r, strings.TrimPrefix(p, "/api/v3/groups/"))
	case p == "/api/v3/security/owners":
		body, err = s.listOwners(r)
	case strings.HasPrefix(p, "/api/v3/security/owners/"):
		body, err = s.oneOwner(strings.TrimPrefix(p, "/api/v3/security/owners/"))
	case p == "/api/v3/tags":
		body, err = s.listTags(r)
	case p == "/api/v3/securityLabels":
		body, err = s.listLabels(r)
	case p == "/api/v3/indicatorAttributes":
		body, err = s.listAttributes(r, false)
	case p == "/api/v3/groupAttributes":
		body, err = s.listAttributes(r, true)
	case p == "/api/v2/owners" || p == "/api/v2/owners/mine":
		body = s.v2Owners()
	default:
		err = &apiError{http.StatusNotFound, msgNotFound}
	}
	if err != nil {
		return err.code, errorBody(err.msg)
	}
	return http.StatusOK, body
}
