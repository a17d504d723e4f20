package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

func init() {
	register(command{
		name:    "export",
		summary: "Write one STIX 2.1 bundle of a collection's latest versions, streamed",
		run:     runExport,
	})
}

func runExport(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("export")
	path := configFlag(fs)
	colName := fs.String("collection", "", "collection `alias or id` (required)")
	after := fs.String("added-after", "", "only objects added after this `timestamp` (RFC 3339)")
	out := fs.String("o", "", "write to `file` instead of stdout (written whole or not at all)")
	maxTLP := fs.String("max-tlp", "", "leave out objects marked above this TLP `level` (e.g. GREEN for a community); default: everything")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *colName == "" {
		return usageErrorf("-collection is required")
	}
	var addedAfter int64
	if *after != "" {
		t, err := time.Parse(time.RFC3339Nano, *after)
		if err != nil {
			return usageErrorf("-added-after: want an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, got %q", *after)
		}
		addedAfter = t.UnixMicro()
	}
	limit := tlp.Red
	if *maxTLP != "" {
		l, err := tlp.Parse(*maxTLP)
		if err != nil {
			return usageErrorf("-max-tlp: %v", err)
		}
		limit = l
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	if !cfg.Storage.Postgres() {
		if _, err := os.Stat(cfg.Storage.Path); err != nil {
			return fmt.Errorf("open database %s: %w (run sync first)", cfg.Storage.Path, err)
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	col, err := store.Collection(ctx, *colName)
	if errors.Is(err, storage.ErrNotFound) {
		return usageErrorf("no collection %q (see the collections at the TAXII API root)", *colName)
	}
	if err != nil {
		return fmt.Errorf("look up collection: %w", err)
	}

	if *out == "" {
		n, err := writeBundle(ctx, e.Stdout, store, col.ID, addedAfter, limit)
		if err != nil {
			return err
		}
		e.Log.Info("exported", "collection", col.Alias, "objects", n)
		return nil
	}
	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, ".export-*.json")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := writeBundle(ctx, tmp, store, col.ID, addedAfter, limit)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	e.Log.Info("exported", "collection", col.Alias, "objects", n, "file", *out)
	return nil
}

// writeBundle streams the latest version of every object of a collection
// marked at most maxTLP as one STIX 2.1 bundle (stixmap.BundleWriter), page
// by page, copying the stored bytes as they are.
func writeBundle(ctx context.Context, w io.Writer, store *storage.Store, colID string, addedAfter int64, maxTLP tlp.Level) (int, error) {
	bw := stixmap.NewBundleWriter(w, stixmap.NewBundleID())
	q := storage.Query{CollectionID: colID, AddedAfter: addedAfter, MaxTLP: int(maxTLP), Limit: 1000}
	for {
		page, err := store.Objects(ctx, q)
		if err != nil {
			return bw.Count(), fmt.Errorf("read collection: %w", err)
		}
		for _, it := range page.Items {
			if err := bw.Write(it.JSON); err != nil {
				return bw.Count(), err
			}
		}
		if !page.More || len(page.Items) == 0 {
			break
		}
		last := page.Items[len(page.Items)-1].Key
		q.After = &last
	}
	return bw.Count(), bw.Close()
}
