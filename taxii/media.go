package taxii

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// MediaType is the one Content-Type of every TAXII response (taxii21.md S-3.2, C-3).
const MediaType = "application/taxii+json;version=2.1"

// stixMediaType describes the objects collections hold (D-19).
const stixMediaType = "application/stix+json;version=2.1"

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ, sub string
	version  string // the version parameter, unquoted; "" when absent
	q        float64
}

// parseAccept splits an Accept header per RFC 9110 §12.5.1: comma-separated
// ranges, case-insensitive names, optional whitespace, quoted values and
// q-values. Ranges it cannot parse are skipped.
func parseAccept(h string) []mediaRange {
	var out []mediaRange
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			// mime rejects some legal-looking inputs such as "*/*;q=0.8 "; retry on the bare type.
			semi := strings.IndexByte(part, ';')
			if semi < 0 {
				continue
			}
			mt, params, err = mime.ParseMediaType(strings.TrimSpace(part[:semi]))
			if err != nil {
				continue
			}
		}
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		r := mediaRange{typ: typ, sub: sub, version: strings.TrimSpace(params["version"]), q: 1}
		if qs, ok := params["q"]; ok {
			q, err := strconv.ParseFloat(qs, 64)
			if err == nil && q >= 0 && q <= 1 {
				r.q = q
			}
		}
		out = append(out, r)
	}
	return out
}

// acceptable reports whether a TAXII 2.1 response satisfies the Accept header
// h, leniently (taxii21.md C-1, D-13): a missing header, */*, application/*,
// application/json, and taxii+json or stix+json without a version or with
// version 2.1 all accept it. Only a header naming nothing but other versions
// (e.g. TAXII 2.0) or unrelated types does not (C-19: never 406 a request
// that lists a 2.1-compatible type).
func acceptable(h string) bool {
	if strings.TrimSpace(h) == "" {
		return true
	}
	ranges := parseAccept(h)
	if len(ranges) == 0 {
		// Unparseable garbage: be lenient rather than break a client.
		return true
	}
	for _, r := range ranges {
		if r.q <= 0 {
			continue
		}
		switch {
		case r.typ == "*" && r.sub == "*":
			return true
		case r.typ != "application":
			continue
		case r.sub == "*" || r.sub == "json":
			return true
		case r.sub == "taxii+json" || r.sub == "stix+json":
			if r.version == "" || r.version == "2.1" {
				return true
			}
		}
	}
	return false
}

// negotiate refuses requests whose Accept excludes TAXII 2.1 with 406.
func (s *Server) negotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isOps(c) || isAdmin(c) {
			return next(c)
		}
		if !acceptable(c.Request().Header.Get(echo.HeaderAccept)) {
			return fail(http.StatusNotAcceptable, "Accept must allow %s", MediaType)
		}
		return next(c)
	}
}

// contentTypeOK reports whether a request body's Content-Type is one the Add
// Objects endpoint takes: application/taxii+json with version 2.1 or none
// (S-3.5), or plain application/json.
func contentTypeOK(h string) bool {
	mt, params, err := mime.ParseMediaType(h)
	if err != nil {
		return false
	}
	switch mt {
	case "application/taxii+json":
		v := strings.TrimSpace(params["version"])
		return v == "" || v == "2.1"
	case "application/json":
		return true
	}
	return false
}
