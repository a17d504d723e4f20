package tcsync_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// BenchmarkInitialSync measures DESIGN.md §8's sync budgets: a bare paged
// fetch of TB_BENCH_INDICATORS indicators (default 100,000; the budget is
// stated for 1,000,000) and their groups from the loopback simulator, the
// initial sync of the same data (initial/bare is the budget's ratio;
// initial_cores the CPU it used), a resync with nothing changed, a
// reconciliation and a full re-read after a scope change. It reports
// indicators/s, database bytes per indicator and the process's peak RSS
// (simulator included). Pages are sync.page_size's default, 1,000
// (TB_BENCH_PAGE changes it); the collections are the default ones (one per
// owner), and TB_BENCH_FILTER=1 adds the TLP:GREEN filter collection of
// config.example.yaml. TB_BENCH_PROFILE_INITIAL=FILE writes a CPU profile of
// the initial sync alone; TB_BENCH_KEEP=FILE keeps the database.
//
//	TB_BENCH_INDICATORS=1000000 go test -run '^$' -bench InitialSync -benchtime 1x -timeout 60m ./tcsync/
func BenchmarkInitialSync(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("TB_BENCH_INDICATORS")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		f := newFixture(b, n, n/100)
		dir := b.TempDir()
		path := filepath.Join(dir, "bench.db")
		store, err := storage.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		s := tcsync.DefaultSync()
		s.FirstFetch = 0
		if v, err := strconv.Atoi(os.Getenv("TB_BENCH_PAGE")); err == nil && v > 0 {
			s.PageSize = v
		}
		s.Owners = []string{"*"}
		var cols []tcsync.Collection
		if os.Getenv("TB_BENCH_FILTER") == "1" {
			cols = []tcsync.Collection{greenFilter}
		}
		w := f.workerWith(store, s, cols, nil)
		// The baseline: the same reads with nothing mapped or stored.
		start := time.Now()
		if _, err := w.BareFetch(context.Background()); err != nil {
			b.Fatal(err)
		}
		bare := time.Since(start)
		if p := os.Getenv("TB_BENCH_PROFILE_INITIAL"); p != "" { // a CPU profile of the initial sync alone
			pf, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(pf); err != nil {
				b.Fatal(err)
			}
		}
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start = time.Now()
		sum, err := w.RunOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		initial := time.Since(start)
		pprof.StopCPUProfile()
		var ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		initialCPU := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		// A no-change resync: the next incremental window, then a full
		// re-read of everything (a scope change restarts the streams).
		f.clock.Advance(time.Hour)
		start = time.Now()
		re, err := w.RunOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		resync := time.Since(start)
		// The reconciliation (DESIGN.md §10): a full read with association
		// reconciliation and deletion detection, nothing changed.
		f.clock.Advance(time.Hour)
		reqs := f.sim.Requests()
		start = time.Now()
		rec, err := w.Reconcile(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		reconcile := time.Since(start)
		reconcileReqs := f.sim.Requests() - reqs
		// A scope change that selects the same data: every type by name
		// instead of "All" restarts the streams.
		s.IndicatorTypes = tcapi.IndicatorTypes()
		start = time.Now()
		full, err := f.workerWith(store, s, cols, nil).RunOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		reread := time.Since(start)
		store.Close()
		if keep := os.Getenv("TB_BENCH_KEEP"); keep != "" { // for analysis: sqlite3 KEEP 'select name, sum(pgsize) from dbstat group by 1'
			if err := os.Rename(path, keep); err != nil {
				b.Fatal(err)
			}
			path = keep
		}
		size := int64(0)
		for _, suffix := range []string{"", "-wal"} {
			if st, err := os.Stat(path + suffix); err == nil {
				size += st.Size()
			}
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		b.ReportMetric(float64(n)/initial.Seconds(), "indicators/s")
		b.ReportMetric(initial.Seconds(), "initial_s")
		b.ReportMetric(bare.Seconds(), "bare_fetch_s")
		b.ReportMetric(initialCPU.Seconds()/initial.Seconds(), "initial_cores")
		b.ReportMetric(initial.Seconds()/bare.Seconds(), "initial/bare")
		b.ReportMetric(reread.Seconds()/initial.Seconds(), "reread/initial")
		b.ReportMetric(resync.Seconds(), "resync_s")
		b.ReportMetric(float64(re.NewVersions), "resync_versions")
		b.ReportMetric(reconcile.Seconds(), "reconcile_s")
		b.ReportMetric(float64(reconcileReqs), "reconcile_tc_requests")
		b.ReportMetric(float64(rec.NewVersions), "reconcile_versions")
		b.ReportMetric(reread.Seconds(), "full_reread_s")
		b.ReportMetric(float64(full.NewVersions), "reread_versions")
		b.ReportMetric(float64(size)/float64(n), "db_bytes/indicator")
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak_rss_MB")
		b.Logf("initial: %+v", sum)
	}
}
