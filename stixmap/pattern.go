package stixmap

import (
	"fmt"
	"strconv"
	"strings"
)

// escapePattern escapes s for a STIX pattern string literal: backslash first,
// then apostrophe; nothing else is escaped (stix-mapping.md §3.6).
func escapePattern(s string) string {
	if !strings.ContainsAny(s, `\'`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// comparison is one "<path> = <value>" term of a pattern we build.
type comparison struct {
	path  string // object path, e.g. "file:hashes.'SHA-256'"
	value string // the raw (unescaped) string value, or the integer text
	num   bool   // value is an integer literal
	op    string // comparison operator; "" means "="
}

// buildPattern joins comparisons with op ("AND" or "OR") inside one
// observation expression.
func buildPattern(op string, cs ...comparison) string {
	var b strings.Builder
	n := 2
	for _, c := range cs {
		n += len(c.path) + len(c.value) + 12
	}
	b.Grow(n)
	b.WriteByte('[')
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(' ')
			b.WriteString(op)
			b.WriteByte(' ')
		}
		b.WriteString(c.path)
		if c.op == "" {
			b.WriteString(" = ")
		} else {
			b.WriteByte(' ')
			b.WriteString(c.op)
			b.WriteByte(' ')
		}
		if c.num {
			b.WriteString(c.value)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(escapePattern(c.value))
		b.WriteByte('\'')
	}
	b.WriteByte(']')
	return b.String()
}

// ParsedComparison is one comparison found by CheckPattern.
type ParsedComparison struct {
	Path     string // the object path as written, e.g. "windows-registry-key:values[*].name"
	Operator string // "=", "!=" or "ISSUBSET"
	Value    string // the literal with escapes resolved; integers as their digits
	Integer  bool
}

// CheckPattern parses the subset of the STIX 2.1 patterning grammar
// (STIX 2.1 §9, STIXPattern.g4) that stixmap produces: one observation
// expression "[ … ]" holding comparisons "<object path> <op> <literal>"
// (op is =, != or ISSUBSET)
// joined by AND or OR, where the literal is a quoted string (only \\ and \'
// escapes are legal) or an integer. It returns the comparisons with their
// literal values unescaped, so callers can check that the pattern compares
// exactly the value they put in. Anything outside that subset is an error.
func CheckPattern(p string) ([]ParsedComparison, error) {
	s := &scanner{src: p}
	s.space()
	if !s.eat('[') {
		return nil, s.errorf("want '['")
	}
	var out []ParsedComparison
	for {
		s.space()
		c, err := s.comparison()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		s.space()
		if s.eat(']') {
			break
		}
		if !s.keyword("AND") && !s.keyword("OR") {
			return nil, s.errorf("want AND, OR or ']'")
		}
	}
	s.space()
	if s.pos != len(s.src) {
		return nil, s.errorf("trailing text after ']'")
	}
	return out, nil
}

type scanner struct {
	src string
	pos int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("pattern offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) space() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t' || s.src[s.pos] == '\n' || s.src[s.pos] == '\r') {
		s.pos++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.pos < len(s.src) && s.src[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) keyword(k string) bool {
	if strings.HasPrefix(s.src[s.pos:], k) {
		end := s.pos + len(k)
		if end < len(s.src) && s.src[end] != ' ' {
			return false
		}
		s.pos = end
		return true
	}
	return false
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' }

// ident reads an identifier; typeName allows '-' as SCO type names do.
func (s *scanner) ident(typeName bool) (string, error) {
	start := s.pos
	if s.pos >= len(s.src) || !isIdentStart(s.src[s.pos]) {
		return "", s.errorf("want identifier")
	}
	for s.pos < len(s.src) && (isIdent(s.src[s.pos]) || typeName && s.src[s.pos] == '-') {
		s.pos++
	}
	return s.src[start:s.pos], nil
}

// quotedKey reads a path component in apostrophes (e.g. 'SHA-256'), which
// has no escapes.
func (s *scanner) quotedKey() error {
	if !s.eat('\'') {
		return s.errorf("want quoted key")
	}
	start := s.pos
	for s.pos < len(s.src) && s.src[s.pos] != '\'' {
		if s.src[s.pos] == '\\' {
			return s.errorf("escape in quoted key")
		}
		s.pos++
	}
	if s.pos == start || !s.eat('\'') {
		return s.errorf("unterminated quoted key")
	}
	return nil
}

func (s *scanner) path() (string, error) {
	start := s.pos
	if _, err := s.ident(true); err != nil {
		return "", err
	}
	if !s.eat(':') {
		return "", s.errorf("want ':' after object type")
	}
	if s.pos < len(s.src) && s.src[s.pos] == '\'' {
		if err := s.quotedKey(); err != nil {
			return "", err
		}
	} else if _, err := s.ident(false); err != nil {
		return "", err
	}
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case '.':
			s.pos++
			if s.pos < len(s.src) && s.src[s.pos] == '\'' {
				if err := s.quotedKey(); err != nil {
					return "", err
				}
			} else if _, err := s.ident(false); err != nil {
				return "", err
			}
		case '[':
			s.pos++
			if !s.eat('*') {
				d := s.pos
				for s.pos < len(s.src) && s.src[s.pos] >= '0' && s.src[s.pos] <= '9' {
					s.pos++
				}
				if d == s.pos {
					return "", s.errorf("want list index or '*'")
				}
			}
			if !s.eat(']') {
				return "", s.errorf("want ']' after list index")
			}
		default:
			return s.src[start:s.pos], nil
		}
	}
	return s.src[start:s.pos], nil
}

func (s *scanner) comparison() (ParsedComparison, error) {
	var c ParsedComparison
	p, err := s.path()
	if err != nil {
		return c, err
	}
	c.Path = p
	s.space()
	switch {
	case strings.HasPrefix(s.src[s.pos:], "!="):
		c.Operator, s.pos = "!=", s.pos+2
	case s.eat('='):
		c.Operator = "="
	case s.keyword("ISSUBSET"):
		c.Operator = "ISSUBSET"
	default:
		return c, s.errorf("want '=', '!=' or ISSUBSET")
	}
	s.space()
	if s.pos >= len(s.src) {
		return c, s.errorf("want literal")
	}
	if s.src[s.pos] == '\'' {
		s.pos++
		var b strings.Builder
		for {
			if s.pos >= len(s.src) {
				return c, s.errorf("unterminated string literal")
			}
			ch := s.src[s.pos]
			if ch == '\'' {
				s.pos++
				break
			}
			if ch == '\\' {
				if s.pos+1 >= len(s.src) || (s.src[s.pos+1] != '\\' && s.src[s.pos+1] != '\'') {
					return c, s.errorf("illegal escape in string literal")
				}
				b.WriteByte(s.src[s.pos+1])
				s.pos += 2
				continue
			}
			b.WriteByte(ch)
			s.pos++
		}
		c.Value = b.String()
		return c, nil
	}
	start := s.pos
	if s.src[s.pos] == '-' {
		s.pos++
	}
	for s.pos < len(s.src) && s.src[s.pos] >= '0' && s.src[s.pos] <= '9' {
		s.pos++
	}
	if _, err := strconv.ParseInt(s.src[start:s.pos], 10, 64); err != nil {
		s.pos = start
		return c, s.errorf("want string or integer literal")
	}
	c.Value, c.Integer = s.src[start:s.pos], true
	return c, nil
}
