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
