package stixmap

import (
	"crypto/sha256"
	"net/netip"
	"testing"
	"time"
)

func TestAppendStamp(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2021, 11, 2, 14, 58, 55, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 999_999_999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1_000_000, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(appendStamp(nil, tm)), tm.UTC().Format(timeLayout); got != want {
			t.Errorf("appendStamp(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestFinishHash checks the content hash leaves out "modified" wherever it
// sorts, including first and only.
func TestFinishHash(t *testing.T) {
	tests := []struct {
		name    string
		members [][2]string
		without string
	}{
		{"middle", [][2]string{{"a", `1`}, {"modified", `"x"`}, {"z", `2`}}, `{"a":1,"z":2}`},
		{"first", [][2]string{{"modified", `"x"`}, {"z", `2`}}, `{"z":2}`},
		{"last", [][2]string{{"a", `1`}, {"modified", `"x"`}}, `{"a":1}`},
		{"only", [][2]string{{"modified", `"x"`}}, `{}`},
		{"absent", [][2]string{{"a", `1`}}, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newObj(4)
			for _, m := range tt.members {
				o.raw(m[0], []byte(m[1]))
			}
			_, h := o.finish()
			if h != sha256.Sum256([]byte(tt.without)) {
				t.Errorf("hash is not the hash of %s", tt.without)
			}
		})
	}
}

// TestHex6 checks the RFC 5952 writer against netip for addresses netip
// prints in hex, and the IPv4-mapped form it prints with dots.
func TestHex6(t *testing.T) {
	for _, s := range []string{"::", "::1", "1::", "2001:db8::1", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1", "fe80::1:0:0:1", "1:0:0:2:0:0:0:3", "1:2:3:4:5:6:7:8"} {
		a := netip.MustParseAddr(s)
		if got, want := hex6(a), a.String(); got != want {
			t.Errorf("hex6(%s) = %s, want %s", s, got, want)
		}
	}
	if got := hex6(netip.MustParseAddr("::ffff:1.2.3.4")); got != "::ffff:102:304" {
		t.Errorf("hex6(::ffff:1.2.3.4) = %s", got)
	}
}
