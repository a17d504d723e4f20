package stixmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// Revoke returns a revoked version of a stored SDO or SRO (stix-mapping.md
// §4.10: deleted in ThreatConnect or out of a collection's scope). The new
// version keeps every property, adds "revoked": true and sets modified to
// the later of at and the stored modified plus one millisecond, so the
// version is always newer (STIX 2.1 §3.6). SCOs and marking definitions
// cannot be revoked, and revocation is permanent, so revoking a revoked
// object is an error too.
func Revoke(o Object, at time.Time) (Object, error) {
	return rewrite(o, at, "revoke", func(v map[string]any) error {
		if _, ok := v["modified"]; !ok {
			return errors.New("object has no modified property (SCOs and marking definitions cannot be revoked)")
		}
		if r, _ := v["revoked"].(bool); r {
			return ErrRevoked
		}
		v["revoked"] = true
		return nil
	})
}

// Bump returns o as a version newer than after, the modified of the latest
// stored version: modified becomes after plus one millisecond, nothing else
// changes (the hash ignores modified). The sync calls it for an item whose
// content changed while its timestamp did not — ThreatConnect does not move
// lastModified for a new association or label — so that the change is a new
// version (taxii21.md D-4). An object already newer is returned as it is.
func Bump(o Object, after time.Time) (Object, error) {
	if o.Modified.IsZero() || o.Modified.After(after) {
		return o, nil
	}
	prev := o
	prev.Modified = after
	return rewrite(prev, time.Time{}, "bump", func(map[string]any) error { return nil })
}

// rewrite decodes a stored object, lets edit change it, and returns the new
// canonical version: a versioned object gets modified = the later of at
// and the stored modified plus one millisecond (STIX 2.1 §3.6); an
// unversioned one (an SCO) is the same object with new content.
func rewrite(o Object, at time.Time, what string, edit func(v map[string]any) error) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(o.JSON))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return Object{}, fmt.Errorf("%s %s: decode stored JSON: %w", what, o.ID, err)
	}
	if v == nil {
		return Object{}, fmt.Errorf("%s %s: stored JSON is not an object", what, o.ID)
	}
	if err := edit(v); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", what, o.ID, err)
	}
	r := o
	if _, versioned := v["modified"]; versioned {
		prev := o.Modified
		if prev.IsZero() {
			s, _ := v["modified"].(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Object{}, fmt.Errorf("%s %s: stored modified %q: %w", what, o.ID, s, err)
			}
			prev = t
		}
		mod := ms(at)
		if next := ms(prev).Add(time.Millisecond); mod.Before(next) {
			mod = next
		}
		v["modified"] = stamp(mod)
		r.Modified = mod
	}
	js, err := appendAny(nil, v)
	if err != nil {
		return Object{}, fmt.Errorf("%s %s: encode: %w", what, o.ID, err)
	}
	delete(v, "modified")
	forHash, err := appendAny(nil, v)
	if err != nil {
		return Object{}, fmt.Errorf("%s %s: encode: %w", what, o.ID, err)
	}
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

// Remark returns o marked at TLP level l: its TLP marking ref is replaced by
// the one of l (statement markings stay), as a new version when o is
// versioned. The sync moves an observable to the least restrictive item
// that still discloses it (DESIGN.md §10).
func (m *Mapper) Remark(o Object, l tlp.Level, at time.Time) (Object, error) {
	level, ref := m.levelRef(l)
	r, err := rewrite(o, at, "remark", func(v map[string]any) error {
		var refs []string
		list, _ := v["object_marking_refs"].([]any)
		for _, x := range list {
			s, _ := x.(string)
			if s != "" && !m.isTLPMarking(s) {
				refs = append(refs, s)
			}
		}
		refs = append(refs, ref...)
		slices.Sort(refs)
		if len(refs) == 0 {
			delete(v, "object_marking_refs")
			return nil
		}
		anys := make([]any, len(refs))
		for i, s := range refs {
			anys[i] = s
		}
		v["object_marking_refs"] = anys
		return nil
	})
	r.TLP = level
	return r, err
}

