package taxii

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// maxObjectBytes caps one posted STIX object (taxii21.md S-8.14: validate
// the sizes of incoming documents).
const maxObjectBytes = 1 << 20

// Bounds of one status detail: a STIX id is at most 250 + 2 + 36 bytes and
// a version a timestamp; a longer id or version is not echoed back.
const (
	maxDetailID      = 300
	maxDetailVersion = 64
	maxDetailMessage = 200
)

// statusDetailBytes bounds the detail entries of one status together, so
// the stored status stays below storage.MaxStatusBytes whatever was posted.
const statusDetailBytes = 6 << 20

// addObjects serves POST {api-root}/collections/{id}/objects/ (S-2.7, S-8.8).
// Order of checks: visibility (404), write access (403), Content-Type (415),
// a Content-Length above max_content_length (413). The body is then read as
// a stream (decodeEnvelope): the envelope is refused whole for invalid JSON
// (400), JSON that is not an envelope or more than max_objects_per_post
// objects (422), or a body that outgrows max_content_length (413); nothing is
// stored then. Each object is checked on its own as it is read
// (checkObject); the accepted ones are written in one transaction after the
// whole envelope was read, the rejected ones counted and listed in the
// status failures with the reason. When no object passes, the envelope is
// refused whole with 422 naming the first reasons. The status is complete at
// once, belongs to the poster and is kept for status_retention.
func (s *Server) addObjects(c echo.Context) error {
	col, err := s.lookup(c)
	if err != nil {
		return err
	}
	p := principalOf(c)
	if !p.canWrite(col) {
		return fail(http.StatusForbidden, "no write access to this collection")
	}
	if !contentTypeOK(c.Request().Header.Get(echo.HeaderContentType)) {
		return fail(http.StatusUnsupportedMediaType, "Content-Type must be %s", MediaType)
	}
	req := c.Request()
	limit := s.cfg.MaxContentLength
	if req.ContentLength > limit {
		return fail(http.StatusRequestEntityTooLarge, "request body of %d octets is larger than max_content_length (%d)", req.ContentLength, limit)
	}
	body := http.MaxBytesReader(c.Response(), req.Body, limit)

	now := s.now().UTC()
	sb := newStatusBuilder(s.cfg.StatusDetailsLimit)
	sb.st.ID = uuid.NewString()
	sb.st.Status = "complete"
	sb.st.RequestTimestamp = now
	sb.st.Owner = p.name
	sb.st.Expires = now.Add(s.cfg.StatusRetention)
	var (
		accepted []storage.Object
		seen     = map[string]bool{}
		why      []string // the first reasons, for a 422 when nothing passes
	)
	total, err := decodeEnvelope(body, s.cfg.MaxObjectsPerPost, func(i int, raw []byte) error {
		obj, version, err := checkObject(raw)
		if err != nil && len(why) == 3 && sb.full(sb.st.Failures) {
			sb.st.Failure++ // counted, not listed: nothing to format
			return nil
		}
		if err != nil {
			id := obj.ID
			if id == "" || len(id) > maxDetailID || !utf8.ValidString(id) {
				id = fmt.Sprintf("objects[%d]", i)
			}
			msg := err.Error()
			if len(why) < 3 {
				why = append(why, id+": "+msg)
			}
			sb.failure(storage.StatusDetail{ID: id, Version: version, Message: msg})
			return nil
		}
		sb.success(storage.StatusDetail{ID: obj.ID, Version: version})
		key := obj.ID + "\x00" + version
		if !seen[key] { // the same version twice in one envelope is not an error (S-8.8)
			seen[key] = true
			accepted = append(accepted, obj)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sb.st.Total = total
	if sb.st.Success == 0 {
		// Nothing in the envelope is STIX 2.1 we can take: refuse it whole.
		return fail(http.StatusUnprocessableEntity, "no object in the envelope is acceptable STIX 2.1 (%s)", strings.Join(why, "; "))
	}
	ctx := req.Context()
	if err := s.store.Update(ctx, func(tx *storage.Tx) error {
		return s.storeAccepted(tx, col, p, accepted, sb.st.Successes)
	}); err != nil {
		return fmt.Errorf("store %d objects: %w", len(accepted), err)
	}
	s.prefetch.drop()
	if err := s.store.PutStatus(ctx, sb.st); err != nil {
		return fmt.Errorf("store status: %w", err)
	}
	return reply(c, http.StatusAccepted, statusOf(sb.st))
}

// storeAccepted writes the accepted objects and fills in the versions of
// the listed successes that have neither modified nor created.
//
// An object whose id the collection holds with a latest version above the
// poster's TLP cap is hidden from the poster (DESIGN.md §10) and is not
// written: the poster cannot overwrite or downgrade it. Its success entry
// is made exactly as for an object new to the collection — version from
// the posted object, or for an object with neither modified nor created a
// fresh timestamp where a new object would show its new date_added — so the
// status reveals neither the hidden object's date_added nor that the post
// changed nothing. A poster that cannot read the collection likewise never
// sees the date_added of a copy the collection already held.
func (s *Server) storeAccepted(tx *storage.Tx, col storage.Collection, p *principal, accepted []storage.Object, successes []storage.StatusDetail) error {
	maxTLP := p.tlpCap()
	hidden := map[string]bool{}
	if maxTLP < storage.TLPRed {
		checked := map[string]bool{}
		for _, o := range accepted {
			if checked[o.ID] {
				continue
			}
			checked[o.ID] = true
			v, ok, err := tx.Latest(col.ID, o.ID)
			if err != nil {
				return err
			}
			if ok && v.TLP > maxTLP {
				hidden[o.ID] = true
			}
		}
	}
	// Objects without modified or created report their date_added as
	// version, as the manifest and versions endpoints do; remember which
	// ones the collection held before.
	before := map[string]int64{}
	for _, d := range successes {
		if d.Version != "" || hidden[d.ID] {
			continue
		}
		if _, done := before[d.ID]; done {
			continue
		}
		v, ok, err := tx.Latest(col.ID, d.ID)
		if err != nil {
			return err
		}
		before[d.ID] = 0
		if ok {
			before[d.ID] = v.DateAdded
		}
	}
	toPut := accepted
	if len(hidden) > 0 {
		toPut = make([]storage.Object, 0, len(accepted))
		for _, o := range accepted {
			if !hidden[o.ID] {
				toPut = append(toPut, o)
			}
		}
	}
	if len(toPut) > 0 {
		if _, err := tx.Put(col.ID, toPut); err != nil {
			return err
		}
	}
	fresh := func() string { return taxiiTime(s.now().UnixMicro()) }
	for i, d := range successes {
		if d.Version != "" {
			continue
		}
		if hidden[d.ID] {
			successes[i].Version = fresh()
			continue
		}
		v, ok, err := tx.Latest(col.ID, d.ID)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			successes[i].Version = fresh()
		case v.DateAdded != before[d.ID] || p.canRead(col):
			successes[i].Version = taxiiTime(v.DateAdded)
		default:
			successes[i].Version = fresh()
		}
	}
	return nil
}

// statusBuilder collects a status resource within bounds (issue 14): the
// counts are exact, each list keeps its first limit entries and all lists
// together at most statusDetailBytes; TAXII lets a server omit them
// (§4.3.1), and statusOf says how many were left out.
type statusBuilder struct {
	st     storage.Status
	limit  int
	budget int
}

func newStatusBuilder(limit int) *statusBuilder {
	return &statusBuilder{limit: limit, budget: statusDetailBytes}
}

func (b *statusBuilder) success(d storage.StatusDetail) {
	b.st.Success++
	b.add(&b.st.Successes, d)
}

func (b *statusBuilder) failure(d storage.StatusDetail) {
	b.st.Failure++
	b.add(&b.st.Failures, d)
}

// full reports whether list takes no more entries.
func (b *statusBuilder) full(list []storage.StatusDetail) bool {
	return len(list) >= b.limit || b.budget <= 0
}

func (b *statusBuilder) add(list *[]storage.StatusDetail, d storage.StatusDetail) {
	if len(d.Version) > maxDetailVersion || !utf8.ValidString(d.Version) {
		d.Version = ""
	}
	if len(d.Message) > maxDetailMessage {
		cut := maxDetailMessage
		for cut > 0 && !utf8.RuneStart(d.Message[cut]) {
			cut--
		}
		d.Message = d.Message[:cut] + "…"
	}
	if len(*list) >= b.limit || b.budget <= 0 {
		return
	}
	// What the entry costs in the stored JSON, escaping included (an id of
	// 300 '<' is 1,800 bytes there).
	enc, _ := json.Marshal(d) // strings always marshal
	cost := len(enc) + 1
	if cost > b.budget {
		b.budget = 0
		return
	}
	b.budget -= cost
	*list = append(*list, d)
}

// scoTypes are the STIX 2.1 Cyber-observable types, which have no created or
// modified (STIX 2.1 §6).
var scoTypes = map[string]bool{
	"artifact": true, "autonomous-system": true, "directory": true, "domain-name": true, "email-addr": true,
	"email-message": true, "file": true, "ipv4-addr": true, "ipv6-addr": true, "mac-addr": true, "mutex": true,
	"network-traffic": true, "process": true, "software": true, "url": true, "user-account": true,
	"windows-registry-key": true, "x509-certificate": true,
}

// markingTLP is the TLP level of a marking-definition id: its TLP 1.0 or
// 2.0 level, or tlp.None for any other marking.
func markingTLP(id string) tlp.Level {
	l, _ := tlp.FromMarking(id)
	return l
}

var typePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$`)

// requiredProps lists, per STIX 2.1 type, the type-specific properties the
// specification requires (STIX 2.1 §4–§6); the common ones are checked for
// every object.
var requiredProps = map[string][]string{
	"attack-pattern": {"name"}, "campaign": {"name"}, "course-of-action": {"name"},
	"grouping": {"context", "object_refs"}, "identity": {"name"}, "incident": {"name"},
	"indicator": {"pattern", "pattern_type", "valid_from"}, "infrastructure": {"name"},
	"intrusion-set": {"name"}, "malware": {"is_family"}, "malware-analysis": {"product"},
	"note": {"content", "object_refs"}, "observed-data": {"first_observed", "last_observed", "number_observed"},
	"opinion": {"opinion", "object_refs"}, "report": {"name", "published", "object_refs"},
	"threat-actor": {"name"}, "tool": {"name"}, "vulnerability": {"name"},
	"relationship": {"relationship_type", "source_ref", "target_ref"}, "sighting": {"sighting_of_ref"},
	"autonomous-system": {"number"}, "domain-name": {"value"}, "email-addr": {"value"},
	"ipv4-addr": {"value"}, "ipv6-addr": {"value"}, "mac-addr": {"value"}, "mutex": {"name"},
	"url": {"value"},
}

// propertyNamePattern is what a top-level STIX property name may look like:
// ASCII lower-case letters, digits and underscores, at most 250 characters
// (STIX 2.1 §3.1, §11.1). "TYPE" or "Object_Marking_Refs" is not a STIX
// property, so a case variant cannot even stand alone.
var propertyNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,250}$`)

// markingRefPattern is a marking-definition identifier.
var markingRefPattern = regexp.MustCompile(`^marking-definition--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// stixTimestampPattern is the STIX timestamp form: UTC, literal T and Z,
// optional fraction (STIX 2.1 §3.2) of at most nine digits, the precision
// the store keeps (and what keeps a version string short).
var stixTimestampPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$`)

// checkObject validates one posted object and turns it into a storage
// object: canonical JSON (RFC 8785), content hash over the canonical bytes,
// TLP rank from its marking references. It returns the id and version it
// could read even on failure, for the status details.
//
// Property names are matched exactly, never case-insensitively (issue 9): a
// name repeated in any letter case at any depth is a failure, top-level
// names must be STIX property names, and the marking is read from the
// exact-case object_marking_refs and granular_markings[].marking_ref. The
// object must be valid for its type: type a STIX type name, id
// "<type>--<RFC 4122 UUID>", spec_version "2.1", created and modified valid
// STIX timestamps where STIX requires them (every type but SCOs; modified
// not on marking-definitions), modified not before created, the
// type-specific required properties of requiredProps present, marking
// references marking-definition ids, at most 1 MiB of valid UTF-8.
func checkObject(raw []byte) (storage.Object, string, error) {
	raw = bytes.TrimSpace(raw)
	obj := storage.Object{}
	if len(raw) == 0 || raw[0] != '{' {
		return obj, "", errors.New("not a JSON object")
	}
	if len(raw) > maxObjectBytes {
		return obj, "", fmt.Errorf("object is %d bytes, more than the %d allowed", len(raw), maxObjectBytes)
	}
	if !utf8.Valid(raw) {
		return obj, "", errors.New("object is not valid UTF-8")
	}
	canon, ms, err := canonicalize(raw)
	if err != nil {
		return obj, "", err
	}
	props := make(map[string][]byte, len(ms))
	for _, m := range ms {
		props[m.name] = m.value
	}
	str := func(name string) (string, bool, error) {
		v, ok := props[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return "", true, fmt.Errorf("%s must be a string", name)
		}
		return s, true, nil
	}
	// The id and version first, so that a failure can name them.
	id, hasID, idErr := str("id")
	obj.ID = id
	created, hasCreated, cErr := str("created")
	modified, hasModified, mErr := str("modified")
	version := ""
	if hasModified && mErr == nil {
		version = modified
	} else if hasCreated && cErr == nil {
		version = created
	}
	for _, m := range ms {
		if !propertyNamePattern.MatchString(m.name) {
			return obj, version, fmt.Errorf("property name %s is not a STIX property name (a–z, 0–9 and _ only)", quoteShort(m.name))
		}
	}
	typ, hasType, err := str("type")
	if err != nil || !hasType || !typePattern.MatchString(typ) || strings.Contains(typ, "--") {
		return obj, version, errors.New("type is missing or not a STIX type name")
	}
	if idErr != nil || !hasID {
		return obj, version, errors.New("id is missing or not a string")
	}
	rest, ok := strings.CutPrefix(id, typ+"--")
	if u, err := uuid.Parse(rest); !ok || err != nil || len(rest) != 36 || u.String() != rest || u.Variant() != uuid.RFC4122 {
		return obj, version, fmt.Errorf("id %s is not %s--<RFC 4122 UUID in lower case>", quoteShort(id), typ)
	}
	if sv, _, err := str("spec_version"); err != nil || sv != "2.1" {
		return obj, version, errors.New(`spec_version must be "2.1"`)
	}
	if cErr != nil {
		return obj, version, cErr
	}
	if mErr != nil {
		return obj, version, mErr
	}
	if hasCreated {
		if obj.Created, err = stixTimestamp(created); err != nil {
			return obj, version, fmt.Errorf("created: %w", err)
		}
	}
	if hasModified {
		if obj.Modified, err = stixTimestamp(modified); err != nil {
			return obj, version, fmt.Errorf("modified: %w", err)
		}
	}
	if !scoTypes[typ] {
		if !hasCreated {
			return obj, version, errors.New("created is required on this object type")
		}
		if !hasModified && typ != "marking-definition" {
			return obj, version, errors.New("modified is required on this object type")
		}
	}
	if !obj.Modified.IsZero() && !obj.Created.IsZero() && obj.Modified.Before(obj.Created) {
		return obj, version, errors.New("modified is before created")
	}
	for _, name := range requiredProps[typ] {
		if _, ok := props[name]; !ok {
			return obj, version, fmt.Errorf("%s is required on %s", name, typ)
		}
	}
	level, err := markingLevel(props)
	if err != nil {
		return obj, version, err
	}
	// What the bootstrap view filters on (User.BootstrapCurrent).
	if v, ok := props["revoked"]; ok {
		switch string(v) {
		case "true":
			obj.Revoked = true
		case "false":
		default:
			return obj, version, errors.New("revoked must be true or false")
		}
	}
	if vu, ok, err := str("valid_until"); err != nil {
		return obj, version, err
	} else if ok {
		if obj.ValidUntil, err = stixTimestamp(vu); err != nil {
			return obj, version, fmt.Errorf("valid_until: %w", err)
		}
	}
	obj.Type = typ
	obj.SpecVersion = "2.1"
	obj.TLP = int(level)
	sum := sha256.Sum256(canon)
	copy(obj.Hash[:], sum[:]) // storage keeps 16 bytes (storage.Object.Hash)
	obj.JSON = canon
	return obj, version, nil
}

// markingLevel is the strictest TLP among the exact-case
// object_marking_refs and granular_markings[].marking_ref of an object
// (stix-mapping.md §4.5); markings that are not TLP count as none. Both must
// be lists; every reference must be a marking-definition id.
func markingLevel(props map[string][]byte) (tlp.Level, error) {
	level := tlp.None
	if v, ok := props["object_marking_refs"]; ok {
		var refs []json.RawMessage
		if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &refs) != nil {
			return level, errors.New("object_marking_refs must be a list")
		}
		for _, r := range refs {
			var id string
			if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &id) != nil || !markingRefPattern.MatchString(id) {
				return level, errors.New("object_marking_refs must hold marking-definition ids")
			}
			level = tlp.Max(level, markingTLP(id))
		}
	}
	if v, ok := props["granular_markings"]; ok {
		var gms []json.RawMessage
		if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &gms) != nil {
			return level, errors.New("granular_markings must be a list")
		}
		for _, g := range gms {
			// A map keeps names exactly; members already refused case
			// variants at this depth.
			var gm map[string]json.RawMessage
			if len(g) == 0 || g[0] != '{' || json.Unmarshal(g, &gm) != nil {
				return level, errors.New("granular_markings must hold objects")
			}
			r, ok := gm["marking_ref"]
			if !ok {
				continue // a language marking
			}
			var id string
			if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &id) != nil || !markingRefPattern.MatchString(id) {
				return level, errors.New("granular_markings marking_ref must be a marking-definition id")
			}
			level = tlp.Max(level, markingTLP(id))
		}
	}
	return level, nil
}

// stixTimestamp reads a STIX timestamp: RFC 3339 in UTC with a literal T
// and Z (STIX 2.1 §3.2).
func stixTimestamp(v string) (time.Time, error) {
	if !stixTimestampPattern.MatchString(v) {
		return time.Time{}, fmt.Errorf("%s is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)", quoteShort(v))
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not a STIX timestamp", quoteShort(v))
	}
	return t.UTC(), nil
}

// shortErr trims an error text for a status message.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
