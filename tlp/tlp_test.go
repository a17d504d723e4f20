package tlp_test

import (
	"testing"

	"github.com/taxii-bridge/taxii-bridge/tlp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want tlp.Level
	}{
		{"WHITE", tlp.Clear},
		{"tlp:clear", tlp.Clear},
		{"Green", tlp.Green},
		{"TLP:AMBER", tlp.Amber},
		{"amber+strict", tlp.AmberStrict},
		{"TLP:AMBER STRICT", tlp.AmberStrict},
		{" RED ", tlp.Red},
	}
	for _, tt := range tests {
		got, err := tlp.Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "AMBR", "TLP:", "PURPLE", "TLP:AMBER+"} {
		if _, err := tlp.Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded; want error", bad)
		}
	}
}

func TestOrderAndLabels(t *testing.T) {
	order := []tlp.Level{tlp.None, tlp.Clear, tlp.Green, tlp.Amber, tlp.AmberStrict, tlp.Red}
	for i := 1; i < len(order); i++ {
		if !(order[i-1] < order[i]) {
			t.Errorf("%v should be less restrictive than %v", order[i-1], order[i])
		}
		if got := tlp.Max(order[i], order[i-1]); got != order[i] {
			t.Errorf("Max(%v, %v) = %v", order[i], order[i-1], got)
		}
	}
	if l, ok := tlp.FromLabel("TLP:AMBER+STRICT"); !ok || l != tlp.AmberStrict {
		t.Errorf("FromLabel(TLP:AMBER+STRICT) = %v, %v", l, ok)
	}
	if _, ok := tlp.FromLabel("dictators"); ok {
		t.Error("FromLabel accepted an organisation-defined label")
	}
	if _, ok := tlp.FromLabel("GREEN"); ok {
		t.Error("FromLabel accepted a name without the TLP: prefix")
	}
	if got := tlp.Red.Label(); got != "TLP:RED" {
		t.Errorf("Red.Label() = %q", got)
	}
}

func TestFromMarking(t *testing.T) {
	tests := []struct {
		id   string
		want tlp.Level
	}{
		{tlp.MarkingV1White, tlp.Clear}, {tlp.MarkingV1Green, tlp.Green}, {tlp.MarkingV1Amber, tlp.Amber},
		{tlp.MarkingV1Red, tlp.Red}, {tlp.MarkingV2Clear, tlp.Clear}, {tlp.MarkingV2Green, tlp.Green},
		{tlp.MarkingV2Amber, tlp.Amber}, {tlp.MarkingV2AmberStrict, tlp.AmberStrict}, {tlp.MarkingV2Red, tlp.Red},
	}
	for _, tt := range tests {
		if got, ok := tlp.FromMarking(tt.id); !ok || got != tt.want {
			t.Errorf("FromMarking(%s) = %v, %v; want %v, true", tt.id, got, ok, tt.want)
		}
	}
	for _, id := range []string{"", "marking-definition--00000000-0000-4000-8000-000000000000", "TLP:RED"} {
		if got, ok := tlp.FromMarking(id); ok {
			t.Errorf("FromMarking(%q) = %v, true; want false", id, got)
		}
	}
}
