package tcsync_test

import (
	"context"
	"github.com/taxii-bridge/taxii-bridge/kind"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// TestWorker_OwnersDefaultToOwnOrganization: an empty sync.owners syncs only
// the API user's own organization, as the seed feed does ("If not specified
// will retrieve only indicators owned by the account"); ["*"] syncs all.
func TestWorker_OwnersDefaultToOwnOrganization(t *testing.T) {
	f := newFixture(t, 300, 30)
	store := openStore(t, "own.db")
	s := syncConfig()
	s.Owners = nil
	if _, err := f.worker(store, s, nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := takeSnapshot(t, store)
	for alias, objs := range snap {
		if alias == "tlp-green" || len(objs) == 0 {
			continue
		}
		if alias != "demo-organization" {
			t.Errorf("collection %s holds %d objects; want only the organization's collection", alias, len(objs))
		}
		for id, vs := range objs {
			for _, v := range vs {
				if strings.Contains(v, `"x_threatconnect_owner":`) && !strings.Contains(v, `"x_threatconnect_owner":"Demo Organization"`) {
					t.Errorf("%s: an object of another owner: %s", id, v)
				}
			}
		}
	}
	if len(snap["demo-organization"]) == 0 {
		t.Error("nothing synced from the organization")
	}
}

// TestWorker_ThresholdsAreMinimums: confidence_threshold and
// threat_assess_score_threshold keep values equal to the threshold (the
// seed's "minimal value").
func TestWorker_ThresholdsAreMinimums(t *testing.T) {
	f := newFixture(t, 400, 0)
	var at, below int64
	conf := 0
	for i := 1; i <= 400 && (at == 0 || below == 0); i++ {
		in, _ := f.sim.Indicator(tcsim.IndicatorID(i))
		if in.PrivateFlag || !in.Active || in.Confidence == nil || *in.Confidence < 2 || in.Type == "Hashtag" {
			continue
		}
		if at == 0 {
			at, conf = in.ID, *in.Confidence
			continue
		}
		if *in.Confidence == conf-1 {
			below = in.ID
		}
	}
	if at == 0 {
		t.Fatal("no indicator with a confidence in the simulator data")
	}
	store := openStore(t, "thresholds.db")
	s := syncConfig()
	s.ConfidenceThreshold = conf
	sum, err := f.worker(store, s, nil).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	has := func(id int64) bool {
		for _, objs := range takeSnapshot(t, store) {
			for _, vs := range objs {
				for _, v := range vs {
					if strings.Contains(v, `"x_threatconnect_id":"`+strconv.FormatInt(id, 10)+`"`) && strings.Contains(v, `"type":"indicator"`) {
						return true
					}
				}
			}
		}
		return false
	}
	if !has(at) {
		t.Errorf("indicator %d with confidence %d = confidence_threshold was not published (%+v)", at, conf, sum)
	}
	if below != 0 && has(below) {
		t.Errorf("indicator %d with confidence %d < confidence_threshold %d was published", below, conf-1, conf)
	}
}

// TestWorker_FiltersJudgeWhatIsPublished: a filter collection judges an
// item by the tags the mapper publishes (cleaned and trimmed), not by
// ThreatConnect's raw strings: an indicator tagged " APT28 " is published
// with the label "APT28" and belongs to the collection of tag APT28.
func TestWorker_FiltersJudgeWhatIsPublished(t *testing.T) {
	f := newFixture(t, 60, 0)
	var id int64
	for i := 1; i <= 60 && id == 0; i++ {
		in, _ := f.sim.Indicator(tcsim.IndicatorID(i))
		if !in.PrivateFlag && in.Active && in.Type == "Address" {
			id = in.ID
		}
	}
	if id == 0 {
		t.Fatal("no active Address indicator in the simulator data")
	}
	if err := f.sim.Modify(id, func(in *tcapi.Indicator) {
		in.Tags = tcapi.List[tcapi.Tag]{Data: []tcapi.Tag{{Name: " APT28 "}}}
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // the change is in the past of the sync's window
	store := openStore(t, "filter-mapped.db")
	apt := tcsync.Collection{Alias: "apt28", Title: "APT28", Kind: kind.Filter, Filter: tcsync.Filter{Tags: []string{"APT28"}}}
	sum, err := f.workerWith(store, syncConfig(), []tcsync.Collection{apt}, nil).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, vs := range takeSnapshot(t, store)[apt.Alias] {
		for _, v := range vs {
			if strings.Contains(v, `"x_threatconnect_id":"`+strconv.FormatInt(id, 10)+`"`) && strings.Contains(v, `"type":"indicator"`) {
				found = true
				if !strings.Contains(v, `"APT28"`) {
					t.Errorf("published without the label APT28: %s", v)
				}
			}
		}
	}
	if !found {
		t.Errorf("indicator %d published with the tag APT28 is missing from the APT28 collection (%+v)", id, sum)
	}
}
