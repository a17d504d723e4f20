package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// Codecs of versions.json.
//
// codecRaw keeps the canonical JSON bytes as given. codecTokens replaces
// common STIX/TAXII substrings (property names, type names, TLP marking ids,
// separators) by one- or two-byte codes. Canonical JSON never contains raw
// bytes below 0x20 (control characters are escaped inside strings and there
// is no whitespace between tokens), so those bytes are free to act as codes:
// the 28 bytes 0x01-0x1F other than TAB, LF and CR each stand for one of the
// first 28 entries of the token table, and 0x00 followed by a byte b for
// entry 28+b. Input that does contain such a byte is stored raw.
//
// Decoding is a copy loop, about a microsecond per object, which keeps the
// crawl budget; general-purpose compression (flate) costs several times that
// per small object. The token table is part of the on-disk format: entries
// may be appended, never changed, removed or reordered.
//
// codecUUIDs is codecTokens where, in addition, every canonical lowercase
// UUID (8-4-4-4-12 hex digits, what every STIX id ends with) is the code
// 0x00 0xFF followed by its 16 bytes: 18 bytes for 36. A TC indicator's
// versions hold about twelve UUIDs (ids, created_by_ref, relationship
// ends), so this keeps another ~210 bytes per indicator out of the file.
// The two-byte code 0xFF is therefore never a token: the table may grow to
// 283 entries. New versions are written with codecUUIDs; rows of the older
// codecs read as they always did.
const (
	codecRaw    = 0
	codecTokens = 1
	codecUUIDs  = 2
)

// uuidCode is the second byte of the two-byte code that starts a binary
// UUID in codecUUIDs.
const uuidCode = 0xFF

