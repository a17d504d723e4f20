package tcsync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// BenchmarkInitialSync measures DESIGN.md §8's sync budgets: a bare paged
// fetch of TB_BENCH_INDICATORS indicators (default 100,000; the budget is
// stated for 1,000,000) and their groups from the loopback simulator, the
// initial sync of the same data (initial/bare is the budget's ratio;
// initial_cores the CPU it used), a resync with nothing changed, a
// reconciliation and a full re-read after a scope change. The simulator
// runs in a child process, as §8 states its figures: the benchmark process
// holds only the sync, so its CPU, GC and peak RSS are the bridge's own,
// and the simulator's CPU is reported apart (sim_cpu_s, over the whole run).
// It reports indicators/s, database bytes per indicator and peak RSS, of
// the whole run and of the initial sync and the reconciliation alone.
// Pages are sync.page_size's default, 1,000 (TB_BENCH_PAGE changes it);
// the collections are the default ones (one per owner), and
// TB_BENCH_FILTER=1 adds the TLP:GREEN filter collection of
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
		f := newProcessFixture(b, n, n/100)
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
		resetPeakRSS(b)
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start = time.Now()
		sum, err := w.RunOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		initial := time.Since(start)
		pprof.StopCPUProfile()
		initialRSS := peakRSSMB(b)
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
		reqs := f.requests.Load()
		resetPeakRSS(b)
		start = time.Now()
		rec, err := w.Reconcile(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		reconcile := time.Since(start)
		reconcileRSS := peakRSSMB(b)
		reconcileReqs := f.requests.Load() - reqs
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
		simCPU := f.stop()
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
		b.ReportMetric(initialRSS, "initial_peak_rss_MB")
		b.ReportMetric(reconcileRSS, "reconcile_peak_rss_MB")
		b.ReportMetric(simCPU.Seconds(), "sim_cpu_s")
		b.Logf("initial: %+v", sum)
	}
}

// resetPeakRSS starts a new peak of this process's resident set (Linux:
// clear_refs 5 resets VmHWM), so that peakRSSMB measures one phase.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): the phase peaks include what came before", err)
	}
}

// peakRSSMB is VmHWM, the peak resident set since resetPeakRSS, in MB.
func peakRSSMB(b *testing.B) float64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Logf("no /proc/self/status: %v", err)
		return 0
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// processFixture is a fixture whose simulator runs in a child process
// (TestBenchSimulator); requests counts the client's HTTP exchanges.
type processFixture struct {
	*fixture
	requests *atomic.Int64
	stop     func() time.Duration // ends the child; returns the CPU it used
}

func newProcessFixture(b *testing.B, nInd, nGrp int) processFixture {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchSimulator$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TB_BENCH_SIM_INDICATORS="+strconv.Itoa(nInd), "TB_BENCH_SIM_GROUPS="+strconv.Itoa(nGrp))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the simulator process: %v", err)
	}
	var base string
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "SIM "); ok {
			base = v
			break
		}
	}
	if base == "" {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatal("the simulator process printed no address")
	}
	go io.Copy(io.Discard, stdout)
	stopped := false
	stop := func() time.Duration {
		if !stopped {
			stopped = true
			stdin.Close() // the child serves until its stdin closes
			if err := cmd.Wait(); err != nil {
				b.Errorf("simulator process: %v", err)
			}
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.Cleanup(func() { stop() })
	// The worker's clock is the fixture's (past every generated
	// lastModified); HMAC timestamps are real time, as the child's are.
	clk := &clock{t: time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)}
	requests := new(atomic.Int64)
	client, err := tcapi.New(tcapi.Options{BaseURL: base, AccessID: "test-id", SecretKey: "test-secret",
		MaxRetries: 8, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 20 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond,
		Timeout: 60 * time.Second, Observe: func(int, error, time.Duration) { requests.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	m, err := stixmap.New(stixmap.Options{BaseURL: "https://tc.example/api"}) // as newFixture's
	if err != nil {
		b.Fatal(err)
	}
	return processFixture{fixture: &fixture{t: b, clock: clk, client: client, mapper: m, base: base, nInd: nInd, nGrp: nGrp},
		requests: requests, stop: stop}
}

// TestBenchSimulator is the simulator of BenchmarkInitialSync, run only in
// the child process that benchmark starts: the fixture's data (seed 7) on a
// loopback port, printed as one "SIM <base URL>" line, until stdin closes.
func TestBenchSimulator(t *testing.T) {
	nInd, err1 := strconv.Atoi(os.Getenv("TB_BENCH_SIM_INDICATORS"))
	nGrp, err2 := strconv.Atoi(os.Getenv("TB_BENCH_SIM_GROUPS"))
	if err1 != nil || err2 != nil {
		t.Skip("the simulator of BenchmarkInitialSync; runs only in its child process")
	}
	sim, err := tcsim.New(tcsim.Options{Seed: 7, Indicators: nInd, Groups: nGrp, AccessID: "test-id", SecretKey: "test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim}
	go srv.Serve(ln)
	fmt.Printf("SIM http://%s/api\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}
