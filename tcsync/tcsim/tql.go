package tcsim

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file is the simulator's TQL subset (threatconnect-v3.md §11, §17.6):
// case-insensitive keywords and operators, AND/OR/parentheses, the
// comparison operators of §11.1, IN/NOT IN lists, LIKE with %, CONTAINS,
// STARTSWITH, ENDSWITH (each with NOT), IS [NOT] NULL, quoted strings with
// backslash escapes in single or double quotes, and the subqueries hasGroup,
// hasIndicator, hasTag and hasSecurityLabel. Anything else is a
// "TQL Parse Error" (400), as the real API answers.

// TQLError is a TQL parse or type error; its message starts "TQL Parse Error".
type TQLError struct{ Msg string }

// Error returns the message as the API words it.
func (e *TQLError) Error() string { return "TQL Parse Error: " + e.Msg }

func tqlErrorf(format string, args ...any) error { return &TQLError{Msg: fmt.Sprintf(format, args...)} }

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp // = == != > >= < <=
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // identifier, unescaped string, number or operator
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '"' || c == '\'':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(src) {
				if src[i] == '\\' && i+1 < len(src) {
					b.WriteByte(src[i+1])
					i += 2
					continue
				}
				if src[i] == c {
					closed = true
					i++
					break
				}
				b.WriteByte(src[i])
				i++
			}
			if !closed {
				return nil, tqlErrorf("unterminated string starting at position %d", start)
			}
			toks = append(toks, token{tString, b.String(), start})
		case c == '=' || c == '!' || c == '<' || c == '>':
			start := i
			i++
			if i < len(src) && src[i] == '=' {
				i++
			}
			op := src[start:i]
			if op == "!" {
				return nil, tqlErrorf("unexpected '!' at position %d", start)
			}
			toks = append(toks, token{tOp, op, start})
		case c == '-' || c == '.' || (c >= '0' && c <= '9'):
			start := i
			i++
			for i < len(src) && (src[i] == '.' || (src[i] >= '0' && src[i] <= '9')) {
				i++
			}
			toks = append(toks, token{tNumber, src[start:i], start})
		case c == '_' || unicode.IsLetter(rune(c)):
			start := i
			for i < len(src) && (src[i] == '_' || src[i] == '.' || unicode.IsLetter(rune(src[i])) || (src[i] >= '0' && src[i] <= '9')) {
				i++
			}
			toks = append(toks, token{tIdent, src[start:i], start})
		default:
			return nil, tqlErrorf("unexpected character %q at position %d", c, i)
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

// valueKind is the type of a TQL keyword (§4.7 OPTIONS types).
type valueKind int

const (
	kInt valueKind = iota
	kFloat
	kString
	kDate
	kBool
)

// scope is the keyword set of one subject kind.
type scope struct {
	name string
	keys map[string]valueKind
	subs map[string]*scope // subquery function → inner scope
}

var (
	indicatorScope = &scope{name: "indicators", keys: map[string]valueKind{
		"id": kInt, "typename": kString, "summary": kString, "ownername": kString, "owner": kInt,
		"dateadded": kDate, "lastmodified": kDate, "rating": kFloat, "confidence": kInt,
		"threatassessscore": kInt, "calscore": kInt, "indicatoractive": kBool, "activelocked": kBool,
		"tag": kString, "securitylabel": kString, "description": kString, "source": kString,
		"associatedgroup": kInt, "value1": kString, "value2": kString, "value3": kString,
	}}
	groupScope = &scope{name: "groups", keys: map[string]valueKind{
		"id": kInt, "typename": kString, "summary": kString, "ownername": kString, "owner": kInt,
		"dateadded": kDate, "lastmodified": kDate, "tag": kString, "securitylabel": kString,
		"status": kString, "eventdate": kDate, "associatedindicator": kInt, "isgroup": kBool,
	}}
	tagScope   = &scope{name: "tags", keys: map[string]valueKind{"id": kInt, "name": kString, "summary": kString, "techniqueid": kString}}
	labelScope = &scope{name: "securityLabels", keys: map[string]valueKind{"id": kInt, "name": kString, "summary": kString}}
	attrScope  = &scope{name: "attributes", keys: map[string]valueKind{"id": kInt, "type": kString, "value": kString,
		"indicatorid": kInt, "groupid": kInt, "dateadded": kDate, "lastmodified": kDate, "default": kBool}}
)

