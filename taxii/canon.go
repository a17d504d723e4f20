package taxii

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// canonicalize checks one posted JSON object and writes its RFC 8785 (JCS)
// canonical form — what Tx.Put stores and hashes — in one pass over raw
// (issue 14: the work and memory of a POST stay proportional to its bytes,
// with no per-token allocation, so junk cannot multiply its size; issue 9:
// no name is ever matched case-insensitively).
//
// On the way it refuses, at every depth, an object that repeats a property
// name in any letter case (Unicode simple folding, as bytes.EqualFold and
// encoding/json's name matching use), nesting deeper than maxNesting, and
// what RFC 8785 refuses (numbers out of the IEEE 754 double range, lone
// surrogates). It returns the top-level properties with their exact names
// and raw values. The output equals github.com/gowebpki/jcs's Transform for
// every object both accept (FuzzDecodeEnvelope checks it); numbers are
// formatted by that package.
func canonicalize(raw []byte) ([]byte, []member, error) {
	c := canonizer{in: raw, out: make([]byte, 0, len(raw))}
	c.skipSpace()
	if c.pos >= len(c.in) || c.in[c.pos] != '{' {
		return nil, nil, errors.New("not a JSON object")
	}
	if err := c.object(1); err != nil {
		return nil, nil, err
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return nil, nil, errors.New("unreadable STIX object: data after the object")
	}
	return c.out, c.top, nil
}

// member is one top-level property of a posted object: its exact name and
// raw value.
type member struct {
	name  string
	value []byte
}

// canonizer holds the state of canonicalize. The spans and keys stacks are
// shared by nested objects: an object pushes its members above its
// parent's and pops them when it is written out.
type canonizer struct {
	in      []byte
	pos     int
	out     []byte
	spans   []span // members of the objects being read, innermost last
	keys    []byte // their unescaped names
	scratch []byte // an object's members while they are reordered
	top     []member
}

// span is one member of an object being read: its name (keys[k0:k1]) and
// its canonical text "name":value (out[o0:o1]).
type span struct {
	k0, k1, o0, o1 int
}

var errSyntax = errors.New("unreadable STIX object: invalid JSON")

func (c *canonizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonizer) value(depth int) error {
	c.skipSpace()
	if c.pos >= len(c.in) {
		return errSyntax
	}
	switch b := c.in[c.pos]; {
	case b == '{':
		return c.object(depth + 1)
	case b == '[':
		return c.array(depth + 1)
	case b == '"':
		k := len(c.keys)
		var err error
		if c.keys, err = c.str(c.keys); err != nil {
			return err
		}
		c.out = appendJCSString(c.out, c.keys[k:])
		c.keys = c.keys[:k]
		return nil
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	case b == '-' || ('0' <= b && b <= '9'):
		return c.number()
	}
	return errSyntax
}

func (c *canonizer) literal(lit string) error {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
		return errSyntax
	}
	c.pos += len(lit)
	c.out = append(c.out, lit...)
	return nil
}

func (c *canonizer) array(depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("nested more than %d levels deep", maxNesting)
	}
	c.pos++ // [
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		if err := c.value(depth); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			return nil
		default:
			return errSyntax
		}
	}
}

// object reads an object, writes its members in the JCS order (names
// compared as UTF-16 code units) and refuses names repeated in any case.
func (c *canonizer) object(depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("nested more than %d levels deep", maxNesting)
	}
	c.pos++ // {
	start := len(c.out)
	c.out = append(c.out, '{')
	base, kbase := len(c.spans), len(c.keys)
	defer func() { c.spans, c.keys = c.spans[:base], c.keys[:kbase] }()
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return errSyntax
		}
		k0 := len(c.keys)
		var err error
		if c.keys, err = c.str(c.keys); err != nil {
			return err
		}
		k1 := len(c.keys)
		o0 := len(c.out)
		c.out = appendJCSString(c.out, c.keys[k0:k1])
		c.out = append(c.out, ':')
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return errSyntax
		}
		c.pos++
		c.skipSpace()
		v0 := c.pos
		if err := c.value(depth); err != nil {
			return fmt.Errorf("property %s: %w", quoteShort(string(c.keys[k0:k1])), err)
		}
		if depth == 1 {
			c.top = append(c.top, member{name: string(c.keys[k0:k1]), value: c.in[v0:c.pos]})
		}
		c.spans = append(c.spans, span{k0, k1, o0, len(c.out)})
		c.skipSpace()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		if c.in[c.pos] != ',' {
			return errSyntax
		}
		c.pos++
		c.out = append(c.out, ',')
	}
	ms := c.spans[base:]
	if err := c.checkNames(ms); err != nil {
		return err
	}
	sorted := slices.IsSortedFunc(ms, func(a, b span) int { return compareUTF16(c.keys[a.k0:a.k1], c.keys[b.k0:b.k1]) })
	if !sorted {
		slices.SortFunc(ms, func(a, b span) int { return compareUTF16(c.keys[a.k0:a.k1], c.keys[b.k0:b.k1]) })
		c.scratch = append(c.scratch[:0], c.out[start+1:]...)
		c.out = c.out[:start+1]
		off := start + 1
		for i, m := range ms {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			c.out = append(c.out, c.scratch[m.o0-off:m.o1-off]...)
		}
	}
	c.out = append(c.out, '}')
	return nil
}

