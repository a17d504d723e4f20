package taxii

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// apiError is a failure with a TAXII error resource (taxii21.md §1.5 Error).
// Handlers return it; handleError writes it.
type apiError struct {
	status      int
	title       string
	description string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.title, e.description)
}

// fail returns an apiError with the standard title of status.
func fail(status int, format string, args ...any) *apiError {
	return &apiError{status: status, title: http.StatusText(status), description: fmt.Sprintf(format, args...)}
}

// errorBody is the TAXII error resource. http_status is a string (§3.6.1).
type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	ErrorID     string `json:"error_id"`
	HTTPStatus  string `json:"http_status"`
}

// handleError is Echo's HTTPErrorHandler: the one error path for every
// non-2xx response, router 404/405 and panics included (taxii21.md D-12).
// Every body is a TAXII error resource served as application/taxii+json;version=2.1
// with an error_id that also appears in the log line.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Warn("error after response started", slog.Any("error", err))
		return
	}
	var (
		ae *apiError
		he *echo.HTTPError
		st int
		ti string
		de string
	)
	switch {
	case errors.As(err, &ae):
		st, ti, de = ae.status, ae.title, ae.description
	case errors.As(err, &he):
		st = he.Code
		ti = http.StatusText(st)
		switch st {
		case http.StatusNotFound:
			de = "no such TAXII endpoint"
		case http.StatusMethodNotAllowed:
			de = "method not allowed on this endpoint; see the Allow header"
		case http.StatusRequestEntityTooLarge:
			de = fmt.Sprintf("request body larger than max_content_length (%d octets)", s.cfg.MaxContentLength)
		default:
			if m, ok := he.Message.(string); ok {
				de = m
			}
		}
	default:
		st, ti, de = http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError), "internal error; quote the error_id to the operator"
		if s.cfg.OnServerError != nil {
			s.cfg.OnServerError(err)
		}
	}
	if ti == "" {
		ti = "Error"
	}
	id := newErrorID()
	level := slog.LevelInfo
	if st >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request().Context(), level, "taxii error",
		slog.Int("status", st), slog.String("error_id", id), slog.String("path", c.Request().URL.Path), slog.Any("error", err))

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, MediaType)
	h.Del("ETag") // set by a listing before it failed
	if st == http.StatusUnauthorized {
		h.Add(echo.HeaderWWWAuthenticate, `Basic realm="taxii-bridge", charset="UTF-8"`)
		h.Add(echo.HeaderWWWAuthenticate, `Bearer realm="taxii-bridge"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(st)
		return
	}
	body, _ := json.Marshal(errorBody{Title: ti, Description: de, ErrorID: id, HTTPStatus: strconv.Itoa(st)})
	if werr := c.Blob(st, MediaType, body); werr != nil {
		s.log.Warn("write error response", slog.Any("error", werr))
	}
}

func newErrorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
