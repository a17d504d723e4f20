package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchN is the size of the benchmark collection: 1,000,000 by default
// (DESIGN.md §8), STORAGE_BENCH_N to change it.
func benchN(b *testing.B) int { return benchSize(b, "STORAGE_BENCH_N", 1_000_000) }

// benchSize is the integer (at least 1,000) in the environment variable
// name, else def.
func benchSize(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("%s=%q: want an integer >= 1000", name, v)
	}
	return n
}

// tcObjects returns the three objects the sync writes for TC indicator i: an
// indicator, its observable and the relationship between them, each around
// 600 bytes of canonical JSON like the real mapping produces.
func tcObjects(i int) []Object {
	created := t0.Add(time.Duration(i) * time.Second)
	ts := formatSTIXTime(created)
	ind := indicatorID(i)
	obs := fmt.Sprintf("ipv4-addr--%08x-4444-5555-8666-%012x", i, i)
	rel := fmt.Sprintf("relationship--%08x-7777-5888-8999-%012x", i, i)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	mk := func(id, typ string, versioned bool, body string) Object {
		var mod time.Time
		if versioned {
			mod = created
		}
		js := []byte(body)
		return Object{ID: id, Type: typ, SpecVersion: "2.1", Created: created, Modified: mod, TLP: 1 + i%4,
			Hash: hash16(js), JSON: js}
	}
	return []Object{
		mk(obs, "ipv4-addr", false, fmt.Sprintf(`{"id":"%s","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],"spec_version":"2.1","type":"ipv4-addr","value":"%s","x_threatconnect_indicator_id":%d,"x_threatconnect_owner":"Example Org Intelligence Feed"}`, obs, ip, 1000000+i)),
		mk(ind, "indicator", true, fmt.Sprintf(`{"confidence":%d,"created":"%s","created_by_ref":"identity--2f9a8a3c-1111-4e0e-9d9b-123456789abc","description":"Address observed in command and control traffic of a commodity loader; reported by the sharing community.","external_references":[{"source_name":"ThreatConnect","url":"https://app.threatconnect.example/auth/indicators/details/address.xhtml?address=%s"}],"id":"%s","indicator_types":["malicious-activity"],"labels":["c2","loader"],"modified":"%s","name":"%s","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","spec_version":"2.1","type":"indicator","valid_from":"%s","x_threatconnect_rating":3}`, i%100, ts, ip, ind, ts, ip, ip, ts)),
		mk(rel, "relationship", true, fmt.Sprintf(`{"created":"%s","created_by_ref":"identity--2f9a8a3c-1111-4e0e-9d9b-123456789abc","description":"The indicator's pattern matches this observable as observed by the owner.","id":"%s","modified":"%s","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],"relationship_type":"based-on","source_ref":"%s","spec_version":"2.1","target_ref":"%s","type":"relationship"}`, ts, rel, ts, ind, obs)),
	}
}

// indicatorID is the id of TC indicator i's indicator object.
func indicatorID(i int) string { return fmt.Sprintf("indicator--%08x-1111-5222-8333-%012x", i, i) }

type benchDB struct {
	once    sync.Once
	dir     string
	path    string
	cid     string
	n       int
	elapsed time.Duration
	err     error
}

var shared benchDB

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedDB builds the benchmark database once per process, or reuses the
// one named by STORAGE_BENCH_DB (built by an earlier run with that variable
// set; it is kept).
func sharedDB(b *testing.B) *benchDB {
	shared.once.Do(func() {
		shared.n = benchN(b)
		if p := os.Getenv("STORAGE_BENCH_DB"); p != "" {
			shared.path = p
			if _, err := os.Stat(p); err == nil {
				shared.cid, shared.n, shared.err = reuse(p)
				return
			}
		} else {
			shared.dir, shared.err = os.MkdirTemp("", "storage-bench-")
			if shared.err != nil {
				return
			}
			shared.path = filepath.Join(shared.dir, "bench.db")
		}
		shared.cid, shared.elapsed, shared.err = fill(shared.path, shared.n)
	})
	if shared.err != nil {
		b.Fatal(shared.err)
	}
	return &shared
}

// fill writes n objects (n/3 TC indicators) in batches of 999 objects.
func fill(path string, n int) (string, time.Duration, error) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		return "", 0, err
	}
	defer s.Close()
	c, err := s.EnsureCollection(ctx, Collection{Alias: "bench", Title: "bench", Kind: "owner"})
	if err != nil {
		return "", 0, err
	}
	start := time.Now()
	for i := 0; i*3 < n; {
		var batch []Object
		for ; len(batch) < 999 && i*3 < n; i++ {
			batch = append(batch, tcObjects(i)...)
		}
		if over := (i*3 - n); over > 0 { // n not a multiple of 3
			batch = batch[:len(batch)-over]
		}
		if err := s.Update(ctx, func(tx *Tx) error { _, err := tx.Put(c.ID, batch); return err }); err != nil {
			return "", 0, err
		}
	}
	return c.ID, time.Since(start), nil
}

