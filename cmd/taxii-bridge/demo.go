package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

func init() {
	register(command{
		name:    "demo",
		summary: "The embedded default: ThreatConnect simulator → sync → TAXII 2.1 on 127.0.0.1:8080",
		run:     runDemo,
	})
}

// demoUser is the TAXII user the demo creates; its password is random per run.
const demoUser = "demo"

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("demo")
	listen := fs.String("listen", "127.0.0.1:8080", "TAXII listen `address`")
	dbPath := fs.String("db", "", "SQLite `file` (default: a new temporary directory, removed on exit)")
	indicators := fs.Int("indicators", 3000, "how many indicators the simulator serves")
	groups := fs.Int("groups", 300, "how many groups the simulator serves")
	seed := fs.Int64("seed", 1, "simulator data seed")
	once := fs.Bool("once", false, "sync, print the instructions, check the TAXII server answers, then exit (for CI)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *indicators < 0 || *indicators > 10_000_000 || *groups < 0 || *groups > 1_000_000 {
		return usageErrorf("-indicators must be 0..10000000 and -groups 0..1000000")
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageErrorf("-listen: want host:port, got %q", *listen)
	}

	dir, err := os.MkdirTemp("", "taxii-bridge-demo-")
	if err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if *dbPath == "" {
		*dbPath = filepath.Join(dir, "demo.db")
	}

	// The simulator, on a loopback port of its own, with fresh credentials.
	accessID, secretKey, password := randomToken(10), randomToken(24), randomToken(12)
	sim, err := tcsim.New(tcsim.Options{Seed: *seed, Indicators: *indicators, Groups: *groups,
		AccessID: accessID, SecretKey: secretKey})
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go simSrv.Serve(simLn)
	defer simSrv.Close()

	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost+2)
	if err != nil {
		return fmt.Errorf("hash demo password: %w", err)
	}
	cfg := config.Default()
	cfg.Storage.Path = *dbPath
	cfg.ThreatConnect.BaseURL = "http://" + simLn.Addr().String() + "/api"
	cfg.ThreatConnect.AccessID = accessID
	cfg.ThreatConnect.SecretKey = config.Secret(secretKey)
	cfg.ThreatConnect.RequestsPerSecond = 1000
	cfg.Sync.FirstFetch = config.Dur(0)
	cfg.Sync.Interval = config.Dur(time.Minute)
	cfg.Sync.ActiveOnly = false
	cfg.Sync.Owners = []string{tcapi.AllOwners} // every simulator owner, not only its organization
	cfg.Sync.PageSize = 1000
	cfg.TAXII.Listen = *listen
	cfg.TAXII.Title = "taxii-bridge demo"
	cfg.TAXII.Collections = []config.Collection{
		{Alias: "tlp-green", Title: "Everything shareable at TLP:GREEN or lower", Filter: config.Filter{MaxTLP: config.TLP{Level: tlp.Green}}},
		{Alias: "submissions", Title: "Submissions (POST objects here)", Writable: true},
	}
	cfg.TAXII.Users = []config.User{{Name: demoUser, PasswordHash: string(hash), Read: []string{"*"}, Write: []string{"submissions"}, Admin: true}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	cfgPath := filepath.Join(dir, "demo.yaml")
	if err := writeDemoConfig(cfgPath, &cfg); err != nil {
		return err
	}

	store, err := storage.Open(ctx, cfg.Storage.Path)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	o := newOps(e, &cfg, store)
	w, err := newWorker(ctx, e, &cfg, store, nil, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Syncing %d indicators and %d groups from the ThreatConnect simulator at %s …\n", *indicators, *groups, cfg.ThreatConnect.BaseURL)
	sum, err := w.RunOnce(ctx)
	if err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	fmt.Fprintf(e.Stdout, "Synced in %s: %d items fetched, %d STIX versions written, %d skipped.\n",
		sum.Duration.Round(time.Millisecond), sum.Fetched, sum.NewVersions, sum.SkippedTotal())

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another with -listen)", *listen, err)
	}
	base := "http://" + ln.Addr().String()
	printDemoHelp(e, base, cfg.TAXII.APIRoot, password, cfgPath)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveTAXIIOn(gctx, e, &cfg, store, ln, w.Health, o) })
	if *once {
		g.Go(func() error {
			defer cancel()
			return demoSelfCheck(gctx, base+"/"+cfg.TAXII.APIRoot, base, password)
		})
	} else {
		g.Go(func() error { return w.Run(gctx) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func writeDemoConfig(path string, cfg *config.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("write demo config: %w", err)
	}
	b = append([]byte("# Written by `taxii-bridge demo`; secrets are redacted.\n"), b...)
	return os.WriteFile(path, b, 0o600)
}

func printDemoHelp(e *env, base, apiRoot, password, cfgPath string) {
	fmt.Fprintf(e.Stdout, `
TAXII 2.1 is being served.
  discovery:  %[1]s/taxii2/
  user:       %[2]s
  password:   %[3]s
  config:     %[5]s (secrets redacted)
  status:     %[1]s/admin/status (in a browser, as the same user)

Try:
  curl -s -u %[2]s:%[3]s -H 'Accept: application/taxii+json;version=2.1' %[1]s/taxii2/
  curl -s -u %[2]s:%[3]s -H 'Accept: application/taxii+json;version=2.1' %[1]s/%[4]s/collections/
  curl -s -g -u %[2]s:%[3]s -H 'Accept: application/taxii+json;version=2.1' '%[1]s/%[4]s/collections/tlp-green/objects/?limit=5&match[type]=indicator'

Press Ctrl-C to stop.
`, base, demoUser, password, apiRoot, cfgPath)
}

// demoSelfCheck fetches discovery and the collections list as a client would.
func demoSelfCheck(ctx context.Context, root, base, password string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, u := range []string{base + "/taxii2/", root + "/collections/", root + "/collections/tlp-green/objects/?limit=5"} {
		var resp *http.Response
		var err error
		for i := 0; i < 50; i++ { // the listener is open; wait for the server to be up
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			req.SetBasicAuth(demoUser, password)
			req.Header.Set("Accept", "application/taxii+json;version=2.1")
			resp, err = client.Do(req)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("demo self-check %s: %w", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("demo self-check %s: status %s", u, resp.Status)
		}
	}
	return nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