// tokenTable is the token table of codecTokens. Keep it append-only.
var tokenTable = [...]string{
	// One-byte codes: the most frequent.
	`","`, `":"`, `"type":"`, `"id":"`, `"spec_version":"2.1"`, `"created":"`, `"modified":"`,
	`"created_by_ref":"identity--`, `"name":"`, `.000Z"`, `T00:00:00.000Z"`,
	`"object_marking_refs":["marking-definition--`, `"external_references":[{`, `"source_name":"`,
	`"url":"`, `"x_threatconnect_`, `"relationship_type":"`, `"source_ref":"`, `"target_ref":"`,
	`"external_id":"`, `"value":"`, `"pattern":"[`, `"pattern_type":"stix"`, `"pattern_version":"2.1"`,
	`"valid_from":"`, `"description":"`, `"indicator_types":["`, `"labels":["`,
	// Two-byte codes.
	`owner_id":`, `owner":"`, `type":"`, `id":`, `attributes":`, `source_reliability":"`, `rating":`,
	`active":`, `confidence":`, `tags":`, `file_name":"`, `file_size":`, `status":"`, `event_date":"`,
	`threat_assess_score":`, `threat_assess_rating":`, `threat_assess_confidence":`, `xid":"`,
	`"definition":{"tlp":"`, `"definition_type":"tlp"`, `"identity_class":"`, `"extensions":{`,
	`"extension_type":"`, `"object_refs":["`, `"valid_until":"`, `"confidence":`, `"kill_chain_phases":[{`,
	`"kill_chain_name":"`, `"phase_name":"`, `"aliases":["`, `"hashes":{`, `"published":"`,
	`"report_types":["`, `"first_seen":"`, `"last_seen":"`, `"revoked":true`, `"revoked":false`,
	`"lang":"`, `"granular_markings":[`, `"is_family":`, `"value":`, `"number":`, `"first_observed":"`,
	`"last_observed":"`, `"number_observed":`, `"sighting_of_ref":"`, `"where_sighted_refs":["`,
	`"resolves_to_refs":["`, `"contact_information":"`, `"sectors":["`, `"roles":["`, `"goals":["`,
	`"objective":"`, `"opinion":"`, `"content":"`, `"abstract":"`, `"authors":["`, `"explanation":"`,
	`"context":"`, `"tool_version":"`, `"malware_types":["`, `"tool_types":["`, `"threat_actor_types":["`,
	`"infrastructure_types":["`, `"primary_motivation":"`, `"secondary_motivations":["`,
	`"resource_level":"`, `"sophistication":"`, `"x_mitre_`, `"subject":"`, `"is_multipart":`,
	`"from_ref":"`, `"to_refs":["`, `"body":"`, `"date":"`, `"key":"`, `"values":[`, `"data_type":"`,
	`"SHA-256":"`, `"SHA-1":"`, `"MD5":"`, `"SHA-512":"`, `"size":`, `"mime_type":"`,
	`"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"`,
	`[ipv4-addr:value = '`, `[ipv6-addr:value = '`, `[domain-name:value = '`, `[url:value = '`,
	`[email-addr:value = '`, `[file:hashes.'SHA-256' = '`, `[file:hashes.'SHA-1' = '`,
	`[file:hashes.MD5 = '`, `[autonomous-system:number = `, `[mac-addr:value = '`,
	`[windows-registry-key:key = '`, `[user-agent:value = '`,
	"']\"", `"}`, `"]`, `"],"`, `"},"`, `}],"`, `":[`, `":{`, `":true`, `":false`,
	`indicator--`, `relationship--`, `ipv4-addr--`, `ipv6-addr--`, `domain-name--`, `url--`, `file--`,
	`email-addr--`, `email-message--`, `autonomous-system--`, `mac-addr--`, `windows-registry-key--`,
	`identity--`, `malware--`, `threat-actor--`, `campaign--`, `attack-pattern--`, `report--`,
	`vulnerability--`, `intrusion-set--`, `tool--`, `marking-definition--`, `note--`, `opinion--`,
	`observed-data--`, `sighting--`, `location--`, `course-of-action--`, `grouping--`,
	`infrastructure--`, `x509-certificate--`, `extension-definition--`, `incident--`, `event--`,
	`"indicator"`, `"relationship"`, `"ipv4-addr"`, `"ipv6-addr"`, `"domain-name"`, `"url"`, `"file"`,
	`"email-addr"`, `"identity"`, `"malware"`, `"threat-actor"`, `"campaign"`, `"attack-pattern"`,
	`"report"`, `"vulnerability"`, `"intrusion-set"`, `"tool"`, `"marking-definition"`, `"note"`,
	`"sighting"`, `"course-of-action"`, `"grouping"`,
	// TLP 1.0 and 2.0 marking-definition ids (without the type prefix).
	`613f2e26-407d-48c7-9eca-b8e91df99dc9"`, `34098fce-860f-48ae-8e50-ebd3cc5e41da"`,
	`f88d31f6-486f-44da-b317-01333bde0b82"`, `5e57c739-391a-4eb3-b6be-7d15ca92d5ed"`,
	`94868c89-83c2-464b-929b-a1a8aa3c8487"`, `bab4a63c-aed9-4cf5-a766-dfca5abac2bb"`,
	`55d920b0-5e8b-4f79-9ee9-91f868d9b421"`, `939a9414-2ddd-4d32-a0cd-375ea402b003"`,
	`e828b379-4e03-4974-9ac4-e53a884c97c1"`,
	// Frequent values.
	`"based-on"`, `"related-to"`, `"indicates"`, `"uses"`, `"targets"`, `"attributed-to"`,
	`"derived-from"`, `"duplicate-of"`, `"malicious-activity"`, `"anomalous-activity"`, `"attribution"`,
	`"compromised"`, `"benign"`, `"unknown"`, `"threatconnect"`, `"organization"`, `"system"`,
	`"property-extension"`, `TLP:`, `"white"`, `"green"`, `"amber"`, `"red"`, `"clear"`,
	`"amber+strict"`, `https://`, `http://`, `.threatconnect.com`, `/auth/indicators/details/`,
	`.xhtml?`, `"mitre-attack"`, `"feed:tc"`, `"owner:`, `T00:00:00`, `:00.000Z"`, `"2.1"`,
	`"}],"`, `"2024-`, `"2025-`, `"2026-`, `"2027-`, `"2028-`, `"2023-`, `"2022-`, `"2021-`, `"2020-`,
	// Appended 2026-11 (readable by codec 1 too: codes never change meaning).
	// Values right after a key token, which took their opening quote.
	`indicator"`, `relationship"`, `ipv4-addr"`, `ipv6-addr"`, `domain-name"`, `url"`, `file"`,
	`email-addr"`, `identity"`, `malware"`, `threat-actor"`, `campaign"`, `attack-pattern"`, `report"`,
	`vulnerability"`, `intrusion-set"`, `tool"`, `marking-definition"`, `note"`, `course-of-action"`,
	`incident"`, `grouping"`, `autonomous-system"`, `malicious-activity"`, `threatconnect"`,
	`based-on"`, `related-to"`, `indicates"`, `unknown"`,
	// ThreatConnect's web links (stixmap's external references).
	`/#/details/indicators/`, `/#/details/groups/`, `/overview"`,
}