func init() {
	subs := map[string]*scope{"hasgroup": groupScope, "hasindicator": indicatorScope, "hastag": tagScope, "hassecuritylabel": labelScope}
	indicatorScope.subs = subs
	groupScope.subs = subs
	attrScope.subs = map[string]*scope{"hasindicator": indicatorScope, "hasgroup": groupScope, "hassecuritylabel": labelScope}
}

// node is a compiled TQL expression.
type node interface {
	eval(s subject, env *evalEnv) bool
}

type evalEnv struct{ now time.Time }

// subject is what a TQL expression is evaluated against.
type subject interface {
	// values returns the keyword's values: none when null, several for tag and securityLabel.
	values(key string) []any
	// children returns the subjects a subquery function ranges over.
	children(fn string) []subject
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }

func (n andNode) eval(s subject, e *evalEnv) bool { return n.l.eval(s, e) && n.r.eval(s, e) }
func (n orNode) eval(s subject, e *evalEnv) bool  { return n.l.eval(s, e) || n.r.eval(s, e) }

type subNode struct {
	fn    string
	inner node
}

func (n subNode) eval(s subject, e *evalEnv) bool {
	for _, c := range s.children(n.fn) {
		if n.inner.eval(c, e) {
			return true
		}
	}
	return false
}

type cmpNode struct {
	key  string
	kind valueKind
	op   string // eq ne gt ge lt le in like contains startswith endswith null
	neg  bool
	vals []any // typed per kind
}

func (n cmpNode) eval(s subject, e *evalEnv) bool {
	have := s.values(n.key)
	if n.op == "null" {
		return (len(have) == 0) != n.neg
	}
	if n.key == "typename" && n.op == "eq" && !n.neg && strings.EqualFold(n.vals[0].(string), "all") {
		return true // tcex's typeName = "all" (§9.3)
	}
	if len(have) == 0 {
		return false // comparisons with null are false, either way round
	}
	found := false
	for _, h := range have {
		if n.match(h, e) {
			found = true
			break
		}
	}
	return found != n.neg
}

func (n cmpNode) match(h any, e *evalEnv) bool {
	switch n.op {
	case "in":
		for _, v := range n.vals {
			if compare(h, v, e) == 0 {
				return true
			}
		}
		return false
	case "like", "contains", "startswith", "endswith":
		hs, ok := h.(string)
		if !ok {
			return false
		}
		hs, v := strings.ToLower(hs), strings.ToLower(n.vals[0].(string))
		switch n.op {
		case "contains":
			return strings.Contains(hs, v)
		case "startswith":
			return strings.HasPrefix(hs, v)
		case "endswith":
			return strings.HasSuffix(hs, v)
		}
		return like(hs, v)
	}
	c := compare(h, n.vals[0], e)
	switch n.op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

// dateFunc is a quoted date function resolved at evaluation time.
type dateFunc string

func compare(h, v any, e *evalEnv) int {
	switch hv := h.(type) {
	case int64:
		if x, ok := v.(int64); ok {
			return cmp.Compare(hv, x)
		}
		return cmp3(float64(hv), v.(float64))
	case float64:
		if x, ok := v.(int64); ok {
			return cmp3(hv, float64(x))
		}
		return cmp3(hv, v.(float64))
	case string:
		a, b := strings.ToLower(hv), strings.ToLower(v.(string))
		return strings.Compare(a, b)
	case bool:
		if hv == v.(bool) {
			return 0
		}
		return 1
	case time.Time:
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case dateFunc:
			t = e.now.UTC().Truncate(time.Second)
			if x == "today()" {
				t = t.Truncate(24 * time.Hour)
			}
		}
		return hv.Truncate(time.Second).Compare(t)
	}
	return 1
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// like matches SQL LIKE with % wildcards (both sides already lower-cased).
func like(s, pattern string) bool {
	parts := strings.Split(pattern, "%")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) take() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, w)
}

