package taxii

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
	"github.com/labstack/echo/v4"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// maxObjectBytes caps one posted STIX object (taxii21.md S-8.14: validate
// the sizes of incoming documents).
const maxObjectBytes = 1 << 20

// addObjects serves POST {api-root}/collections/{id}/objects/ (S-2.7, S-8.8).
// Order of checks: visibility (404), write access (403), Content-Type (415),
// size (413), envelope shape (400 for bad JSON, 422 for JSON that is not an
// envelope). Then each object is checked on its own; the accepted ones are
// written in one transaction, the rejected ones listed in the status
// failures with the reason, and the answer is 202 with a complete status.
// When no object passes, the envelope is refused whole with 422 naming the
// first reasons. Nothing is written when the envelope is refused.
func (s *Server) addObjects(c echo.Context) error {
	col, err := s.lookup(c)
	if err != nil {
		return err
	}
	if !principalOf(c).canWrite(col) {
		return fail(http.StatusForbidden, "no write access to this collection")
	}
	if !contentTypeOK(c.Request().Header.Get(echo.HeaderContentType)) {
		return fail(http.StatusUnsupportedMediaType, "Content-Type must be %s", MediaType)
	}
	body, err := readBody(c.Request(), s.cfg.MaxContentLength)
	if err != nil {
		return err
	}
	raws, err := decodeEnvelope(body)
	if err != nil {
		return err
	}

	st := storage.Status{ID: uuid.NewString(), Status: "complete", RequestTimestamp: s.now().UTC(), Total: len(raws)}
	var accepted []storage.Object
	seen := map[string]bool{}
	for i, raw := range raws {
		obj, version, err := checkObject(raw)
		if err != nil {
			id := obj.ID
			if id == "" {
				id = fmt.Sprintf("objects[%d]", i)
			}
			st.Failure++
			st.Failures = append(st.Failures, storage.StatusDetail{ID: id, Version: version, Message: err.Error()})
			continue
		}
		st.Success++
		st.Successes = append(st.Successes, storage.StatusDetail{ID: obj.ID, Version: version})
		key := obj.ID + "\x00" + version
		if seen[key] {
			continue // the same version twice in one envelope is not an error (S-8.8)
		}
		seen[key] = true
		accepted = append(accepted, obj)
	}
	if st.Success == 0 {
		// Nothing in the envelope is STIX 2.1 we can take: refuse it whole.
		var why []string
		for _, d := range st.Failures[:min(3, len(st.Failures))] {
			why = append(why, d.ID+": "+d.Message)
		}
		return fail(http.StatusUnprocessableEntity, "no object in the envelope is acceptable STIX 2.1 (%s)", strings.Join(why, "; "))
	}
	ctx := c.Request().Context()
	if len(accepted) > 0 {
		err := s.store.Update(ctx, func(tx *storage.Tx) error {
			if _, err := tx.Put(col.ID, accepted, storage.PutOptions{}); err != nil {
				return err
			}
			// Objects with neither modified nor created (SCOs) report their
			// date_added as version, as the manifest and versions endpoints do.
			for i, d := range st.Successes {
				if d.Version != "" {
					continue
				}
				v, ok, err := tx.Latest(col.ID, d.ID)
				if err != nil {
					return err
				}
				if ok {
					st.Successes[i].Version = taxiiTime(v.DateAdded)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store %d objects: %w", len(accepted), err)
		}
		s.prefetch.drop()
	}
	if err := s.store.PutStatus(ctx, st); err != nil {
		return fmt.Errorf("store status: %w", err)
	}
	return reply(c, http.StatusAccepted, statusOf(st))
}

// readBody reads at most limit bytes; a longer body is a 413 (S-8.8). A
// Content-Length above the limit is refused before reading.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "request body of %d octets is larger than max_content_length (%d)", r.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fail(http.StatusRequestEntityTooLarge, "request body is larger than max_content_length (%d)", limit)
		}
		return nil, fail(http.StatusBadRequest, "read request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "request body is larger than max_content_length (%d)", limit)
	}
	return b, nil
}

// decodeEnvelope returns the objects of a TAXII envelope (§3.7). Invalid
// JSON is a 400; valid JSON that is not an envelope with a non-empty
// objects list is a 422.
func decodeEnvelope(body []byte) ([]json.RawMessage, error) {
	if !json.Valid(body) {
		return nil, fail(http.StatusBadRequest, "request body is not valid JSON")
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fail(http.StatusUnprocessableEntity, "request body is not a TAXII envelope (a JSON object)")
	}
	rawObjs, ok := env["objects"]
	if !ok {
		return nil, fail(http.StatusUnprocessableEntity, "envelope has no objects")
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(rawObjs, &objs); err != nil {
		return nil, fail(http.StatusUnprocessableEntity, "envelope objects is not a list")
	}
	if len(objs) == 0 {
		return nil, fail(http.StatusUnprocessableEntity, "envelope objects is empty")
	}
	return objs, nil
}

// scoTypes are the STIX 2.1 Cyber-observable types, which have no created or
// modified (STIX 2.1 §6).
var scoTypes = map[string]bool{
	"artifact": true, "autonomous-system": true, "directory": true, "domain-name": true, "email-addr": true,
	"email-message": true, "file": true, "ipv4-addr": true, "ipv6-addr": true, "mac-addr": true, "mutex": true,
	"network-traffic": true, "process": true, "software": true, "url": true, "user-account": true,
	"windows-registry-key": true, "x509-certificate": true,
}

// tlpMarkings maps the TLP 1.0 and 2.0 marking-definition ids to levels
// (stix-mapping.md §4.5).
var tlpMarkings = map[string]tlp.Level{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": tlp.Clear,
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": tlp.Green,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": tlp.Amber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": tlp.Red,
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": tlp.Clear,
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": tlp.Green,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": tlp.Amber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": tlp.AmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": tlp.Red,
}

var typePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$`)

// postedObject is the part of a STIX object the checks read.
type postedObject struct {
	Type              *string `json:"type"`
	ID                *string `json:"id"`
	SpecVersion       *string `json:"spec_version"`
	Created           *string `json:"created"`
	Modified          *string `json:"modified"`
	ObjectMarkingRefs []any   `json:"object_marking_refs"`
	GranularMarkings  []struct {
		MarkingRef any `json:"marking_ref"`
	} `json:"granular_markings"`
}

// checkObject validates one posted object (issue 3 §4: type/id shape,
// spec_version "2.1", created/modified on SDOs and SROs, size) and turns it
// into a storage object: canonical JSON (RFC 8785), content hash over the
// canonical bytes, TLP rank from its marking references. It returns the id
// and version it could read even on failure, for the status details.
func checkObject(raw json.RawMessage) (storage.Object, string, error) {
	var o postedObject
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return storage.Object{}, "", errors.New("not a JSON object")
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return storage.Object{}, "", fmt.Errorf("unreadable STIX object: %v", shortErr(err))
	}
	obj := storage.Object{}
	if o.ID != nil {
		obj.ID = *o.ID
	}
	version := ""
	if o.Modified != nil {
		version = *o.Modified
	} else if o.Created != nil {
		version = *o.Created
	}
	if len(raw) > maxObjectBytes {
		return obj, version, fmt.Errorf("object is %d bytes, more than the %d allowed", len(raw), maxObjectBytes)
	}
	if dup := duplicateKey(raw); dup != "" {
		return obj, version, fmt.Errorf("property %q appears twice", dup)
	}
	if o.Type == nil || !typePattern.MatchString(*o.Type) || strings.Contains(*o.Type, "--") {
		return obj, version, errors.New("type is missing or not a STIX type name")
	}
	typ := *o.Type
	if o.ID == nil {
		return obj, version, errors.New("id is missing")
	}
	rest, ok := strings.CutPrefix(*o.ID, typ+"--")
	if u, err := uuid.Parse(rest); !ok || err != nil || len(rest) != 36 || u.String() != strings.ToLower(rest) {
		return obj, version, fmt.Errorf("id %q is not %s--<uuid>", *o.ID, typ)
	}
	if o.SpecVersion == nil || *o.SpecVersion != "2.1" {
		return obj, version, errors.New(`spec_version must be "2.1"`)
	}
	var err error
	if o.Created != nil {
		if obj.Created, err = stixTimestamp(*o.Created); err != nil {
			return obj, version, fmt.Errorf("created: %w", err)
		}
	}
	if o.Modified != nil {
		if obj.Modified, err = stixTimestamp(*o.Modified); err != nil {
			return obj, version, fmt.Errorf("modified: %w", err)
		}
	}
	if !scoTypes[typ] {
		if o.Created == nil {
			return obj, version, errors.New("created is required on this object type")
		}
		if o.Modified == nil && typ != "marking-definition" {
			return obj, version, errors.New("modified is required on this object type")
		}
	}
	if !obj.Modified.IsZero() && !obj.Created.IsZero() && obj.Modified.Before(obj.Created) {
		return obj, version, errors.New("modified is before created")
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return obj, version, fmt.Errorf("canonicalize: %v", shortErr(err))
	}
	level := tlp.None
	for _, r := range o.ObjectMarkingRefs {
		if id, ok := r.(string); ok {
			level = tlp.Max(level, tlpMarkings[id])
		}
	}
	for _, g := range o.GranularMarkings {
		if id, ok := g.MarkingRef.(string); ok {
			level = tlp.Max(level, tlpMarkings[id])
		}
	}
	obj.Type = typ
	obj.SpecVersion = "2.1"
	obj.TLP = int(level)
	obj.Hash = sha256.Sum256(canon)
	obj.JSON = canon
	return obj, version, nil
}

// stixTimestamp reads a STIX timestamp: RFC 3339 in UTC with a literal Z.
func stixTimestamp(v string) (time.Time, error) {
	if !strings.HasSuffix(v, "Z") {
		return time.Time{}, fmt.Errorf("%q is not a UTC STIX timestamp", v)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a STIX timestamp", v)
	}
	return t.UTC(), nil
}

// duplicateKey returns a top-level property name that occurs twice in the
// JSON object raw, or "".
func duplicateKey(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := t.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// shortErr trims an error text for a status message.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
