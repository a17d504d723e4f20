package tcsim

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// The simulator writes JSON by hand rather than through encoding/json and the
// tcapi struct tags: it must produce ThreatConnect's exact wire quirks (vote
// counts as strings, File size sometimes a string, {} for empty requested
// expansions, fields omitted rather than null), it is independent of the
// client's decoding tags (so a wrong tag is caught by a test, not mirrored),
// and it keeps 10,000-item pages cheap.

type jw struct {
	b     []byte
	first bool // no comma needed before the next member
}

func (w *jw) open()  { w.b = append(w.b, '{'); w.first = true }
func (w *jw) close() { w.b = append(w.b, '}'); w.first = false }

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jw) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jw) strAlways(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jw) i64(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jw) intp(k string, v *int) {
	if v != nil {
		w.i64(k, int64(*v))
	}
}

func (w *jw) floatp(k string, v *float64, prec int) {
	if v != nil {
		w.key(k)
		w.b = strconv.AppendFloat(w.b, *v, 'f', prec, 64)
	}
}

func (w *jw) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) time(k string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, "2006-01-02T15:04:05Z")
	w.b = append(w.b, '"')
}

// list writes "k":{"data":[…],"count":n} or "k":{} when empty.
func (w *jw) list(k string, n int, count int, withCount bool, item func(i int)) {
	w.key(k)
	if n == 0 && !withCount {
		w.b = append(w.b, '{', '}')
		return
	}
	w.open()
	if n > 0 {
		w.key("data")
		w.b = append(w.b, '[')
		for i := range n {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			item(i)
		}
		w.b = append(w.b, ']')
	}
	if withCount {
		w.i64("count", int64(count))
	}
	w.close()
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (RFC 8259 §7), escaping quotes,
// backslashes, control characters, U+2028/U+2029 and invalid UTF-8 (as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// expand is the set of fields= expansions of one request, with the one
// level of dot notation allowed by the default link limit (§4.4).
type expand struct {
	set    map[string]bool
	nested map[string]map[string]bool // "associatedGroups" → {"attributes": true}
}

func (e expand) has(f string) bool { return e.set[f] }

func (e expand) sub(f string) expand {
	n := e.nested[f]
	if n == nil {
		return expand{}
	}
	return expand{set: n}
}

func (s *Simulator) writeIndicator(w *jw, in *tcapi.Indicator, ex expand, nested bool) {
	w.open()
	w.i64("id", in.ID)
	w.i64("ownerId", in.OwnerID)
	w.str("ownerName", in.OwnerName)
	w.time("dateAdded", in.DateAdded)
	w.str("webLink", in.WebLink)
	if ex.has("tags") {
		w.list("tags", len(in.Tags.Data), 0, false, func(i int) { writeTag(w, &in.Tags.Data[i]) })
	}
	if ex.has("securityLabels") {
		w.list("securityLabels", len(in.SecurityLabels.Data), 0, false, func(i int) { writeLabel(w, &in.SecurityLabels.Data[i]) })
	}
	w.strAlways("type", in.Type)
	w.time("lastModified", in.LastModified)
	w.floatp("rating", in.Rating, 2)
	w.intp("confidence", in.Confidence)
	if ex.has("threatAssess") {
		w.floatp("threatAssessRating", in.ThreatAssessRating, 1)
		w.floatp("threatAssessConfidence", in.ThreatAssessConfidence, 1)
		w.intp("threatAssessScore", in.ThreatAssessScore)
		w.intp("threatAssessScoreObserved", in.ThreatAssessScoreObserved)
		w.intp("threatAssessScoreFalsePositive", in.ThreatAssessScoreFalsePositive)
		w.intp("calScore", in.CalScore)
	}
	w.str("source", in.Source)
	w.str("description", in.Description)
	w.str("summary", in.Summary)
	if ex.has("observations") {
		w.intp("observations", in.Observations)
		w.time("lastObserved", in.LastObserved)
	}
	if ex.has("falsePositives") {
		w.intp("falsePositives", in.FalsePositives)
		w.time("lastFalsePositive", in.LastFalsePositive)
		w.boolean("falsePositiveReportedByUser", in.FalsePositiveReportedByUser)
	}
	if ex.has("sightings") {
		w.time("firstSeen", in.FirstSeen)
		w.time("lastSeen", in.LastSeen)
	}
	if ex.has("externalDates") {
		w.time("externalDateAdded", in.ExternalDateAdded)
		w.time("externalLastModified", in.ExternalLastModified)
		w.time("externalDateExpires", in.ExternalDateExpires)
	}
	w.boolean("privateFlag", in.PrivateFlag)
	w.boolean("active", in.Active)
	w.boolean("activeLocked", in.ActiveLocked)
	if !nested {
		if ex.has("associatedGroups") {
			groups, total := s.groupsOfIndicator(in.ID, s.embedLimit)
			sub := ex.sub("associatedGroups")
			w.list("associatedGroups", len(groups), total, total > len(groups), func(i int) {
				s.writeGroup(w, groups[i], sub, true)
			})
		}
		if ex.has("associatedIndicators") {
			links := s.customLinks(in)
			sub := ex.sub("associatedIndicators")
			w.list("associatedIndicators", len(links), 0, false, func(i int) {
				s.writeIndicator(w, links[i].other, sub, true)
			})
		}
		if ex.has("customAssociations") {
			links := s.customLinks(in)
			sub := ex.sub("customAssociations")
			w.list("customAssociations", len(links), len(links), true, func(i int) {
				other := *links[i].other
				other.CustomAssociationName = links[i].name
				s.writeIndicator(w, &other, sub, true)
			})
		}
		if ex.has("fileActions") && in.Type == tcapi.TypeFile {
			acts := s.fileActions(in)
			sub := ex.sub("fileActions")
			w.list("fileActions", len(acts), len(acts), true, func(i int) {
				w.open()
				w.strAlways("relationship", acts[i].name)
				w.key("indicator")
				s.writeIndicator(w, acts[i].other, sub, true)
				w.close()
			})
		}
	}
	if ex.has("attributes") {
		sub := ex.sub("attributes")
		w.list("attributes", len(in.Attributes.Data), 0, false, func(i int) { writeAttribute(w, &in.Attributes.Data[i], sub) })
	}
	if ex.has("dnsResolution") && in.Type == tcapi.TypeHost && !nested {
		res := s.dnsResolutions(in)
		w.list("dnsResolution", len(res), 0, false, func(i int) {
			r := &res[i]
			w.open()
			w.i64("id", r.ID)
			w.time("resolutionDate", r.ResolutionDate)
			w.list("addresses", len(r.Addresses.Data), 0, false, func(j int) {
				s.writeIndicator(w, &r.Addresses.Data[j], expand{}, true)
			})
			w.close()
		})
	}
	if ex.has("associationName") && in.AssociationName != "" {
		w.str("associationName", in.AssociationName)
	}
	w.str("customAssociationName", in.CustomAssociationName)
	s.writeValues(w, in, ex.has("genericCustomIndicatorValues"))
	w.str("legacyLink", in.LegacyLink)
	w.close()
}

// writeValues writes the per-type value keys (§6.1); with
// genericCustomIndicatorValues, custom types carry value1..value3 instead of
// their named keys.
func (s *Simulator) writeValues(w *jw, in *tcapi.Indicator, generic bool) {
	switch in.Type {
	case tcapi.TypeAddress:
		w.str("ip", in.IP)
	case tcapi.TypeEmailAddress:
		w.str("address", in.Address)
	case tcapi.TypeFile:
		w.str("md5", in.MD5)
		w.str("sha1", in.SHA1)
		w.str("sha256", in.SHA256)
		if in.Size != 0 {
			w.key("size")
			if in.Size%2 == 0 { // both wire forms occur (§1)
				w.b = appendString(w.b, strconv.FormatInt(int64(in.Size), 10))
			} else {
				w.b = strconv.AppendInt(w.b, int64(in.Size), 10)
			}
		}
	case tcapi.TypeHost:
		w.str("hostName", in.HostName)
		w.boolean("dnsActive", in.DNSActive)
		w.boolean("whoisActive", in.WhoisActive)
	case tcapi.TypeURL:
		w.str("text", in.Text)
	default:
		vals := in.Values()
		if generic {
			for i, v := range vals {
				w.str("value"+strconv.Itoa(i+1), v)
			}
			return
		}
		switch in.Type {
		case tcapi.TypeASN:
			w.str("AS Number", in.ASNumber)
		case tcapi.TypeCIDR:
			w.str("Block", in.Block)
		case tcapi.TypeEmailSubject:
			w.str("Subject", in.Subject)
		case tcapi.TypeHashtag:
			w.str("Hashtag", in.Hashtag)
		case tcapi.TypeMutex:
			w.str("Mutex", in.Mutex)
		case tcapi.TypeRegistryKey:
			w.str("Key Name", in.KeyName)
			w.str("Value Name", in.ValueName)
			w.str("Value Type", in.ValueType)
		case tcapi.TypeUserAgent:
			w.str("User Agent String", in.UserAgentString)
		}
	}
}

func (s *Simulator) writeGroup(w *jw, g *tcapi.Group, ex expand, nested bool) {
	w.open()
	w.i64("id", g.ID)
	w.i64("ownerId", g.OwnerID)
	w.str("ownerName", g.OwnerName)
	w.time("dateAdded", g.DateAdded)
	w.str("webLink", g.WebLink)
	if ex.has("tags") {
		w.list("tags", len(g.Tags.Data), 0, false, func(i int) { writeTag(w, &g.Tags.Data[i]) })
	}
	if ex.has("securityLabels") {
		w.list("securityLabels", len(g.SecurityLabels.Data), 0, false, func(i int) { writeLabel(w, &g.SecurityLabels.Data[i]) })
	}
	w.strAlways("type", g.Type)
	w.strAlways("name", g.Name)
	w.str("xid", g.XID)
	if g.CreatedBy != nil {
		w.key("createdBy")
		writeUser(w, g.CreatedBy)
	}
	w.strAlways("upVoteCount", strconv.FormatInt(int64(g.UpVoteCount), 10))
	w.strAlways("downVoteCount", strconv.FormatInt(int64(g.DownVoteCount), 10))
	if ex.has("attributes") {
		sub := ex.sub("attributes")
		w.list("attributes", len(g.Attributes.Data), 0, false, func(i int) { writeAttribute(w, &g.Attributes.Data[i], sub) })
	}
	if !nested {
		if ex.has("associatedIndicators") {
			inds, total := s.indicatorsOfGroup(g.ID, s.embedLimit)
			sub := ex.sub("associatedIndicators")
			w.list("associatedIndicators", len(inds), total, total > len(inds), func(i int) {
				s.writeIndicator(w, inds[i], sub, true)
			})
		}
		if ex.has("associatedGroups") {
			gs := s.groupsOfGroup(g.ID)
			sub := ex.sub("associatedGroups")
			w.list("associatedGroups", len(gs), 0, false, func(i int) { s.writeGroup(w, gs[i], sub, true) })
		}
	}
	// Type-specific fields (§7.3).
	w.str("status", g.Status)
	w.str("fileName", g.FileName)
	if g.FileSize != 0 {
		w.i64("fileSize", int64(g.FileSize))
	}
	w.str("documentType", g.DocumentType)
	w.time("documentDateAdded", g.DocumentDateAdded)
	if g.Type == tcapi.GroupDocument {
		w.boolean("malware", g.Malware)
	}
	if g.GeneratedReport {
		w.boolean("generatedReport", true)
	}
	w.time("publishDate", g.PublishDate)
	w.str("to", g.To)
	w.str("from", g.From)
	w.str("subject", g.EmailSubject)
	w.str("header", g.Header)
	w.str("body", g.Body)
	w.time("emailDate", g.EmailDate)
	w.intp("score", g.Score)
	if g.Type == tcapi.GroupEmail {
		w.boolean("scoreIncludesBody", g.ScoreIncludesBody)
	}
	w.str("scoreBreakdown", g.ScoreBreakdown)
	w.time("eventDate", g.EventDate)
	w.str("eventType", g.EventType)
	w.str("fileType", g.FileType)
	w.str("fileText", g.FileText)
	w.time("signatureDateAdded", g.SignatureDateAdded)
	w.time("dueDate", g.DueDate)
	w.time("escalationDate", g.EscalationDate)
	w.time("reminderDate", g.ReminderDate)
	if g.Type == tcapi.GroupTask {
		w.boolean("escalated", g.Escalated)
		w.boolean("overdue", g.Overdue)
		w.boolean("reminded", g.Reminded)
	}
	if ex.has("sightings") {
		w.time("firstSeen", g.FirstSeen)
		w.time("lastSeen", g.LastSeen)
	}
	if ex.has("externalDates") {
		w.time("externalDateAdded", g.ExternalDateAdded)
		w.time("externalLastModified", g.ExternalLastModified)
		w.time("externalDateExpires", g.ExternalDateExpires)
	}
	w.time("lastModified", g.LastModified)
	w.str("legacyLink", g.LegacyLink)
	w.close()
}

func writeTag(w *jw, t *tcapi.Tag) {
	w.open()
	w.i64("id", t.ID)
	w.strAlways("name", t.Name)
	w.str("description", t.Description)
	w.time("lastUsed", t.LastUsed)
	w.str("techniqueId", t.TechniqueID)
	w.str("owner", t.Owner)
	w.close()
}

func writeLabel(w *jw, l *tcapi.SecurityLabel) {
	w.open()
	w.i64("id", l.ID)
	w.strAlways("name", l.Name)
	w.str("description", l.Description)
	w.str("color", l.Color)
	w.str("owner", l.Owner)
	w.time("dateAdded", l.DateAdded)
	w.close()
}

func writeUser(w *jw, u *tcapi.User) {
	w.open()
	w.i64("id", u.ID)
	w.str("userName", u.UserName)
	w.str("firstName", u.FirstName)
	w.str("lastName", u.LastName)
	w.str("pseudonym", u.Pseudonym)
	w.str("owner", u.Owner)
	w.close()
}

func writeAttribute(w *jw, a *tcapi.Attribute, ex expand) {
	w.open()
	w.i64("id", a.ID)
	w.time("dateAdded", a.DateAdded)
	w.strAlways("type", a.Type)
	w.strAlways("value", a.Value)
	w.str("source", a.Source)
	if a.CreatedBy != nil {
		w.key("createdBy")
		writeUser(w, a.CreatedBy)
	}
	w.time("lastModified", a.LastModified)
	w.boolean("pinned", a.Pinned)
	w.boolean("default", a.Default)
	if a.IndicatorID != 0 {
		w.i64("indicatorId", a.IndicatorID)
	}
	if a.GroupID != 0 {
		w.i64("groupId", a.GroupID)
	}
	if ex.has("securityLabels") {
		w.list("securityLabels", len(a.SecurityLabels.Data), 0, false, func(i int) { writeLabel(w, &a.SecurityLabels.Data[i]) })
	}
	w.close()
}
