package stixmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Revoke returns a revoked version of a stored SDO or SRO (stix-mapping.md
// §4.10: deleted in ThreatConnect or out of a collection's scope). The new
// version keeps every property, adds "revoked": true and sets modified to
// the later of at and the stored modified plus one millisecond, so the
// version is always newer (STIX 2.1 §3.6). SCOs and marking definitions
// cannot be revoked, and revocation is permanent, so revoking a revoked
// object is an error too.
func Revoke(o Object, at time.Time) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(o.JSON))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return Object{}, fmt.Errorf("revoke %s: decode stored JSON: %w", o.ID, err)
	}
	if v == nil {
		return Object{}, fmt.Errorf("revoke %s: stored JSON is not an object", o.ID)
	}
	if _, ok := v["modified"]; !ok {
		return Object{}, fmt.Errorf("revoke %s: object has no modified property (SCOs and marking definitions cannot be revoked)", o.ID)
	}
	if r, _ := v["revoked"].(bool); r {
		return Object{}, fmt.Errorf("revoke %s: %w", o.ID, ErrRevoked)
	}
	prev := o.Modified
	if prev.IsZero() {
		s, _ := v["modified"].(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Object{}, fmt.Errorf("revoke %s: stored modified %q: %w", o.ID, s, err)
		}
		prev = t
	}
	mod := ms(at)
	if next := ms(prev).Add(time.Millisecond); mod.Before(next) {
		mod = next
	}
	v["modified"] = stamp(mod)
	v["revoked"] = true
	js, err := appendAny(nil, v)
	if err != nil {
		return Object{}, fmt.Errorf("revoke %s: encode: %w", o.ID, err)
	}
	delete(v, "modified")
	forHash, err := appendAny(nil, v)
	if err != nil {
		return Object{}, fmt.Errorf("revoke %s: encode: %w", o.ID, err)
	}
	r := o
	r.Modified = mod
	r.JSON = js
	r.Hash = sha256Of(forHash)
	if id, _ := v["id"].(string); id != "" {
		r.ID = id
	}
	if t, _ := v["type"].(string); t != "" {
		r.Type = t
	}
	if r.Created.IsZero() {
		if s, _ := v["created"].(string); s != "" {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				r.Created = t
			}
		}
	}
	return r, nil
}

// ErrRevoked reports an attempt to revoke an object that is already revoked.
var ErrRevoked = errors.New("object is already revoked")