// Emitted is the level whose marking the mapper emits for l in its TLP
// mode (v1-only emits RED for AMBER+STRICT).
func (m *Mapper) Emitted(l tlp.Level) tlp.Level {
	level, _ := m.levelRef(l)
	return level
}

// isTLPMarking tells the TLP marking definitions of any mode.
func (m *Mapper) isTLPMarking(id string) bool {
	_, ok := tlp.FromMarking(id)
	return ok
}

// WithObjectRefs returns container o listing exactly refs (sorted) in
// object_refs, as a new version. The sync lists only the members a
// collection publishes at or below the container's marking (DESIGN.md §10).
// With no member left the container lists its creator, as the mapping does
// for an empty one (stix-mapping.md §4.4 rule 4).
func WithObjectRefs(o Object, refs []string, at time.Time) (Object, error) {
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	return rewrite(o, at, "set object_refs of", func(v map[string]any) error {
		if len(sorted) == 0 {
			creator, _ := v["created_by_ref"].(string)
			if creator == "" {
				return errors.New("a container needs at least one reference")
			}
			sorted = []string{creator}
		}
		anys := make([]any, len(sorted))
		for i, s := range sorted {
			anys[i] = s
		}
		v["object_refs"] = anys
		return nil
	})
}

// IsRevoked reports whether canonical JSON is a revoked version. In
// canonical JSON a quote inside a string is escaped, so the pattern only
// matches the property itself.
func IsRevoked(js []byte) bool { return bytes.Contains(js, []byte(`"revoked":true`)) }

// CreatedBy returns the created_by_ref of canonical JSON, or "".
func CreatedBy(js []byte) string { return topString(js, "created_by_ref") }

// TCID returns the x_threatconnect_id of canonical JSON, or 0.
func TCID(js []byte) int64 {
	v, err := strconv.ParseInt(topString(js, "x_threatconnect_id"), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// TCType returns the x_threatconnect_type of canonical JSON (the indicator
// or group type of the item it was mapped from), or "".
func TCType(js []byte) string { return topString(js, "x_threatconnect_type") }

// topString returns the value of a string property of canonical JSON that
// no nested object of ours uses, unescaped only as far as the id-like and
// type-name values it is used for need (none contain escapes).
func topString(js []byte, key string) string {
	k := `"` + key + `":"`
	i := bytes.Index(js, []byte(k))
	if i < 0 {
		return ""
	}
	rest := js[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// IsObservable tells the STIX cyber-observable types the mapper emits.
func IsObservable(typ string) bool {
	_, ok := contributing[typ]
	return ok
}

// IsContainer tells the types whose object_refs list their content.
func IsContainer(typ string) bool {
	switch typ {
	case "report", "grouping", "note", "opinion", "observed-data":
		return true
	}
	return false
}

// Refs returns the ids an object's canonical JSON references through
// *_ref and *_refs properties at any depth, except created_by_ref and the
// marking references, which every collection serves before the objects that
// use them. Canonical JSON escapes every quote inside a string, so the
// patterns below only match at a property name.
func Refs(js []byte) []string {
	var out []string
	for i := 0; i < len(js); {
		j := bytes.Index(js[i:], []byte(`_ref`))
		if j < 0 {
			break
		}
		j += i
		k := j + len(`_ref`)
		list := false
		if k < len(js) && js[k] == 's' {
			list = true
			k++
		}
		if k+2 > len(js) || js[k] != '"' || js[k+1] != ':' {
			i = j + 1
			continue
		}
		q := bytes.LastIndexByte(js[:j], '"')
		name := string(js[q+1 : j])
		i = k + 2
		if name == "created_by" || name == "object_marking" || name == "marking" {
			continue
		}
		for i < len(js) {
			if js[i] == '"' {
				e := bytes.IndexByte(js[i+1:], '"')
				if e < 0 {
					return out
				}
				out = append(out, string(js[i+1:i+1+e]))
				i += e + 2
			} else {
				i++
			}
			if !list || (i < len(js) && js[i] == ']') {
				break
			}
		}
	}
	return out
}

// ErrRevoked reports an attempt to revoke an object that is already revoked.
var ErrRevoked = errors.New("object is already revoked")
