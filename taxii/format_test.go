package taxii

import (
	"testing"
	"time"
)

// taxii21.md S-4.1, C-11, D-1: TAXII timestamps always have six digits and Z;
// STIX version strings keep milliseconds unless the instant needs more.
func TestTimestampFormats(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if got, want := taxiiTime(base.UnixMicro()+7), "2025-01-02T03:04:05.000007Z"; got != want {
		t.Errorf("taxiiTime = %s, want %s", got, want)
	}
	tests := []struct {
		t    time.Time
		want string
	}{
		{base, "2025-01-02T03:04:05.000Z"},
		{base.Add(120 * time.Millisecond), "2025-01-02T03:04:05.120Z"},
		{base.Add(123456 * time.Microsecond), "2025-01-02T03:04:05.123456Z"},
		{base.Add(123456789), "2025-01-02T03:04:05.123456789Z"},
		{base.In(time.FixedZone("x", 3600)), "2025-01-02T03:04:05.000Z"},
	}
	for _, tt := range tests {
		if got := stixTime(tt.t); got != tt.want {
			t.Errorf("stixTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

// taxii21.md C-1: odd but real Accept headers parse leniently.
func TestParseAccept(t *testing.T) {
	tests := []struct {
		h    string
		want []mediaRange
	}{
		{"application/taxii+json;version=2.1", []mediaRange{{"application", "taxii+json", "2.1", 1}}},
		{" application/taxii+json ; version = 2.1 ", []mediaRange{{"application", "taxii+json", "2.1", 1}}},
		{"text/html;q=0.5, */*;q=0", []mediaRange{{"text", "html", "", 0.5}, {"*", "*", "", 0}}},
		{"garbage, ,", nil},
	}
	for _, tt := range tests {
		got := parseAccept(tt.h)
		if len(got) != len(tt.want) {
			t.Errorf("parseAccept(%q) = %+v, want %+v", tt.h, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseAccept(%q)[%d] = %+v, want %+v", tt.h, i, got[i], tt.want[i])
			}
		}
	}
}
