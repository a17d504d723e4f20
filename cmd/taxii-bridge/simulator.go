package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
)

func init() {
	register(command{
		name:    "tc-simulator",
		summary: "Run the ThreatConnect API v3 simulator standalone (deterministic data, HMAC and token auth)",
		run:     runTCSimulator,
	})
}

func runTCSimulator(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("tc-simulator")
	listen := fs.String("listen", "127.0.0.1:8089", "`address` to listen on")
	indicators := fs.Int("indicators", 10000, "number of generated indicators")
	groups := fs.Int("groups", -1, "number of generated groups (default indicators/100, at least 17 so every type occurs)")
	seed := fs.Int64("seed", 1, "data seed: the same seed serves the same data")
	accessID := fs.String("access-id", "", "HMAC access id to accept (default: random)")
	// Secrets never come from arguments (they show in ps): the same
	// variables that feed the bridge's configuration set them.
	secretKey := new(string)
	*secretKey = e.Getenv(config.EnvSecretKey)
	token := new(string)
	*token = e.Getenv(config.EnvAPIToken)
	includeInactive := fs.Bool("include-inactive", false, "return inactive indicators when the TQL does not mention indicatorActive (ThreatConnect's documented default is active only)")
	writeConfig := fs.String("write-config", "", "write a taxii-bridge configuration `file` pointing at the simulator")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("tc-simulator: unexpected argument %q", fs.Arg(0))
	}
	if *indicators < 0 {
		return usageErrorf("-indicators must not be negative, got %d", *indicators)
	}
	if *groups < 0 {
		*groups = max(17, *indicators/100)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageErrorf("-listen: want host:port, got %q", *listen)
	}
	if *accessID == "" {
		*accessID = randomCredential(12)
	}
	if *secretKey == "" {
		*secretKey = randomCredential(24)
	}
	if *token == "" {
		*token = "APIV2:1:sim:" + randomCredential(24)
	}
	sim, err := tcsim.New(tcsim.Options{Seed: *seed, Indicators: *indicators, Groups: *groups,
		AccessID: *accessID, SecretKey: *secretKey, APIToken: *token, IncludeInactiveByDefault: *includeInactive})
	if err != nil {
		return usageErr(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("tc-simulator: listen on %s: %w", *listen, err)
	}
	base := "http://" + ln.Addr().String() + "/api"
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(e.Stderr, "warning: %s is not a loopback address; anyone who can reach it can read the simulated data with the credentials below\n", host)
	}
	if *writeConfig != "" {
		if err := writeSimConfig(*writeConfig, base, *accessID, *secretKey); err != nil {
			ln.Close()
			return err
		}
	}
	printSimBanner(e, base, *indicators, *groups, *seed, *accessID, *secretKey, *token, *writeConfig)

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("tc-simulator: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("tc-simulator: shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("tc-simulator: %w", err)
	}
	return nil
}

func printSimBanner(e *env, base string, indicators, groups int, seed int64, accessID, secretKey, token, cfgPath string) {
	w := e.Stdout
	fmt.Fprintf(w, "ThreatConnect simulator: %d indicators, %d groups, seed %d\n", indicators, groups, seed)
	fmt.Fprintf(w, "base URL:    %s\n", base)
	fmt.Fprintf(w, "access id:   %s\n", accessID)
	fmt.Fprintf(w, "secret key:  %s\n", secretKey)
	fmt.Fprintf(w, "api token:   %s\n", token)
	fmt.Fprintln(w, "(demo credentials for this simulator only)")
	fmt.Fprintln(w)
	if cfgPath != "" {
		fmt.Fprintf(w, "configuration written to %s; try:\n", cfgPath)
		fmt.Fprintf(w, "  taxii-bridge tc-get-owners -config %s\n", cfgPath)
		fmt.Fprintf(w, "  taxii-bridge tc-get-indicators -config %s -limit 10 -indicator-type Host,URL\n", cfgPath)
	} else {
		fmt.Fprintln(w, "a configuration for it (threatconnect section):")
		fmt.Fprintf(w, "  threatconnect:\n    base_url: %s\n    access_id: %s\n    secret_key: %s\n", base, accessID, secretKey)
		fmt.Fprintln(w, "(or run with -write-config FILE)")
	}
	fmt.Fprintln(w, "Ctrl-C stops it.")
}

// writeSimConfig writes a minimal configuration for the simulator, refusing
// to overwrite an existing file.
func writeSimConfig(path, base, accessID, secretKey string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by taxii-bridge tc-simulator for its demo credentials.\n")
	fmt.Fprintf(&b, "storage:\n  path: taxii-bridge-sim.db\n")
	fmt.Fprintf(&b, "threatconnect:\n  base_url: %q\n  access_id: %q\n  secret_key: %q\n  requests_per_second: 100\n", base, accessID, secretKey)
	// The simulator's data is dated from 2024: reach back to the beginning.
	b.WriteString("sync:\n  first_fetch: 0\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usageErrorf("-write-config: %v", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// randomCredential returns n random bytes as URL-safe base64 without padding.
func randomCredential(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
