package stixmap

import (
	"fmt"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// benchIndicators are typical sync input: a mix of types, each with tags,
// a TLP label, an attribute, rating, confidence and one associated group.
func benchIndicators() []tcapi.Indicator {
	var out []tcapi.Indicator
	rating, conf := 3.0, 70
	for i := range 1000 {
		var in tcapi.Indicator
		switch i % 4 {
		case 0:
			in = withValue(tcapi.TypeHost, fmt.Sprintf("host-%d.example.com", i))
		case 1:
			in = withValue(tcapi.TypeAddress, fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256))
		case 2:
			in = withValue(tcapi.TypeURL, fmt.Sprintf("http://bad-%d.example.com/gate.php?id=%d&x=1", i, i))
		case 3:
			in = withValue(tcapi.TypeFile, fmt.Sprintf("%064x", i))
		}
		in.ID = int64(1000 + i)
		in.Rating, in.Confidence = &rating, &conf
		in.Tags.Data = []tcapi.Tag{{Name: "Malicious Host"}, {Name: "Targeted Attack"}}
		in.SecurityLabels.Data = []tcapi.SecurityLabel{{Name: "TLP:AMBER"}}
		in.Attributes.Data = []tcapi.Attribute{{Type: "Source", Value: "https://blog.example.com/x"}}
		in.AssociatedGroups.Data = []tcapi.Group{{ID: 12, OwnerID: 1, OwnerName: "Demo Organization", Type: tcapi.GroupAdversary, Name: "Bad Adversary", DateAdded: day}}
		out = append(out, in)
	}
	return out
}

// BenchmarkIndicator measures mapping throughput (indicators/s) and
// allocations per indicator; each indicator yields 4 objects (indicator,
// SCO, based-on, indicates).
func BenchmarkIndicator(b *testing.B) {
	m := mustNew(b, Options{FeedTags: []string{"feed"}})
	inds := benchIndicators()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := m.Indicator(inds[i%len(inds)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "indicators/s")
}

// BenchmarkGroup maps an Adversary with ten associated indicators and two
// associated groups (13 objects per call).
func BenchmarkGroup(b *testing.B) {
	m := mustNew(b, Options{})
	g := tcapi.Group{ID: 12, OwnerID: 1, OwnerName: "Demo Organization", Type: tcapi.GroupAdversary, Name: "Bad Adversary",
		DateAdded: day, LastModified: day}
	g.Tags.Data = []tcapi.Tag{{Name: "APT"}}
	g.SecurityLabels.Data = []tcapi.SecurityLabel{{Name: "TLP:AMBER"}}
	g.Attributes.Data = []tcapi.Attribute{{Type: "Aliases", Value: "BADGROUP"}, {Type: "Description", Value: "A bad actor.", Default: true}}
	g.AssociatedIndicators.Data = benchIndicators()[:10]
	g.AssociatedGroups.Data = []tcapi.Group{{ID: 13, Type: tcapi.GroupMalware, Name: "Loader", DateAdded: day}, {ID: 14, Type: tcapi.GroupCampaign, Name: "Op", DateAdded: day}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Group(g); err != nil {
			b.Fatal(err)
		}
	}
}