// parseTQL compiles src for the given scope. An empty query matches everything.
func parseTQL(src string, sc *scope) (node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tEOF {
		return nil, nil
	}
	n, err := p.parseOr(sc)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, tqlErrorf("unexpected %q at position %d", t.text, t.pos)
	}
	return n, nil
}

func (p *parser) parseOr(sc *scope) (node, error) {
	l, err := p.parseAnd(sc)
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.take()
		r, err := p.parseAnd(sc)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) parseAnd(sc *scope) (node, error) {
	l, err := p.parseTerm(sc)
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.take()
		r, err := p.parseTerm(sc)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) parseTerm(sc *scope) (node, error) {
	t := p.take()
	switch t.kind {
	case tLParen:
		n, err := p.parseOr(sc)
		if err != nil {
			return nil, err
		}
		if c := p.take(); c.kind != tRParen {
			return nil, tqlErrorf("expected ')' at position %d", c.pos)
		}
		return n, nil
	case tIdent:
	default:
		return nil, tqlErrorf("expected a keyword at position %d, found %q", t.pos, t.text)
	}
	key := strings.ToLower(t.text)
	if inner, ok := sc.subs[key]; ok && p.peek().kind == tLParen {
		p.take()
		n, err := p.parseOr(inner)
		if err != nil {
			return nil, err
		}
		if c := p.take(); c.kind != tRParen {
			return nil, tqlErrorf("expected ')' closing %s at position %d", t.text, c.pos)
		}
		return subNode{fn: key, inner: n}, nil
	}
	kind, ok := sc.keys[key]
	if !ok {
		return nil, tqlErrorf("unknown keyword %q for %s at position %d", t.text, sc.name, t.pos)
	}
	return p.parseComparison(key, kind, t)
}

var symOps = map[string]string{"=": "eq", "==": "eq", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
var wordOps = map[string]string{"eq": "eq", "equals": "eq", "ne": "ne", "gt": "gt", "geq": "ge", "lt": "lt", "leq": "le",
	"in": "in", "like": "like", "contains": "contains", "startswith": "startswith", "endswith": "endswith"}

func (p *parser) parseComparison(key string, kind valueKind, kt token) (node, error) {
	n := cmpNode{key: key, kind: kind}
	t := p.take()
	switch {
	case t.kind == tOp:
		n.op = symOps[t.text]
	case t.kind == tIdent && strings.EqualFold(t.text, "is"):
		if p.isWord("not") {
			p.take()
			n.neg = true
		}
		if !p.isWord("null") {
			return nil, tqlErrorf("expected NULL after IS at position %d", p.peek().pos)
		}
		p.take()
		n.op = "null"
		return n, nil
	case t.kind == tIdent && strings.EqualFold(t.text, "not"):
		o := p.take()
		op := wordOps[strings.ToLower(o.text)]
		if o.kind != tIdent || (op != "in" && op != "like" && op != "contains" && op != "startswith" && op != "endswith") {
			return nil, tqlErrorf("unexpected %q after NOT at position %d", o.text, o.pos)
		}
		n.op, n.neg = op, true
	case t.kind == tIdent && wordOps[strings.ToLower(t.text)] != "":
		n.op = wordOps[strings.ToLower(t.text)]
	default:
		return nil, tqlErrorf("expected an operator after %q at position %d", kt.text, t.pos)
	}
	if n.op == "ne" {
		n.op, n.neg = "eq", true
	}
	var raw []token
	if n.op == "in" {
		if c := p.take(); c.kind != tLParen {
			return nil, tqlErrorf("expected '(' after IN at position %d", c.pos)
		}
		for {
			v := p.take()
			if v.kind != tString && v.kind != tNumber && v.kind != tIdent {
				return nil, tqlErrorf("expected a value at position %d", v.pos)
			}
			raw = append(raw, v)
			c := p.take()
			if c.kind == tRParen {
				break
			}
			if c.kind != tComma {
				return nil, tqlErrorf("expected ',' or ')' at position %d", c.pos)
			}
		}
	} else {
		v := p.take()
		if v.kind != tString && v.kind != tNumber && v.kind != tIdent {
			return nil, tqlErrorf("expected a value after %q at position %d", kt.text, v.pos)
		}
		raw = append(raw, v)
	}
	textual := n.op == "like" || n.op == "contains" || n.op == "startswith" || n.op == "endswith"
	if textual && kind != kString {
		return nil, tqlErrorf("operator %s needs a string keyword, %q is not one", strings.ToUpper(n.op), kt.text)
	}
	for _, v := range raw {
		tv, err := typedValue(kind, v)
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, tv)
	}
	return n, nil
}

