package taxii

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// canonicalize writes what RFC 8785 says, byte for byte as gowebpki/jcs does.
func TestCanonicalizeMatchesJCS(t *testing.T) {
	for _, in := range []string{
		`{}`, `{"b":1,"a":2}`, ` { "a" : [ 1 , 2.50 , -0 , 0 , 1e3 , 1E-7 , 123456789012345678 , -12 , 0.1 ] } `,
		`{"s":"\u00e9\u0001\b\f\n\r\t\"\\\/\ud83d\ude00 é","\u0061":true,"n":null,"f":false}`,
		`{"\ue000":1,"\ud83d\ude00":2,"z":3,"aa":4,"a":5,"":6}`,
		`{"x":{"d":{"c":[{"b":1,"a":2}]},"a":[]}}`,
		`{"big":1e300,"small":1e-300,"n":-1.5e-7,"m":100000000000000000000000}`,
		`{"k` + strings.Repeat("a", 20) + `":1,` + strings.Repeat(`"x":{},`, 0) + `"a":1}`,
	} {
		got, _, err := canonicalize([]byte(in))
		want, jerr := jcs.Transform([]byte(in))
		if err != nil || jerr != nil || !bytes.Equal(got, want) {
			t.Errorf("canonicalize(%s)\n got %s (%v)\nwant %s (%v)", in, got, err, want, jerr)
		}
	}
	for _, in := range []string{
		`{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\u0041"}`, `{"a":1e400}`, `[1]`, `{"a":1,"A":2}`,
		`{"a":{"b":1,"B":2}}`, `{"a":[{"x":1,"x":2}]}`, `{"a":01}`, `{"a":1.}`, `{"a":tru}`, `{"a":1}x`,
		`{"a":` + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + `}`,
	} {
		if got, _, err := canonicalize([]byte(in)); err == nil {
			t.Errorf("canonicalize(%.80s) = %s, want an error", in, got)
		}
	}
}

// Issue 14: canonicalizing costs a small multiple of the input, with no
// per-token allocation, whatever the shape of the object.
func TestCanonicalizeAllocations(t *testing.T) {
	for _, inner := range []string{
		`[` + strings.Repeat("0,", 100000) + `0]`,
		`[` + strings.Repeat("{},", 100000) + `{}]`,
		`[` + strings.Repeat(`"",`, 100000) + `""]`,
		`[` + strings.Repeat(`{"b":1,"a":2},`, 20000) + `{}]`,
		`[` + strings.Repeat("[],", 100000) + `[]]`,
		`[` + strings.Repeat("1.5,", 100000) + `0]`,
	} {
		raw := []byte(`{"x":` + inner + `}`)
		a0 := heapAllocs()
		if _, _, err := canonicalize(raw); err != nil {
			t.Fatal(err)
		}
		if a := heapAllocs() - a0; a > 8*uint64(len(raw))+4096 {
			t.Errorf("%.30s…: %d bytes allocated for %d input bytes", inner, a, len(raw))
		}
	}
}