func reuse(path string) (string, int, error) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		return "", 0, err
	}
	defer s.Close()
	c, err := s.Collection(ctx, "bench")
	if err != nil {
		return "", 0, err
	}
	var n int
	err = s.r.QueryRowContext(ctx, "SELECT count(*) FROM members").Scan(&n)
	return c.ID, n, err
}

// rssMiB reads the process's resident set size from /proc (Linux only).
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

func fileSize(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkInsert1M writes a 1,000,000-object collection in batches of 999
// (333 TC indicators) and reports the time and the database bytes per
// object and per TC indicator (DESIGN.md §8: ≤ 2 KB per indicator).
func BenchmarkInsert1M(b *testing.B) {
	db := sharedDB(b) // the fill runs inside this first, timed call
	if db.elapsed == 0 {
		b.Skip("STORAGE_BENCH_DB reused an existing database: nothing was inserted")
	}
	size := fileSize(db.path, db.path+"-wal")
	b.ReportMetric(db.elapsed.Seconds(), "s/fill")
	b.ReportMetric(float64(size)/float64(db.n), "B/object")
	b.ReportMetric(3*float64(size)/float64(db.n), "B/indicator")
	b.ReportMetric(float64(db.n)/db.elapsed.Seconds(), "objects/s")
}

// BenchmarkCrawl1M pages through the whole collection with limit 1000 by
// keyset, reading JSON, as a TAXII client following `next` does
// (DESIGN.md §8: ≤ 10 s).
func BenchmarkCrawl1M(b *testing.B) {
	db := sharedDB(b)
	ctx := context.Background()
	s, err := Open(ctx, db.path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := Query{CollectionID: db.cid, MaxTLP: 5, Limit: 1000}
		n, bytes := 0, 0
		for {
			p, err := s.Objects(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Items)
			for _, it := range p.Items {
				bytes += len(it.JSON)
			}
			if !p.More {
				break
			}
			k := p.LastKey()
			q.After = &k
		}
		if n != db.n {
			b.Fatalf("crawled %d objects, want %d", n, db.n)
		}
		b.ReportMetric(float64(bytes)/float64(n), "jsonB/object")
		b.ReportMetric(rssMiB(), "RSS-MiB")
	}
}

// BenchmarkGetOne looks single objects up by id (match[id], version last) from
// 32 goroutines and reports p50/p99 latency (DESIGN.md §8: p99 ≤ 10 ms).
func BenchmarkGetOne(b *testing.B) {
	db := sharedDB(b)
	ctx := context.Background()
	s, err := Open(ctx, db.path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchGetOne(b, []*Store{s}, db.cid, db.n)
}

// BenchmarkResyncUnchanged puts 99,900 objects into a fresh store, then puts
// the same objects again, as a sync that finds nothing changed does
// (DESIGN.md §8: no versions written, ≤ 20% of the initial time).
func BenchmarkResyncUnchanged(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	c := ensure(b, s, "bench")
	const indicators = 33_300
	var batches [][]Object // built once: the timings cover storage only
	for i := 0; i < indicators; {
		var batch []Object
		for ; len(batch) < 999 && i < indicators; i++ {
			batch = append(batch, tcObjects(i)...)
		}
		batches = append(batches, batch)
	}
	putAll := func() (PutResult, time.Duration) {
		var total PutResult
		start := time.Now()
		for _, batch := range batches {
			err := s.Update(ctx, func(tx *Tx) error {
				r, err := tx.Put(c.ID, batch)
				total.New += r.New
				total.Unchanged += r.Unchanged
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		return total, time.Since(start)
	}
	first, initial := putAll()
	if first.New != 3*indicators {
		b.Fatalf("initial put: %+v", first)
	}
	b.ResetTimer()
	var again time.Duration
	for i := 0; i < b.N; i++ {
		var res PutResult
		res, again = putAll()
		if res.New != 0 || res.Unchanged != 3*indicators {
			b.Fatalf("resync wrote versions: %+v", res)
		}
	}
	b.ReportMetric(initial.Seconds(), "s/initial")
	b.ReportMetric(again.Seconds(), "s/resync")
	b.ReportMetric(100*again.Seconds()/initial.Seconds(), "%-of-initial")
}