func typedValue(kind valueKind, v token) (any, error) {
	switch kind {
	case kInt, kFloat:
		// Integers stay int64: ids exceed 2^53, where float64 loses precision
		// (threatconnect-v3.md §1).
		if kind == kInt && v.kind == tNumber {
			if n, err := strconv.ParseInt(v.text, 10, 64); err == nil {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(v.text, 64)
		if err != nil || v.kind == tIdent {
			return nil, tqlErrorf("%q at position %d is not a number", v.text, v.pos)
		}
		return f, nil
	case kBool:
		switch strings.ToLower(v.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, tqlErrorf("%q at position %d is not true or false", v.text, v.pos)
	case kDate:
		if v.kind != tString {
			return nil, tqlErrorf("date at position %d must be quoted", v.pos)
		}
		switch l := strings.ToLower(strings.TrimSpace(v.text)); l {
		case "now()", "today()":
			return dateFunc(l), nil
		}
		if strings.Contains(v.text, ".") {
			return nil, tqlErrorf("invalid date %q at position %d: fractional seconds are not accepted", v.text, v.pos)
		}
		t, err := parseTQLDate(v.text)
		if err != nil {
			return nil, tqlErrorf("invalid date %q at position %d", v.text, v.pos)
		}
		return t, nil
	}
	if v.kind == tNumber || v.kind == tIdent {
		return v.text, nil
	}
	return v.text, nil
}

func parseTQLDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date")
}

// idLowerBound returns the smallest id a match can have, from top-level AND
// conjuncts "id > n", "id >= n" or "id = n" (the client's keyset paging), or 0.
func idLowerBound(n node) int64 { return lowerBound(n, "id") }

// lowerBound is idLowerBound for any integer keyword.
func lowerBound(n node, key string) int64 {
	switch x := n.(type) {
	case andNode:
		return max(lowerBound(x.l, key), lowerBound(x.r, key))
	case cmpNode:
		if x.key != key || x.neg || len(x.vals) != 1 {
			return 0
		}
		v, ok := x.vals[0].(int64)
		if !ok {
			return 0
		}
		switch x.op {
		case "gt":
			return v + 1
		case "ge", "eq":
			return v
		}
	}
	return 0
}

// mentions reports whether the expression uses the keyword anywhere at the top scope.
func mentions(n node, key string) bool {
	switch x := n.(type) {
	case andNode:
		return mentions(x.l, key) || mentions(x.r, key)
	case orNode:
		return mentions(x.l, key) || mentions(x.r, key)
	case cmpNode:
		return x.key == key
	}
	return false
}
