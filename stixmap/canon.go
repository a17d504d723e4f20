package stixmap

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// timeLayout renders created/modified/valid_from with the millisecond
// precision STIX 2.1 requires (stix-mapping.md §3.1).
const timeLayout = "2006-01-02T15:04:05.000Z"

// stamp formats t as a STIX timestamp in UTC.
func stamp(t time.Time) string { return t.UTC().Format(timeLayout) }

// appendStamp appends t as timeLayout does, without the generic formatter.
// Years outside 0–9999 fall back to it.
func appendStamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, dayOfMonth := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	milli := t.Nanosecond() / 1e6
	d := func(b []byte, v, n int) []byte {
		var tmp [4]byte
		for i := n - 1; i >= 0; i-- {
			tmp[i] = byte('0' + v%10)
			v /= 10
		}
		return append(b, tmp[:n]...)
	}
	b = d(b, year, 4)
	b = append(b, '-')
	b = d(b, int(month), 2)
	b = append(b, '-')
	b = d(b, dayOfMonth, 2)
	b = append(b, 'T')
	b = d(b, hour, 2)
	b = append(b, ':')
	b = d(b, minute, 2)
	b = append(b, ':')
	b = d(b, sec, 2)
	b = append(b, '.')
	b = d(b, milli, 3)
	return append(b, 'Z')
}

// appendString appends s as a JSON string escaped the way RFC 8785 §3.2.2.2
// (ECMAScript JSON.stringify) does: only '"', '\' and control characters are
// escaped; '<', '>', '&', '/' and non-ASCII stay literal. s must be valid
// UTF-8 (callers pass values through clean first).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !needsEscape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// needsEscape marks the bytes appendString escapes.
var needsEscape = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// appendKey appends a member name; obj keys are our own ASCII identifiers
// (property names, hash names, extension ids) that never need escaping.
func appendKey(b []byte, k string) []byte {
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

// clean makes s valid UTF-8 (invalid bytes become U+FFFD, as encoding/json
// does when it decodes ThreatConnect's responses) so that every value we emit
// has exactly one canonical form.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendNumber appends f in the ECMAScript shortest form RFC 8785 §3.2.2.3
// requires for the small numbers we emit (ratings, scores): integral values
// without a fraction, others with the shortest round-tripping digits.
func appendNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	// ES6 exponent form: d.ddde+N without leading zeros in the exponent.
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[0]
	exp = strings.TrimLeft(exp[1:], "0")
	b = append(b, mant...)
	b = append(b, 'e', sign)
	return append(b, exp...)
}

// member is one key of an object under construction; its value is the
// already-encoded JSON in obj.buf[start:end].
type member struct {
	key        string
	start, end int
}

// obj builds one JSON object whose members are emitted in RFC 8785 order
// (our keys are ASCII, so byte order equals UTF-16 order). Values are encoded
// as they are added; empty strings, empty lists and nil nested objects are
// skipped because the STIX schemas reject them (stix-mapping.md §3.1).
type obj struct {
	buf     []byte
	members []member
}

// objPool recycles builders: mapping allocates only the final JSON.
var objPool = sync.Pool{New: func() any { return &obj{buf: make([]byte, 0, 1024), members: make([]member, 0, 32)} }}

// newObj returns an empty builder. bytes and finish hand it back to the
// pool, so a builder must not be used after either.
func newObj(capacity int) *obj {
	o := objPool.Get().(*obj)
	o.buf, o.members = o.buf[:0], o.members[:0]
	if cap(o.members) < capacity {
		o.members = make([]member, 0, capacity)
	}
	return o
}

func (o *obj) release() {
	if cap(o.buf) > 64<<10 {
		return // keep huge buffers (hostile values) out of the pool
	}
	objPool.Put(o)
}

// size is the length of the canonical encoding when keys need no escaping.
func (o *obj) size() int {
	n := 2
	for _, m := range o.members {
		n += len(m.key) + 4 + m.end - m.start
	}
	return n
}

func (o *obj) add(key string, start int) {
	o.members = append(o.members, member{key: key, start: start, end: len(o.buf)})
}

// str adds a string member unless s is empty.
func (o *obj) str(key, s string) {
	if s == "" {
		return
	}
	n := len(o.buf)
	o.buf = appendString(o.buf, s)
	o.add(key, n)
}

// int adds an integer member.
func (o *obj) int(key string, v int64) {
	n := len(o.buf)
	o.buf = strconv.AppendInt(o.buf, v, 10)
	o.add(key, n)
}

// num adds a number member.
func (o *obj) num(key string, v float64) {
	n := len(o.buf)
	o.buf = appendNumber(o.buf, v)
	o.add(key, n)
}

// boolean adds a boolean member.
func (o *obj) boolean(key string, v bool) {
	n := len(o.buf)
	o.buf = strconv.AppendBool(o.buf, v)
	o.add(key, n)
}

