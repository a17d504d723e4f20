package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/taxii"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
)

func init() {
	register(command{
		name:    "serve",
		summary: "Production main job: the sync worker on its interval plus the TAXII 2.1 server",
		run:     runServe,
	})
}

// cursorSecretKey is the storage state key of the generated cursor secret.
const cursorSecretKey = "taxii.cursor_secret"

// readyFailureThreshold is how many consecutive failed syncs make /readyz
// report not ready (DESIGN.md §5).
const readyFailureThreshold = 3

func runServe(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("serve")
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	o := newOps(e, cfg, store)
	// The worker, the servers and the start-up integrity check share one
	// lifetime: a signal stops them all; a failed sync never stops the
	// server (Worker.Run retries with backoff), and a damaged database
	// makes /readyz fail rather than the process exit.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return o.serveMetrics(gctx, cfg) })
	g.Go(func() error {
		if err := o.health.quickCheck(gctx, store); err == nil {
			e.Log.Info("database integrity check passed", "database", storeName(cfg.Storage))
		}
		return nil
	})
	if !cfg.ThreatConnect.Enabled() {
		e.Log.Info("threatconnect.base_url is empty: serving TAXII only (local writable collections)")
		g.Go(func() error { return serveTAXII(gctx, e, cfg, store, nil, o) })
		return g.Wait()
	}
	el := newElector(e, cfg, o)
	w, err := newWorker(ctx, e, cfg, store, nil, o)
	if err != nil {
		return err
	}
	g.Go(func() error { return serveTAXII(gctx, e, cfg, store, w.Health, o) })
	// Every replica serves; only the leader syncs (on SQLite, always this
	// process). A term that ends cancels the worker; the elector then
	// campaigns again, and a replica that wins resumes from the committed
	// stream positions.
	g.Go(func() error {
		return el.Run(gctx, func(ctx context.Context) error {
			return syncTerm(ctx, e.Log, o.fence, store, electionInterval(cfg.Sync.Interval.D()), w.Run)
		})
	})
	return g.Wait()
}

// serveTAXII listens on taxii.listen and serves TAXII until ctx is
// cancelled. It is the TAXII half of `serve`; the sync worker runs next to
// it under the same errgroup.
func serveTAXII(ctx context.Context, e *env, cfg *config.Config, store *storage.Store, health func() tcsync.Health, o *ops) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.TAXII.Listen)
	if err != nil {
		return fmt.Errorf("taxii.listen: listen on %s: %w", cfg.TAXII.Listen, err)
	}
	return serveTAXIIOn(ctx, e, cfg, store, ln, health, o)
}

// serveTAXIIOn serves TAXII on ln until ctx is cancelled, then shuts down
// gracefully. health, when not nil, is the sync worker's state for /readyz;
// o, when not nil, the process's metrics, storage health and sync history.
func serveTAXIIOn(ctx context.Context, e *env, cfg *config.Config, store *storage.Store, ln net.Listener, health func() tcsync.Health, o *ops) error {
	srv, err := newTAXIIServer(ctx, e, cfg, store, health, o)
	if err != nil {
		_ = ln.Close()
		return err
	}
	scheme := "http"
	if cfg.TAXII.TLSCertFile != "" {
		scheme = "https"
	}
	e.Log.Info("serving TAXII 2.1", "discovery", fmt.Sprintf("%s://%s/taxii2/", scheme, ln.Addr()), "api_root", "/"+cfg.TAXII.APIRoot+"/")
	err = taxii.Serve(ctx, ln, srv, taxii.ServeOptions{
		TLSCertFile: cfg.TAXII.TLSCertFile,
		TLSKeyFile:  cfg.TAXII.TLSKeyFile,
		Log:         e.Log,
	})
	if err != nil {
		return fmt.Errorf("taxii server: %w", err)
	}
	e.Log.Info("TAXII server stopped")
	return nil
}

