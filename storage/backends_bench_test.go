package storage

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// backendBenchN is the size of the collection BenchmarkBackends compares
// the backends on: 100,000 objects by default, STORAGE_BENCH_BACKENDS_N to
// change it.
func backendBenchN(b *testing.B) int { return benchSize(b, "STORAGE_BENCH_BACKENDS_N", 100_000) }

// BenchmarkBackends puts the same collection (n/3 TC indicators) into
// SQLite and PostgreSQL and measures, on each, a keyset crawl of the whole
// collection (limit 1000, JSON read, as a client following `next`) and
// single-object GETs by id from 32 goroutines (DESIGN.md §8: PostgreSQL
// within 3× of SQLite). GetOne2 spreads the GETs over two Stores on the one
// database, as two replicas behind a load balancer. The PostgreSQL half
// skips without TB_POSTGRES_URL.
func BenchmarkBackends(b *testing.B) {
	n := backendBenchN(b)
	for _, be := range []backend{sqliteBackend, postgresBackend} {
		b.Run(be.name, func(b *testing.B) {
			if be.name == "postgres" {
				pgtest.URL(b)
			}
			ctx := context.Background()
			s, where := be.open(b)
			c := ensure(b, s, "bench")
			start := time.Now()
			for i := 0; i*3 < n; {
				var batch []Object
				for ; len(batch) < 999 && i*3 < n; i++ {
					batch = append(batch, tcObjects(i)...)
				}
				if over := i*3 - n; over > 0 {
					batch = batch[:len(batch)-over]
				}
				if err := s.Update(ctx, func(tx *Tx) error { _, err := tx.Put(c.ID, batch); return err }); err != nil {
					b.Fatal(err)
				}
			}
			fill := time.Since(start)
			if err := s.Maintain(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run("Fill", func(b *testing.B) {
				b.ReportMetric(float64(n)/fill.Seconds(), "objects/s")
			})
			b.Run("Crawl", func(b *testing.B) {
				cpu := startCPU()
				for b.Loop() {
					benchCrawl(b, s, c.ID, n)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/object")
				cpu.report(b, b.N*n, "object")
			})
			b.Run("GetOne", func(b *testing.B) { benchGetOne(b, []*Store{s}, c.ID, n) })
			b.Run("GetOne2", func(b *testing.B) {
				s2, err := reopen(ctx, where)
				if err != nil {
					b.Fatal(err)
				}
				defer s2.Close()
				benchGetOne(b, []*Store{s, s2}, c.ID, n)
			})
		})
	}
}

func benchCrawl(b *testing.B, s *Store, cid string, n int) {
	q := Query{CollectionID: cid, MaxTLP: TLPRed, Limit: 1000, JSONOnly: true}
	got := 0
	for {
		p, err := s.Objects(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		got += len(p.Items)
		if !p.More {
			break
		}
		k := p.LastKey()
		q.After = &k
	}
	if got != n {
		b.Fatalf("crawled %d objects, want %d", got, n)
	}
}

// benchGetOne runs b.N GETs of one indicator by id from 32 goroutines
// spread over stores and reports the latency percentiles.
func benchGetOne(b *testing.B, stores []*Store, cid string, n int) {
	const workers = 32
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	per := b.N/workers + 1
	b.ResetTimer()
	cpu := startCPU()
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for j := range per {
				id := indicatorID((w*7919 + j*104729) % (n / 3))
				start := time.Now()
				p, err := s.Objects(context.Background(), Query{CollectionID: cid, IDs: []string{id}, MaxTLP: TLPRed, Limit: 1000})
				local = append(local, time.Since(start))
				if err != nil || len(p.Items) != 1 {
					b.Errorf("get %s: %d items, %v", id, len(p.Items), err)
					return
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu.report(b, workers*per, "op")
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
	}
}

// cpuMark is the CPU time used so far by this process and by every
// PostgreSQL server process of the machine (Linux /proc; the database's
// share of the work, when nothing else uses it meanwhile).
type cpuMark struct{ self, db time.Duration }

func startCPU() cpuMark {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuMark{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), db: pgtest.ServerCPU()}
}

// report adds the CPU used since m per unit: this process's and the
// database server's (0 on SQLite, which runs in this process).
func (m cpuMark) report(b *testing.B, n int, unit string) {
	now := startCPU()
	b.ReportMetric(float64((now.self-m.self).Microseconds())/float64(n), "cpu-µs/"+unit)
	b.ReportMetric(float64((now.db-m.db).Microseconds())/float64(n), "db-cpu-µs/"+unit)
}
