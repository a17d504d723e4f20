package taxii

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// maxEnvelopeProperties bounds the properties of a POSTed envelope, which
// defines three (more, next, objects); the set of names seen is kept to
// find duplicates, so it must not grow with the body.
const maxEnvelopeProperties = 64

// maxNesting bounds how deep a posted object nests objects and arrays.
const maxNesting = 64

// decodeEnvelope reads a POSTed TAXII envelope (taxii21.md §3.7) from r as
// a stream of JSON tokens and calls each with every entry of its objects
// list, in order, as raw JSON that is valid only during the call. Memory is
// what one entry takes, whatever the length of the body: entries are
// decoded one at a time into a reused buffer (issue 14).
//
// The count is checked as each entry is reached: an envelope with more than
// maxObjects entries is refused (422) at entry maxObjects+1, before that
// entry is decoded and before anything is stored (the caller stores only
// after decodeEnvelope returns nil). A 413 is not used for it, because the
// body may be smaller than max_content_length (S-8.8).
//
// Refusals of the whole envelope: a body that is not JSON or stops early is
// a 400; JSON that is not an envelope — not an object, without objects,
// objects not a list or empty, a property repeated in any letter case, more
// than maxEnvelopeProperties properties, anything after it — is a 422; a
// body cut off by the request's size limit is a 413. An entry that is not
// a valid STIX object is each's business, not the envelope's.
func decodeEnvelope(r io.Reader, maxObjects int, each func(i int, raw []byte) error) (int, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	bad := func(err error) error {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return fail(http.StatusRequestEntityTooLarge, "request body is larger than max_content_length (%d octets)", mbe.Limit)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fail(http.StatusBadRequest, "request body is not valid JSON: it ends too early")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fail(http.StatusBadRequest, "request body is not valid JSON at offset %d: %v", se.Offset, shortErr(err))
		}
		return fail(http.StatusBadRequest, "request body is not valid JSON: %v", shortErr(err))
	}
	tok, err := dec.Token()
	if err != nil {
		return 0, bad(err)
	}
	if tok != json.Delim('{') {
		return 0, fail(http.StatusUnprocessableEntity, "request body is not a TAXII envelope (a JSON object)")
	}
	var (
		seen     = map[string]string{} // folded name -> name
		n        int
		sawObjs  bool
		raw      json.RawMessage // reused for every entry and skipped value
		nProps   int
		maxNoted = fmt.Sprintf("an envelope may hold at most %d objects (max_objects_per_post, see the API root)", maxObjects)
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n, bad(err)
		}
		name, _ := tok.(string)
		if nProps++; nProps > maxEnvelopeProperties {
			return n, fail(http.StatusUnprocessableEntity, "envelope has more than %d properties", maxEnvelopeProperties)
		}
		f := foldName(name)
		if prev, ok := seen[f]; ok {
			return n, fail(http.StatusUnprocessableEntity, "envelope property %s appears twice (as %s)", quoteShort(name), quoteShort(prev))
		}
		seen[f] = name
		if name != "objects" {
			if err := dec.Decode(&raw); err != nil {
				return n, bad(err)
			}
			continue
		}
		sawObjs = true
		if tok, err = dec.Token(); err != nil {
			return n, bad(err)
		}
		if tok != json.Delim('[') {
			return n, fail(http.StatusUnprocessableEntity, "envelope objects is not a list")
		}
		for dec.More() {
			if n == maxObjects {
				return n, fail(http.StatusUnprocessableEntity, "envelope has more than %d objects; %s", maxObjects, maxNoted)
			}
			if err := dec.Decode(&raw); err != nil {
				return n, bad(err)
			}
			if err := each(n, raw); err != nil {
				return n, err
			}
			n++
		}
		if _, err := dec.Token(); err != nil { // ]
			return n, bad(err)
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return n, bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return n, bad(err)
		}
		return n, fail(http.StatusUnprocessableEntity, "request body has more after the envelope")
	}
	switch {
	case !sawObjs:
		return n, fail(http.StatusUnprocessableEntity, "envelope has no objects")
	case n == 0:
		return n, fail(http.StatusUnprocessableEntity, "envelope objects is empty")
	}
	return n, nil
}

// foldName maps a property name to a key shared by every spelling that
// differs only in letter case, under the Unicode simple case folding that
// encoding/json uses to match names (bytes.EqualFold): "TYPE", "Type" and
// "type" fold alike, and so do "ſ" and "s", "K" (Kelvin) and "k".
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		// The smallest rune of r's folding orbit represents the orbit, in
		// lower case when it is ASCII (as the fast path above leaves it).
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		if m < utf8.RuneSelf {
			m = unicode.ToLower(m)
		}
		b = utf8.AppendRune(b, m)
	}
	return string(b)
}

func dupError(name, prev string) error {
	if name == prev {
		return fmt.Errorf("property %s appears twice", quoteShort(name))
	}
	return fmt.Errorf("property %s appears twice (also as %s; names differ only in letter case)", quoteShort(name), quoteShort(prev))
}

// quoteShort quotes s for a message, cut to 64 bytes so that a status
// detail never echoes a large value back.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
