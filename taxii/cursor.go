package taxii

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
)

// cursorVersion is the format version bound into every cursor; bump it when
// the payload changes meaning so old cursors are refused, not misread.
const cursorVersion = 1

// maxCursorLen bounds the next value we try to decode.
const maxCursorLen = 256 << 10

// cursor is the content of a next value (taxii21.md D-8): the API root,
// collection, endpoint and object it belongs to, the normalized filter, and
// the last (date_added, row id) served, and the page size asked for. It holds nothing about the
// principal: authorization and the TLP cap are re-applied on every request
// (S-7.19), so a cursor passed to another principal reveals nothing.
type cursor struct {
	Version    int    `json:"v"`
	Root       string `json:"r"`
	Collection string `json:"c"`
	Endpoint   string `json:"e"`
	Object     string `json:"o,omitempty"`
	Filter     filter `json:"f"`
	Limit      int    `json:"n,omitempty"` // the page size asked for; a request's own limit wins
	DateAdded  int64  `json:"d"`
	RowID      int64  `json:"k"`
}

// cursorCodec signs and verifies cursors with HMAC-SHA-256. The encoding is
// base64url(JSON payload) "." base64url(MAC): stateless, so cursors survive
// idle hours, restarts and replicas sharing the secret (C-7), and tamper-evident.
type cursorCodec struct {
	secret []byte
	root   string
}

var (
	errCursorMalformed = errors.New("malformed cursor")
	errCursorForged    = errors.New("cursor signature does not verify (tampered, or issued by another server)")
)

func (cc cursorCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, cc.secret)
	m.Write(payload)
	return m.Sum(nil)
}

func (cc cursorCodec) encode(c cursor) string {
	c.Version = cursorVersion
	c.Root = cc.root
	payload, _ := json.Marshal(c) // plain data, cannot fail
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(cc.mac(payload))
}

func (cc cursorCodec) decode(s string) (cursor, error) {
	if s == "" || len(s) > maxCursorLen {
		return cursor{}, errCursorMalformed
	}
	p, m, ok := bytes.Cut([]byte(s), []byte("."))
	if !ok {
		return cursor{}, errCursorMalformed
	}
	enc := base64.RawURLEncoding
	payload, err := enc.DecodeString(string(p))
	if err != nil {
		return cursor{}, errCursorMalformed
	}
	sig, err := enc.DecodeString(string(m))
	if err != nil {
		return cursor{}, errCursorMalformed
	}
	if !hmac.Equal(sig, cc.mac(payload)) {
		return cursor{}, errCursorForged
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return cursor{}, errCursorMalformed
	}
	if c.Version != cursorVersion || c.Root != cc.root {
		return cursor{}, errors.New("cursor from another API root or server version")
	}
	return c, nil
}
