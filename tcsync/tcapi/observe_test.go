package tcapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Options.Observe sees every exchange, retried ones included, with its
// status; metrics build on it without tcapi importing them. The retry
// backoff runs on synctest's fake clock.
func TestObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n++
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: r,
				Body: io.NopCloser(strings.NewReader(`{"status":"Success","data":[{"id":1,"name":"Acme","type":"Organization"}]}`))}
			switch n {
			case 1:
				resp.StatusCode, resp.Body = http.StatusTooManyRequests, io.NopCloser(strings.NewReader(""))
				resp.Header.Set("Retry-After", "2")
			case 2:
				resp.StatusCode, resp.Body = http.StatusBadGateway, io.NopCloser(strings.NewReader(""))
			}
			return resp, nil
		})
		var got []int
		c, err := New(Options{BaseURL: "https://tc.example/api", APIToken: "t", MaxRetries: 3, HTTPClient: &http.Client{Transport: rt},
			Observe: func(status int, err error, d time.Duration) { got = append(got, status) }})
		if err != nil {
			t.Fatal(err)
		}
		owners, err := c.Owners(t.Context())
		if err != nil || len(owners) != 1 {
			t.Fatalf("Owners = %v, %v", owners, err)
		}
		if len(got) != 3 || got[0] != 429 || got[1] != 502 || got[2] != 200 {
			t.Errorf("observed statuses %v, want [429 502 200]", got)
		}
	})
}
