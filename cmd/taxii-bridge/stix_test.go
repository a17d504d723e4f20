package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// TestTCGetIndicatorsSTIX runs tc-get-indicators -format stix against the
// simulator, hostile values included, and checks the bundle.
func TestTCGetIndicatorsSTIX(t *testing.T) {
	cfg, _ := simConfig(t, tcsim.Options{Seed: 1, Indicators: 400}, "stix:\n  tlp_mode: tlp2\n  feed_tags: [sim]\n")
	code, jsonOut, errOut := runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "json", "-limit", "400", "-active-indicators=false")
	if code != exitOK {
		t.Fatalf("json: exit %d, stderr:\n%s", code, errOut)
	}
	var inds []tcapi.Indicator
	if err := json.Unmarshal([]byte(jsonOut), &inds); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "stix", "-limit", "400", "-active-indicators=false")
	if code != exitOK {
		t.Fatalf("stix: exit %d, stderr:\n%s", code, errOut)
	}
	var bundle struct {
		Type    string            `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal([]byte(out), &bundle); err != nil {
		t.Fatalf("output is not a bundle: %v", err)
	}
	if bundle.Type != "bundle" || !strings.HasPrefix(bundle.ID, "bundle--") {
		t.Errorf("bundle type %q id %q", bundle.Type, bundle.ID)
	}
	ids := map[string]bool{}
	tcIDs := map[string]bool{}
	for _, raw := range bundle.Objects {
		var o map[string]any
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		id := o["id"].(string)
		if ids[id] {
			t.Errorf("%s appears twice", id)
		}
		ids[id] = true
		if o["type"] == "indicator" {
			if _, err := stixmap.CheckPattern(o["pattern"].(string)); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			tcIDs[o["x_threatconnect_id"].(string)] = true
		}
	}
	for _, in := range inds {
		if in.Type != tcapi.TypeHashtag && !tcIDs[strconv.FormatInt(in.ID, 10)] {
			t.Errorf("TC indicator %d (%s) is missing from the bundle", in.ID, in.Type)
		}
	}
	// the same fetch gives the same bytes
	if _, again, _ := runCmd(t, "", nil, "tc-get-indicators", "-config", cfg, "-format", "stix", "-limit", "400", "-active-indicators=false"); again != out {
		t.Error("two runs over the same data printed different bundles")
	}
}

func TestSTIXBundleErrors(t *testing.T) {
	cfg := config.Default()
	cfg.ThreatConnect.BaseURL = "https://tc.example"
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	good := tcapi.Indicator{ID: 1, OwnerName: "o", Type: tcapi.TypeHost, HostName: "a.example", DateAdded: day}
	bad := tcapi.Indicator{ID: 2, OwnerName: "o", Type: tcapi.TypeAddress, IP: " ", DateAdded: day}
	var buf bytes.Buffer
	if err := writeIndicatorBundle(&buf, &cfg, []tcapi.Indicator{good, bad}); err == nil || !strings.Contains(err.Error(), "indicator 2") || !strings.Contains(err.Error(), `"ip"`) {
		t.Errorf("bundle with an unmappable indicator: error %v, want one naming indicator 2 and field ip", err)
	}
	if buf.Len() != 0 {
		t.Errorf("a failed bundle wrote %d bytes; want none", buf.Len())
	}
	if err := writeIndicatorBundle(&buf, &cfg, []tcapi.Indicator{good}); err != nil || !json.Valid(buf.Bytes()) {
		t.Fatalf("writeIndicatorBundle = %s, %v", buf.Bytes(), err)
	}
	cfg.STIX.TLPMode = "tlp3"
	if err := writeIndicatorBundle(io.Discard, &cfg, nil); err == nil || !strings.Contains(err.Error(), "tlp3") {
		t.Errorf("bad tlp_mode: error %v", err)
	}
}
