package tcsync

import (
	"testing"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

func TestExclusions(t *testing.T) {
	x := newExclusions(Exclusions{
		Values:  []string{"8.8.8.8", "Evil-Mutex"},
		CIDRs:   []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"},
		Domains: []string{"example.com", ".corp.internal"},
	})
	tests := []struct {
		ind  tcapi.Indicator
		want bool
	}{
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "8.8.8.8"}, true},
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "10.1.2.3"}, true},
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "11.1.2.3"}, false},
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "2001:db8::1"}, true},
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "192.0.2.7"}, true},
		{tcapi.Indicator{Type: tcapi.TypeAddress, IP: "192.0.2.8"}, false},
		{tcapi.Indicator{Type: tcapi.TypeCIDR, Block: "10.20.0.0/16"}, true},
		{tcapi.Indicator{Type: tcapi.TypeCIDR, Block: "10.0.0.0/7"}, false}, // wider than the excluded block
		{tcapi.Indicator{Type: tcapi.TypeHost, HostName: "www.Example.com"}, true},
		{tcapi.Indicator{Type: tcapi.TypeHost, HostName: "example.com"}, true},
		{tcapi.Indicator{Type: tcapi.TypeHost, HostName: "notexample.com"}, false},
		{tcapi.Indicator{Type: tcapi.TypeURL, Text: "https://a.corp.internal/x?y=1"}, true},
		{tcapi.Indicator{Type: tcapi.TypeURL, Text: "http://10.9.9.9/payload"}, true},
		{tcapi.Indicator{Type: tcapi.TypeURL, Text: "http://bad.example.net/"}, false},
		{tcapi.Indicator{Type: tcapi.TypeEmailAddress, Address: "ceo@example.com"}, true},
		{tcapi.Indicator{Type: tcapi.TypeEmailAddress, Address: "x@example.com.evil"}, false},
		{tcapi.Indicator{Type: tcapi.TypeMutex, Mutex: "evil-mutex"}, true},
		{tcapi.Indicator{Type: tcapi.TypeMutex, Mutex: "evil-mutex-2"}, false},
	}
	for _, tt := range tests {
		if got := x.excluded(tt.ind); got != tt.want {
			t.Errorf("excluded(%s %q) = %v; want %v", tt.ind.Type, tt.ind.Value(), got, tt.want)
		}
	}
	if newExclusions(Exclusions{}).excluded(tcapi.Indicator{Type: tcapi.TypeAddress, IP: "8.8.8.8"}) {
		t.Error("an empty list excluded something")
	}
}

func TestFilterMatches(t *testing.T) {
	f := Filter{Owners: []string{"Org"}, MaxTLP: tlp.Amber, STIXTypes: []string{"indicator"},
		Tags: []string{"apt28"}, MinConfidence: 50}
	base := item{owner: "Org", tags: []string{"APT28", "x"}, confidence: 60, tlp: tlp.Green}
	tests := []struct {
		name   string
		it     item
		typ    string
		objTLP tlp.Level
		want   bool
	}{
		{"all match", base, "indicator", tlp.Green, true},
		{"other owner", item{owner: "Other", tags: base.tags, confidence: 60}, "indicator", tlp.Green, false},
		{"object above max", base, "indicator", tlp.AmberStrict, false},
		{"item above max", item{owner: "Org", tags: base.tags, confidence: 60, tlp: tlp.Red}, "indicator", tlp.Green, false},
		{"type not listed", base, "malware", tlp.Green, false},
		{"no tag", item{owner: "Org", tags: []string{"x"}, confidence: 60}, "indicator", tlp.Green, false},
		{"low confidence", item{owner: "Org", tags: base.tags, confidence: 49}, "indicator", tlp.Green, false},
	}
	for _, tt := range tests {
		if got := filterMatches(f, tt.it, tt.typ, tt.objTLP); got != tt.want {
			t.Errorf("%s: filterMatches = %v; want %v", tt.name, got, tt.want)
		}
	}
	if !filterMatches(Filter{}, item{tlp: tlp.Red}, "anything", tlp.Red) {
		t.Error("an empty filter must match everything")
	}
}
