package stixmap

import (
	"crypto/sha256"
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
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
			if full := sha256.Sum256([]byte(tt.without)); h != [16]byte(full[:16]) {
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

// FuzzAppendAny checks the generic canonical encoder (used by Revoke)
// against github.com/gowebpki/jcs: key order by UTF-16 code units, string
// escaping and ECMAScript number form.
func FuzzAppendAny(f *testing.F) {
	f.Add("a", "b", 1.5, int64(3))
	f.Add("é", "😀", 1e21, int64(-1))
	f.Add("\ufb33", "\U0001f600", 1e-7, int64(0))
	f.Add("x_threatconnect_rating", "", 0.1, int64(1<<53))
	f.Fuzz(func(t *testing.T, k1, k2 string, num float64, n int64) {
		if math.IsNaN(num) || math.IsInf(num, 0) || n > 1<<53 || n < -(1<<53) {
			return
		}
		v := map[string]any{clean(k1): clean(k2), clean(k2): []any{json.Number(strconv.FormatFloat(num, 'g', -1, 64)), true, nil},
			"n": json.Number(strconv.FormatInt(n, 10))}
		ours, err := appendAny(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Skip(err)
		}
		if string(ours) != string(want) {
			t.Errorf("appendAny = %s\n      jcs = %s", ours, want)
		}
	})
}

func TestLookups(t *testing.T) {
	m := mustNew(t, Options{})
	if got := m.GroupID(tcapi.GroupAdversary, 12); got != "threat-actor--1ceb5ea3-d862-5b0b-9669-71f8a9b0aa98" {
		t.Errorf("GroupID(Adversary, 12) = %s", got)
	}
	if got := m.GroupID(tcapi.GroupTask, 12); got != "" {
		t.Errorf("GroupID(Task) = %q, want empty", got)
	}
	o, err := m.OwnerByName(0, "Some Source")
	if err != nil || !strings.Contains(string(o.JSON), `"identity_class":"unknown"`) {
		t.Errorf("OwnerByName = %s, %v", o.JSON, err)
	}
	ind := withValue(tcapi.TypeHost, "x.example")
	ind.OwnerID = 0
	ind.OwnerName = "Some Source"
	objs, err := m.Indicator(ind)
	if err != nil || !strings.Contains(string(objs[0].JSON), `"created_by_ref":"`+o.ID+`"`) {
		t.Errorf("indicator of an owner without id does not point at OwnerByName's identity %s", o.ID)
	}
	for _, tt := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"SHA-256": "b", "MD5": "a"}, "MD5"},
		{map[string]any{"SHA-512": "b", "SHA-256": "a"}, "SHA-256"},
		{map[string]any{"x-custom": "b", "SSDEEP": "a"}, "SSDEEP"},
	} {
		for k := range chooseHash(tt.in) {
			if k != tt.want {
				t.Errorf("chooseHash(%v) kept %s, want %s", tt.in, k, tt.want)
			}
		}
	}
}