// tokenCodec holds the lookup tables built from a token table.
type tokenCodec struct {
	toks    [][]byte
	nSingle int
	literal [256]bool      // bytes that stand for themselves
	single  [32]int16      // code byte -> token index, -1 when not a code
	codeOf  [][]byte       // token index -> its code
	pair    [256][4]uint64 // bit set of the first two bytes of some token
	bucket  [65536]int32   // first two bytes -> index into buckets + 1
	buckets [][]int        // token indexes sharing their first two bytes
}

// singleCodes are the one-byte codes in order: 0x01-0x1F without TAB, LF, CR.
func singleCodes() []byte {
	var c []byte
	for b := byte(1); b < 0x20; b++ {
		if b != '\t' && b != '\n' && b != '\r' {
			c = append(c, b)
		}
	}
	return c
}

func newTokenCodec(table []string) *tokenCodec {
	tc := &tokenCodec{}
	for i := range tc.single {
		tc.single[i] = -1
	}
	codes := singleCodes()
	tc.nSingle = len(codes)
	for b := range tc.literal {
		tc.literal[b] = b >= 0x20 || b == '\t' || b == '\n' || b == '\r'
	}
	if len(table) > len(codes)+uuidCode {
		panic("storage: token table too long")
	}
	seen := map[string]bool{}
	for i, s := range table {
		if len(s) < 2 || seen[s] {
			panic(fmt.Sprintf("storage: token %d (%q) too short or repeated", i, s))
		}
		seen[s] = true
		for _, b := range []byte(s) {
			if b < 0x20 {
				panic(fmt.Sprintf("storage: token %d contains a control byte", i))
			}
		}
		tc.toks = append(tc.toks, []byte(s))
		if i < len(codes) {
			tc.single[codes[i]] = int16(i)
			tc.codeOf = append(tc.codeOf, []byte{codes[i]})
		} else {
			tc.codeOf = append(tc.codeOf, []byte{0, byte(i - len(codes))})
		}
		k := uint16(s[0])<<8 | uint16(s[1])
		tc.pair[s[0]][s[1]>>6] |= 1 << (s[1] & 63)
		if tc.bucket[k] == 0 {
			tc.buckets = append(tc.buckets, nil)
			tc.bucket[k] = int32(len(tc.buckets))
		}
		tc.buckets[tc.bucket[k]-1] = append(tc.buckets[tc.bucket[k]-1], i)
	}
	// Longest first (table order among equals), so that longest stops at
	// the first token that matches.
	for _, b := range tc.buckets {
		slices.SortStableFunc(b, func(x, y int) int { return len(tc.toks[y]) - len(tc.toks[x]) })
	}
	return tc
}

// encode returns src with tokens replaced by their codes, or ok=false when
// src holds a code byte. It parses left to right taking the longest token
// at each position, lazily: when a longer token starts one or two bytes
// later, those bytes are kept as literals and the later token taken
// instead. Without the lazy step `","` took the quote that opens the next
// key, so `","source_ref":"` lost its key token. Any parse decodes with
// the same table, so stored rows are unaffected.
//
// With uuids, a canonical UUID where no token starts becomes its binary code.
func (tc *tokenCodec) encode(src []byte, uuids bool) (out []byte, ok bool) {
	for _, b := range src {
		if b < 0x20 {
			return nil, false
		}
	}
	n := len(src)
	out = make([]byte, 0, n)
	lit := 0 // start of the pending literal run
	for i := 0; i+1 < n; {
		best := tc.longest(src, i)
		if best < 0 {
			if uuids && isUUID(src[i:]) {
				out = append(out, src[lit:i]...)
				out = appendUUID(out, src[i:i+36])
				i += 36
				lit = i
				continue
			}
			i++
			continue
		}
		if tc.later(src, i, len(tc.toks[best])) {
			i++
			continue
		}
		out = append(out, src[lit:i]...)
		out = append(out, tc.codeOf[best]...)
		i += len(tc.toks[best])
		lit = i
	}
	return append(out, src[lit:]...), true
}

// later reports whether a token longer than the one of length l at i
// starts one or two bytes later (inside it): `","` at the end of a string
// value is beaten by the `"key":"` token starting at its third byte.
func (tc *tokenCodec) later(src []byte, i, l int) bool {
	for k := 1; k <= 2 && k < l; k++ {
		if t := tc.longest(src, i+k); t >= 0 && len(tc.toks[t]) > l {
			return true
		}
	}
	return false
}

