package taxii_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/taxii"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// A standalone TAXII 2.1 server over a SQLite file: one writable collection,
// one Basic user capped at TLP:AMBER, served until interrupted.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	store, err := storage.Open(ctx, "taxii.db")
	if err != nil {
		log.Error("open database", "err", err)
		return
	}
	defer store.Close()
	if _, err := store.EnsureCollection(ctx, storage.Collection{Alias: "submissions", Title: "Submissions", Kind: "local", CanWrite: true}); err != nil {
		log.Error("ensure collection", "err", err)
		return
	}
	srv, err := taxii.New(store, taxii.Config{
		Title:        "Example TAXII server",
		APIRoot:      "api",
		CursorSecret: []byte("replace with 32 random bytes...."),
		Users: []taxii.User{{
			Name:         "analyst",
			PasswordHash: "$2a$12$...", // from `taxii-bridge hash-password`
			Read:         []string{"*"},
			Write:        []string{"submissions"},
			MaxTLP:       tlp.Amber,
		}},
	}, log)
	if err != nil {
		log.Error("configure TAXII", "err", err)
		return
	}
	if err := taxii.ListenAndServe(ctx, "127.0.0.1:8080", srv, taxii.ServeOptions{Log: log}); err != nil {
		log.Error("serve", "err", err)
	}
}
