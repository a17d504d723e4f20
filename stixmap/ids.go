package stixmap

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
)

// scoNamespace is the UUIDv5 namespace STIX 2.1 §2.9 fixes for deterministic
// SCO ids. It must never be used for anything else (stix-mapping.md §3.2.1).
var scoNamespace = uuid.MustParse("00abedb4-aa42-466c-9c01-fed23315a9b7")

// scoIDFromCanonical returns "<typ>--<UUIDv5(OASIS ns, canonical)>" where
// canonical is the RFC 8785 JSON of the ID contributing properties.
func scoIDFromCanonical(typ string, canonical []byte) string {
	var stack [512]byte
	return formatUUID5(typ, append(append(stack[:0], scoNamespace[:]...), canonical...))
}

// uuid5 returns "<typ>--<UUIDv5(ns, name parts concatenated)>" (RFC 9562
// §5.5) with one allocation for the result; it equals
// typ + "--" + uuid.NewSHA1(ns, []byte(strings.Join(parts, ""))).String().
func uuid5(ns uuid.UUID, typ string, parts ...string) string {
	var stack [512]byte
	b := append(stack[:0], ns[:]...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return formatUUID5(typ, b)
}

// formatUUID5 hashes namespace+name (already concatenated in b) into a
// version 5 UUID and returns "<typ>--<uuid>".
func formatUUID5(typ string, b []byte) string {
	sum := sha1.Sum(b)
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	var sb strings.Builder
	sb.Grow(len(typ) + 2 + 36)
	sb.WriteString(typ)
	sb.WriteString("--")
	for i := range 16 {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteByte(hexdigits[sum[i]>>4])
		sb.WriteByte(hexdigits[sum[i]&0xf])
	}
	return sb.String()
}

// contributing lists the ID contributing properties of each SCO type
// (STIX 2.1 §6, stix-mapping.md §3.2.2).
var contributing = map[string][]string{
	"artifact":             {"hashes", "payload_bin"},
	"autonomous-system":    {"number"},
	"directory":            {"path"},
	"domain-name":          {"value"},
	"email-addr":           {"value"},
	"email-message":        {"from_ref", "subject", "body"},
	"file":                 {"hashes", "name", "extensions", "parent_directory_ref"},
	"ipv4-addr":            {"value"},
	"ipv6-addr":            {"value"},
	"mac-addr":             {"value"},
	"mutex":                {"name"},
	"network-traffic":      {"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"},
	"software":             {"name", "cpe", "swid", "vendor", "version"},
	"url":                  {"value"},
	"user-account":         {"account_type", "user_id", "account_login"},
	"windows-registry-key": {"key", "values"},
	"x509-certificate":     {"hashes", "serial_number"},
}

// hashPreference is the order in which one hash is chosen when "hashes"
// contributes to an SCO id (STIX 2.1 §2.9).
var hashPreference = []string{"MD5", "SHA-1", "SHA-256", "SHA-512"}

// SCOID computes the deterministic id of a STIX cyber-observable given as a
// decoded JSON object (its "type" member names the SCO type), following
// STIX 2.1 §2.9: the ID contributing properties that are present, with only
// one hash, serialised per RFC 8785 and hashed as UUIDv5 in the OASIS
// namespace. It is the general, slower path; the mapper builds the same
// canonical bytes directly and tests check that both agree. Types whose
// contributing properties are all absent (process, or a bare object) get an
// error, because their id would be random and stixmap is deterministic.
func SCOID(o map[string]any) (string, error) {
	typ, _ := o["type"].(string)
	props, ok := contributing[typ]
	if !ok {
		return "", fmt.Errorf("sco id: type %q has no deterministic id", typ)
	}
	sub := make(map[string]any, len(props))
	for _, p := range props {
		v, ok := o[p]
		if !ok {
			continue
		}
		if p == "hashes" {
			h, ok := v.(map[string]any)
			if !ok || len(h) == 0 {
				return "", fmt.Errorf("sco id: %s hashes is not a non-empty object", typ)
			}
			v = chooseHash(h)
		}
		sub[p] = v
	}
	if len(sub) == 0 {
		return "", fmt.Errorf("sco id: %s has none of its id contributing properties %v", typ, props)
	}
	raw, err := json.Marshal(sub)
	if err != nil {
		return "", fmt.Errorf("sco id: encode %s: %w", typ, err)
	}
	canonical, err := jcs.Transform(raw)
	if err != nil {
		return "", fmt.Errorf("sco id: canonicalize %s: %w", typ, err)
	}
	return scoIDFromCanonical(typ, canonical), nil
}

// chooseHash keeps the preferred hash of h (MD5, SHA-1, SHA-256, SHA-512),
// else the alphabetically first one, as python-stix2 does.
func chooseHash(h map[string]any) map[string]any {
	for _, k := range hashPreference {
		if v, ok := h[k]; ok {
			return map[string]any{k: v}
		}
	}
	first := ""
	for k := range h {
		if first == "" || k < first {
			first = k
		}
	}
	return map[string]any{first: h[first]}
}

// ids derives the ids of everything that is not an SCO: UUIDv5 in a
// namespace derived from the ThreatConnect base URL (stix-mapping.md §3.2.4).
type ids struct {
	ns uuid.UUID
}

func newIDs(baseURL string) ids {
	u := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	return ids{ns: uuid.NewSHA1(uuid.NameSpaceURL, []byte(u))}
}

func (x ids) make(typ string, name ...string) string {
	return uuid5(x.ns, typ, name...)
}

// group is the id of the STIX object of type typ made from TC group id.
func (x ids) group(typ string, id int64) string {
	return x.make(typ, typ, "|tc-group|", strconv.FormatInt(id, 10))
}

// owner is the identity id of a TC owner.
func (x ids) owner(id int64) string {
	return x.make("identity", "identity|tc-owner|", strconv.FormatInt(id, 10))
}

// ownerByName is the identity id of a TC owner whose id is not known.
func (x ids) ownerByName(name string) string {
	return x.make("identity", "identity|tc-owner-name|"+name)
}

// relationship is the id of a relationship; it depends only on its ends and type.
func (x ids) relationship(src, typ, tgt string) string {
	return x.make("relationship", "relationship|", src, "|", typ, "|", tgt)
}