// longest is the index of the longest token src[i:] starts with, or -1.
func (tc *tokenCodec) longest(src []byte, i int) int {
	if i+1 >= len(src) {
		return -1
	}
	a, b := src[i], src[i+1]
	if tc.pair[a][b>>6]&(1<<(b&63)) == 0 {
		return -1
	}
	for _, t := range tc.buckets[tc.bucket[uint16(a)<<8|uint16(b)]-1] {
		if tok := tc.toks[t]; len(tok) <= len(src)-i && bytes.Equal(src[i:i+len(tok)], tok) {
			return t
		}
	}
	return -1
}

// isUUID reports whether b starts with a canonical lowercase UUID.
func isUUID[S string | []byte](b S) bool {
	if len(b) < 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	for i := range 36 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if c := b[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// appendUUID appends the binary code of the canonical UUID u (36 bytes).
func appendUUID(dst, u []byte) []byte {
	b := uuidBytes(u)
	return append(append(dst, 0, uuidCode), b[:]...)
}

// uuidBytes is the 16 bytes of a canonical UUID (isUUID).
func uuidBytes[S string | []byte](u S) (b [16]byte) {
	n := 0
	for _, g := range [...][2]int{{0, 8}, {9, 13}, {14, 18}, {19, 23}, {24, 36}} {
		for i := g[0]; i < g[1]; i += 2 {
			b[n] = unhex(u[i])<<4 | unhex(u[i+1])
			n++
		}
	}
	return b
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// formatUUID appends the canonical text of the 16 bytes b.
func formatUUID(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, digits[x>>4], digits[x&15])
	}
	return dst
}

// decode appends the decoding of src to dst; uuids says whether the binary
// UUID code is allowed (codecUUIDs).
func (tc *tokenCodec) decode(dst, src []byte, uuids bool) ([]byte, error) {
	for i := 0; i < len(src); {
		c := src[i]
		if tc.literal[c] {
			j := i + 1
			// Eight bytes at a time while none is below 0x20 (SWAR "has
			// less than"; bytes >= 0x80 never trigger it).
			for j+8 <= len(src) {
				x := binary.LittleEndian.Uint64(src[j:])
				if (x-0x2020202020202020)&^x&0x8080808080808080 != 0 {
					break
				}
				j += 8
			}
			for j < len(src) && tc.literal[src[j]] {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		if c == 0 {
			if i+1 >= len(src) {
				return dst, fmt.Errorf("token stream ends inside a code at byte %d", i)
			}
			if uuids && src[i+1] == uuidCode {
				if i+18 > len(src) {
					return dst, fmt.Errorf("token stream ends inside a UUID at byte %d", i)
				}
				dst = formatUUID(dst, src[i+2:i+18])
				i += 18
				continue
			}
			t := tc.nSingle + int(src[i+1])
			if t >= len(tc.toks) {
				return dst, fmt.Errorf("unknown token %d at byte %d", t, i)
			}
			dst = append(dst, tc.toks[t]...)
			i += 2
			continue
		}
		t := tc.single[c]
		if t < 0 {
			return dst, fmt.Errorf("unknown code byte %#x at byte %d", c, i)
		}
		dst = append(dst, tc.toks[t]...)
		i++
	}
	return dst, nil
}

// tokens is the codec of codecTokens. It is immutable after construction.
var tokens = newTokenCodec(tokenTable[:])

// encodeJSON chooses how a version's bytes are kept on disk: tokenised when
// that round-trips exactly and is smaller, else as given.
func encodeJSON(doc []byte) (int, []byte) {
	enc, ok := tokens.encode(doc, true)
	if !ok || len(enc) >= len(doc) {
		return codecRaw, doc
	}
	// Belt and braces: never store bytes that do not decode to the input.
	if back, err := tokens.decode(make([]byte, 0, len(doc)), enc, true); err != nil || !bytes.Equal(back, doc) {
		return codecRaw, doc
	}
	return codecUUIDs, enc
}

// appendJSON appends the canonical JSON bytes of a stored version to dst.
func appendJSON(dst []byte, codec int, body []byte) ([]byte, error) {
	switch codec {
	case codecRaw:
		return append(dst, body...), nil
	case codecTokens, codecUUIDs:
		out, err := tokens.decode(dst, body, codec == codecUUIDs)
		if err != nil {
			return dst, fmt.Errorf("decode stored json: %w", err)
		}
		return out, nil
	}
	return dst, fmt.Errorf("unknown json codec %d", codec)
}

// decodeJSON returns the canonical JSON bytes of a stored version.
func decodeJSON(codec int, body []byte) ([]byte, error) {
	if codec == codecRaw {
		return body, nil
	}
	return appendJSON(make([]byte, 0, 2*len(body)), codec, body)
}