// time adds a timestamp member unless t is zero.
func (o *obj) time(key string, t time.Time) {
	if t.IsZero() {
		return
	}
	n := len(o.buf)
	o.buf = append(o.buf, '"')
	o.buf = appendStamp(o.buf, t)
	o.buf = append(o.buf, '"')
	o.add(key, n)
}

// strs adds a list of strings unless it is empty.
func (o *obj) strs(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	o.strsAll(key, vs)
}

// strsAll adds a list of strings, even an empty list.
func (o *obj) strsAll(key string, vs []string) {
	n := len(o.buf)
	o.buf = append(o.buf, '[')
	for i, v := range vs {
		if i > 0 {
			o.buf = append(o.buf, ',')
		}
		o.buf = appendString(o.buf, v)
	}
	o.buf = append(o.buf, ']')
	o.add(key, n)
}

// raw adds an already-canonical JSON value unless it is empty.
func (o *obj) raw(key string, v []byte) {
	if len(v) == 0 {
		return
	}
	n := len(o.buf)
	o.buf = append(o.buf, v...)
	o.add(key, n)
}

// list adds a JSON array of already-canonical values unless it is empty.
func (o *obj) list(key string, vs [][]byte) {
	if len(vs) == 0 {
		return
	}
	n := len(o.buf)
	o.buf = append(o.buf, '[')
	for i, v := range vs {
		if i > 0 {
			o.buf = append(o.buf, ',')
		}
		o.buf = append(o.buf, v...)
	}
	o.buf = append(o.buf, ']')
	o.add(key, n)
}

func (o *obj) sort() {
	if slices.IsSortedFunc(o.members, func(a, b member) int { return strings.Compare(a.key, b.key) }) {
		return
	}
	slices.SortFunc(o.members, func(a, b member) int { return strings.Compare(a.key, b.key) })
}

// bytes returns the canonical encoding of the object and releases o.
func (o *obj) bytes() []byte {
	o.sort()
	out := o.appendTo(make([]byte, 0, o.size()), "")
	o.release()
	return out
}

// appendTo appends the canonical object, leaving out the member named skip.
func (o *obj) appendTo(out []byte, skip string) []byte {
	out = append(out, '{')
	first := true
	for _, m := range o.members {
		if m.key == skip {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendKey(out, m.key)
		out = append(out, o.buf[m.start:m.end]...)
	}
	return append(out, '}')
}

// finish returns the canonical JSON of a top-level STIX object and the
// content hash of the same JSON without its "modified" member (what the sync
// compares, stix-mapping.md §0.7; see Object.Hash).
func (o *obj) finish() ([]byte, [16]byte) {
	o.sort()
	out := make([]byte, 0, o.size())
	out = append(out, '{')
	cutFrom, cutTo := -1, -1
	for i, m := range o.members {
		start := len(out)
		if i > 0 {
			out = append(out, ',')
		}
		out = appendKey(out, m.key)
		out = append(out, o.buf[m.start:m.end]...)
		if m.key == "modified" {
			cutFrom, cutTo = start, len(out)
			if i == 0 && len(o.members) > 1 {
				cutTo++ // drop the comma that follows instead
			}
		}
	}
	out = append(out, '}')
	o.release()
	if cutFrom < 0 {
		return out, sha256Of(out)
	}
	h := sha256.New()
	h.Write(out[:cutFrom])
	h.Write(out[cutTo:])
	var sum [sha256.Size]byte
	var short [16]byte
	copy(short[:], h.Sum(sum[:0]))
	return out, short
}

// appendAny appends v, a value decoded by encoding/json with UseNumber, in
// RFC 8785 form. It is used to rewrite stored objects (Revoke).
func appendAny(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, clean(x)), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return strconv.AppendInt(b, i, 10), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", x, err)
		}
		return appendNumber(b, f), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendAny(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, clean(k))
			b = append(b, ':')
			var err error
			if b, err = appendAny(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("unsupported JSON value of type %T", v)
}

// compareUTF16 orders strings by UTF-16 code units (RFC 8785 §3.2.3).
func compareUTF16(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		ua, ub := utf16Key(ra[i]), utf16Key(rb[i])
		if ua == ub && ra[i] != rb[i] {
			// same high surrogate: the low surrogates order like the runes
			ua, ub = int(ra[i]), int(rb[i])
		}
		if ua != ub {
			if ua < ub {
				return -1
			}
			return 1
		}
	}
	return len(ra) - len(rb)
}

// utf16Key maps a rune to a value that sorts like its first UTF-16 code unit
// (supplementary characters become surrogates 0xD800–0xDBFF, below 0xE000).
func utf16Key(r rune) int {
	if r >= 0x10000 {
		return 0xD800 + int((r-0x10000)>>10)
	}
	return int(r)
}
