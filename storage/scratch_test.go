package storage

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestScratchPlan(t *testing.T) {
	p := os.Getenv("EQP_DB")
	if p == "" {
		t.Skip()
	}
	ctx := context.Background()
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.Collection(ctx, "bench")
	id := tcObjects(4242)[1].ID
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		oids, err := s.resolveIDs(ctx, []string{id})
		t1 := time.Now()
		pg, err2 := s.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{id}, MaxTLP: 5, Limit: 1000})
		t.Log(oids, err, t1.Sub(t0), len(pg.Items), err2, time.Since(t1))
	}
	for _, q := range []string{"SELECT oid FROM objects WHERE stix_id IN (SELECT value FROM json_each(?))"} {
		rows, _ := s.r.Query("EXPLAIN QUERY PLAN "+q, `["`+id+`"]`)
		for rows.Next() {
			var a, b, c int
			var d string
			rows.Scan(&a, &b, &c, &d)
			t.Log(d)
		}
		rows.Close()
	}
}