// newTAXIIServer makes sure every configured collection exists (ids are
// assigned once and kept, taxii21.md D-19), finds the cursor secret and
// builds the handler.
func newTAXIIServer(ctx context.Context, e *env, cfg *config.Config, store *storage.Store, health func() tcsync.Health, o *ops) (*taxii.Server, error) {
	if o == nil {
		o = newOps(e, &config.Config{Storage: cfg.Storage}, store)
	}
	for i, c := range cfg.TAXII.Collections {
		_, err := store.EnsureCollection(ctx, storage.Collection{Alias: c.Alias, Title: c.DisplayTitle(), Description: c.Description, Kind: c.Kind(), CanWrite: c.Writable})
		if err != nil {
			return nil, fmt.Errorf("taxii.collections[%d] %q: %w", i, c.Alias, err)
		}
	}
	secret, err := cursorSecret(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	tc := taxii.Config{
		Title:            cfg.TAXII.Title,
		Description:      cfg.TAXII.Description,
		Contact:          cfg.TAXII.Contact,
		APIRoot:          cfg.TAXII.APIRoot,
		DefaultPageSize:  cfg.TAXII.DefaultPageSize,
		MaxPageSize:      cfg.TAXII.MaxPageSize,
		MaxContentLength: cfg.TAXII.MaxContentLength,
		// Issue 14: bounded work per POST and bounded status resources.
		MaxObjectsPerPost: cfg.TAXII.MaxObjectsPerPost,
		StatusRetention:   cfg.TAXII.StatusRetention.D(),
		CursorSecret:      secret,
		Ready:             o.readiness(store, health),
		ReadyDetails:      o.readyDetails(),

		Observer:         o.observer(),
		OnServerError:    o.health.report,
		RateLimit:        *rateLimit(&cfg.TAXII.RateLimit),
		AuthFailureLimit: *rateLimit(&cfg.TAXII.AuthFailureLimit),
		DisableGzip:      !cfg.TAXII.Gzip,
		Status:           taxii.StatusSource{Settings: settings(cfg), Version: versionLine()},
	}
	if health != nil {
		tc.Status.SyncRuns = o.runs.list
	}
	for _, u := range cfg.TAXII.Users {
		tc.Users = append(tc.Users, taxii.User{Name: u.Name, PasswordHash: u.PasswordHash, Read: u.Read, Write: u.Write, MaxTLP: u.MaxTLP.Level, EmptyList: u.EmptyList,
			Profile: u.Profile, RateLimit: rateLimit(u.RateLimit), Admin: u.Admin, BootstrapCurrent: u.Bootstrap == "current"})
	}
	for _, k := range cfg.TAXII.APIKeys {
		tc.APIKeys = append(tc.APIKeys, taxii.APIKey{Name: k.Name, KeySHA256: k.KeySHA256, Read: k.Read, Write: k.Write, MaxTLP: k.MaxTLP.Level, EmptyList: k.EmptyList,
			Profile: k.Profile, RateLimit: rateLimit(k.RateLimit), Admin: k.Admin, BootstrapCurrent: k.Bootstrap == "current"})
	}
	if len(tc.Users) == 0 && len(tc.APIKeys) == 0 {
		e.Log.Warn("no taxii.users or taxii.api_keys configured: every TAXII request will be refused with 401")
	}
	srv, err := taxii.New(store, tc, e.Log)
	if err != nil {
		return nil, usageErr(err)
	}
	return srv, nil
}

// cursorSecret returns taxii.cursor_secret when set, else the secret kept in
// the database, generating and storing 32 random bytes on first use so
// cursors stay valid across restarts (taxii21.md D-8, C-7).
func cursorSecret(ctx context.Context, cfg *config.Config, store *storage.Store) ([]byte, error) {
	if s := cfg.TAXII.CursorSecret.Reveal(); s != "" {
		if len(s) < config.MinCursorSecret {
			return nil, usageErrorf("taxii.cursor_secret: %d bytes, want at least %d", len(s), config.MinCursorSecret)
		}
		return []byte(s), nil
	}
	var secret []byte
	err := store.Update(ctx, func(tx *storage.Tx) error {
		v, ok, err := tx.State(cursorSecretKey)
		if err != nil {
			return err
		}
		if ok && len(v) >= config.MinCursorSecret {
			secret = v
			return nil
		}
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		return tx.SetState(cursorSecretKey, secret)
	})
	if err != nil {
		return nil, fmt.Errorf("cursor secret: %w", err)
	}
	return secret, nil
}