// checkNames refuses an object whose names repeat in any letter case.
func (c *canonizer) checkNames(ms []span) error {
	dup := func(a, b span) error {
		na, nb := string(c.keys[a.k0:a.k1]), string(c.keys[b.k0:b.k1])
		return dupError(nb, na)
	}
	if len(ms) <= 16 {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				if bytes.EqualFold(c.keys[ms[i].k0:ms[i].k1], c.keys[ms[j].k0:ms[j].k1]) {
					return dup(ms[i], ms[j])
				}
			}
		}
		return nil
	}
	seen := make(map[string]int, len(ms))
	for i, m := range ms {
		f := foldName(string(c.keys[m.k0:m.k1]))
		if j, ok := seen[f]; ok {
			return dup(ms[j], m)
		}
		seen[f] = i
	}
	return nil
}

// str reads a JSON string at c.pos and appends its unescaped UTF-8 to dst.
// Lone or mismatched surrogate escapes are refused (RFC 8785 §3.2.2.2).
func (c *canonizer) str(dst []byte) ([]byte, error) {
	c.pos++ // "
	for {
		if c.pos >= len(c.in) {
			return dst, errSyntax
		}
		b := c.in[c.pos]
		switch {
		case b == '"':
			c.pos++
			return dst, nil
		case b < 0x20:
			return dst, errSyntax
		case b == '\\':
			if c.pos+1 >= len(c.in) {
				return dst, errSyntax
			}
			e := c.in[c.pos+1]
			c.pos += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := c.hex4()
				if !ok {
					return dst, errSyntax
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 || c.pos+1 >= len(c.in) || c.in[c.pos] != '\\' || c.in[c.pos+1] != 'u' {
						return dst, errors.New("unreadable STIX object: a string holds a lone surrogate")
					}
					c.pos += 2
					lo, ok := c.hex4()
					if !ok {
						return dst, errSyntax
					}
					if lo < 0xDC00 || lo > 0xDFFF {
						return dst, errors.New("unreadable STIX object: a string holds a lone surrogate")
					}
					r = utf16.DecodeRune(r, lo)
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return dst, errSyntax
			}
		case b < utf8.RuneSelf:
			dst = append(dst, b)
			c.pos++
		default:
			r, n := utf8.DecodeRune(c.in[c.pos:])
			if r == utf8.RuneError && n <= 1 {
				return dst, errors.New("object is not valid UTF-8")
			}
			dst = append(dst, c.in[c.pos:c.pos+n]...)
			c.pos += n
		}
	}
}

func (c *canonizer) hex4() (rune, bool) {
	if c.pos+4 > len(c.in) {
		return 0, false
	}
	var r rune
	for _, h := range c.in[c.pos : c.pos+4] {
		switch {
		case '0' <= h && h <= '9':
			r = r<<4 | rune(h-'0')
		case 'a' <= h && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case 'A' <= h && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, false
		}
	}
	c.pos += 4
	return r, true
}

// number reads a JSON number (RFC 8259 §6) and writes its ES6 form
// (RFC 8785 §3.2.2.3). Integers of up to 15 digits are their own form.
func (c *canonizer) number() error {
	s := c.pos
	if c.pos < len(c.in) && c.in[c.pos] == '-' {
		c.pos++
	}
	digits := func() int {
		n := 0
		for c.pos < len(c.in) && '0' <= c.in[c.pos] && c.in[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	intStart := c.pos
	n := digits()
	if n == 0 || (n > 1 && c.in[intStart] == '0') {
		return errSyntax
	}
	plain := true
	if c.pos < len(c.in) && c.in[c.pos] == '.' {
		c.pos++
		if digits() == 0 {
			return errSyntax
		}
		plain = false
	}
	if c.pos < len(c.in) && (c.in[c.pos] == 'e' || c.in[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.in) && (c.in[c.pos] == '+' || c.in[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return errSyntax
		}
		plain = false
	}
	text := c.in[s:c.pos]
	switch {
	case plain && n <= 15 && !(n == 1 && c.in[intStart] == '0'):
		c.out = append(c.out, text...)
		return nil
	case plain && n == 1 && c.in[intStart] == '0':
		c.out = append(c.out, '0') // -0 is 0
		return nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return fmt.Errorf("number %s is out of range", quoteShort(string(text)))
	}
	es6, err := jcs.NumberToJSON(f)
	if err != nil {
		return fmt.Errorf("number %s is out of range", quoteShort(string(text)))
	}
	c.out = append(c.out, es6...)
	return nil
}

// appendJCSString writes s (UTF-8) as a JSON string the way RFC 8785
// §3.2.2.2 does: only '"', '\' and the control characters are escaped, the
// usual ones by their short escapes, the others as \u00xx.
func appendJCSString(out, s []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, b := range s {
		switch {
		case b == '"' || b == '\\':
			out = append(out, '\\', b)
		case b >= 0x20:
			out = append(out, b)
		case b == '\b':
			out = append(out, '\\', 'b')
		case b == '\f':
			out = append(out, '\\', 'f')
		case b == '\n':
			out = append(out, '\\', 'n')
		case b == '\r':
			out = append(out, '\\', 'r')
		case b == '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
		}
	}
	return append(out, '"')
}

// compareUTF16 orders two UTF-8 names by their UTF-16 code units (RFC 8785
// §3.2.3). It differs from byte order only where a character above U+FFFF
// meets one in U+E000…U+FFFF.
func compareUTF16(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb {
			return utf16Key(ra) - utf16Key(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Key is the first UTF-16 code unit of r, scaled so that a supplementary
// character (high surrogate first) sorts below U+E000 but above U+D7FF, with
// its low surrogate breaking ties.
func utf16Key(r rune) int {
	if r < 0x10000 {
		return int(r) << 10
	}
	hi, lo := utf16.EncodeRune(r)
	return int(hi)<<10 | int(lo-0xDC00)
}
