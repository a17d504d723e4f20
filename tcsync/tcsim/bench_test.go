package tcsim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServePage measures the simulator's cost per indicator for
// 10,000-indicator keyset pages with the sync's usual expansions, without
// the network.
//
//	go test -run '^$' -bench ServePage ./tcsync/tcsim/
func BenchmarkServePage(b *testing.B) {
	s, err := New(Options{Seed: 1, Indicators: 1_000_000, Groups: 10_000, APIToken: "t", IncludeInactiveByDefault: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for i := range b.N {
		after := IndicatorID((i * 10000) % 990_000)
		req := httptest.NewRequest(http.MethodGet, "/api/v3/indicators?"+q("tql", fmt.Sprintf("id > %d", after), "sorting", "id ASC",
			"resultLimit", "10000", "fields", "tags", "fields", "securityLabels", "fields", "threatAssess", "fields", "attributes", "fields", "associatedGroups"), nil)
		req.Header.Set("Authorization", "TC-Token t")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		n += 10000
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/indicator")
}
