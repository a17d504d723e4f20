package tcapi_test

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

// peakRSS returns this process's peak resident set size in bytes (Linux VmHWM).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIndicators1M pages 1,000,000 indicators at resultLimit=10000
// over loopback (issue 4). With TCAPI_BENCH_URL and TCAPI_BENCH_TOKEN set
// it reads from an external `taxii-bridge tc-simulator`, so peak_rss_MB is
// the client's alone; otherwise the simulator runs in this process and the
// RSS covers both. cpu_µs/indicator is this process's user+system CPU time,
// which unlike indicators/s does not depend on what else the machine runs.
// TCAPI_BENCH_N changes the count.
//
//	go test -run '^$' -bench Indicators1M -benchtime 1x ./tcsync/tcapi/
func BenchmarkIndicators1M(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("TCAPI_BENCH_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	base, token := os.Getenv("TCAPI_BENCH_URL"), os.Getenv("TCAPI_BENCH_TOKEN")
	if base == "" {
		sim, err := tcsim.New(tcsim.Options{Seed: 1, Indicators: n, Groups: n / 100, APIToken: "bench", IncludeInactiveByDefault: true})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(sim)
		defer srv.Close()
		base, token = srv.URL+"/api", "bench"
	}
	c, err := tcapi.New(tcapi.Options{BaseURL: base, APIToken: token, Timeout: 5 * time.Minute, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	q := tcapi.Query{PageSize: tcapi.MaxPageSize, Fields: []string{"tags", "securityLabels", "threatAssess"}}
	if os.Getenv("TCAPI_BENCH_URL") != "" {
		q.Limit = n // an external simulator may hold more
	}
	b.ResetTimer()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	total := 0
	for range b.N {
		err := c.Indicators(b.Context(), q, func(p []tcapi.Indicator) error {
			total += len(p)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu_µs/indicator")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "indicators/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak_rss_MB")
	b.ReportMetric(float64(total)/float64(b.N), "indicators/op")
}
