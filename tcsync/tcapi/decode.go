package tcapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// timeKeys are the JSON keys that carry timestamps in the wire types.
var timeKeys = map[string]bool{
	"dateAdded": true, "lastModified": true, "lastObserved": true, "lastFalsePositive": true, "resolutionDate": true,
	"firstSeen": true, "lastSeen": true, "externalDateAdded": true, "externalLastModified": true,
	"externalDateExpires": true, "documentDateAdded": true, "publishDate": true, "emailDate": true,
	"eventDate": true, "signatureDateAdded": true, "dueDate": true, "escalationDate": true,
	"reminderDate": true, "lastUsed": true, "date": true,
}

// Unmarshal decodes ThreatConnect JSON into v, reading timestamps leniently.
//
// The wire types use time.Time, which encoding/json reads as strict RFC 3339,
// and ThreatConnect mostly sends exactly that. So the fast path is a plain
// json.Unmarshal; only when it fails is the document re-read generically
// (numbers kept exact), every timestamp under a known time key rewritten
// with ParseTime (+0000 offsets, missing zone, trailing spaces, bare dates;
// "" dropped), and decoded again. Other strings are never touched. The
// Client decodes every response this way; use Unmarshal, not json.Unmarshal,
// for recorded responses too.
func Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	fixed, changed, nerr := normalizeTimes(data)
	if nerr != nil {
		return nerr
	}
	if !changed {
		return err
	}
	return json.Unmarshal(fixed, v)
}

// normalizeTimes rewrites the timestamps of a JSON document to RFC 3339.
// It reports whether anything changed; a timestamp that cannot be read is an
// error naming its key and value.
func normalizeTimes(data []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, nil // not JSON at all: let the original error speak
	}
	changed := false
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && timeKeys[k] {
					if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
						continue
					}
					if len(bytes.TrimSpace([]byte(s))) == 0 {
						delete(x, k)
						changed = true
						continue
					}
					t, err := ParseTime(s)
					if err != nil {
						return fmt.Errorf("decode %s: %w", k, err)
					}
					x[k] = t.Format(time.RFC3339Nano)
					changed = true
					continue
				}
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return nil, false, err
	}
	if !changed {
		return nil, false, nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false, fmt.Errorf("re-encode normalized times: %w", err)
	}
	return out, true, nil
}
