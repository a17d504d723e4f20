package storage

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// How objects.stix_id holds a STIX id (migration 0004).
//
// The id is stored twice (the table and its unique index) and a TC
// indicator brings four objects, so the text "indicator--<36 hex digits and
// dashes>" cost about 370 bytes per indicator. A canonical id (a type, "--",
// a lowercase 8-4-4-4-12 UUID) is kept instead as "~", the UUID's 16 bytes
// in unpadded base64url (22 characters), then its type: one capital letter
// for a type of keyTypes, else the type itself (types are lowercase). Any
// other string is kept as "~~" followed by itself, so the mapping is
// injective whatever the input (base64url never yields "~"). The key is
// text, so lookups by a list of ids stay one json_each statement.
//
// keyTypes is part of the on-disk format: append only, at most 26.
var keyTypes = [...]string{
	"indicator", "relationship", "ipv4-addr", "ipv6-addr", "domain-name", "url", "file",
	"email-addr", "identity", "marking-definition", "report", "malware", "threat-actor",
	"campaign", "attack-pattern", "vulnerability", "intrusion-set", "tool", "note",
	"course-of-action", "grouping", "incident", "autonomous-system", "sighting", "opinion",
	"observed-data",
}

var keyTypeCode = func() map[string]byte {
	m := make(map[string]byte, len(keyTypes))
	for i, t := range keyTypes {
		m[t] = 'A' + byte(i)
	}
	return m
}()

// objKey is the objects.stix_id of a STIX id.
func objKey(id string) string {
	i := strings.Index(id, "--")
	if i <= 0 || len(id)-i-2 != 36 || !isUUID(id[i+2:]) || !stixType(id[:i]) {
		return "~~" + id
	}
	raw := uuidBytes(id[i+2:])
	var b strings.Builder
	b.Grow(24 + i)
	b.WriteByte('~')
	var enc [22]byte
	base64.RawURLEncoding.Encode(enc[:], raw[:])
	b.Write(enc[:])
	if c, ok := keyTypeCode[id[:i]]; ok {
		b.WriteByte(c)
	} else {
		b.WriteString(id[:i])
	}
	return b.String()
}

// stixType reports whether t is made of what STIX type names are made of
// (a-z, 0-9, -), so that it never reads as a one-letter type code.
func stixType(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// stixID is the STIX id of an objects.stix_id, the inverse of objKey.
func stixID(key string) string {
	if strings.HasPrefix(key, "~~") || len(key) < 24 || key[0] != '~' {
		return strings.TrimPrefix(key, "~~")
	}
	var raw [16]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(key[1:23])); err != nil || n != 16 {
		return key // not written by objKey; shown as it is rather than lost
	}
	typ := key[23:]
	if len(typ) == 1 && typ[0] >= 'A' && int(typ[0]-'A') < len(keyTypes) {
		typ = keyTypes[typ[0]-'A']
	}
	b := make([]byte, 0, len(typ)+38)
	b = append(b, typ...)
	b = append(b, '-', '-')
	return string(formatUUID(b, raw[:]))
}

// objKeys maps ids to their keys.
func objKeys(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = objKey(id)
	}
	return out
}

// rekeyObjects rewrites the stix_id of every objects row written before
// migration 0004 (plain STIX ids) as its key, a chunk of rows at a time.
func rekeyObjects(tx *Tx) error {
	const chunk = 20000
	type row struct {
		oid int64
		id  string
	}
	var last int64
	for {
		rows, err := tx.query("SELECT oid, stix_id FROM objects WHERE oid > ? ORDER BY oid LIMIT ?", last, chunk)
		if err != nil {
			return fmt.Errorf("rekey objects: %w", err)
		}
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.oid, &r.id); err != nil {
				rows.Close()
				return fmt.Errorf("rekey objects: %w", err)
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("rekey objects: %w", err)
		}
		if len(todo) == 0 {
			return nil
		}
		for _, r := range todo {
			if strings.HasPrefix(r.id, "~") { // a key already (STIX types start with a letter)
				continue
			}
			if err := tx.exec("UPDATE objects SET stix_id = ? WHERE oid = ?", objKey(r.id), r.oid); err != nil {
				return fmt.Errorf("rekey object %s: %w", r.id, err)
			}
		}
		last = todo[len(todo)-1].oid
	}
}
