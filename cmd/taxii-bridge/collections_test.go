package main

import (
	"encoding/json"
	"github.com/taxii-bridge/taxii-bridge/kind"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
)

// A filter collection configured without a title is served with its alias
// as title, and one with a title keeps it: at start, after every sync, and
// after a restart (the store reopened, the server built again). TAXII
// requires a title, and OpenCTI matches collections by it.
func TestFilterCollectionKeepsItsTitle(t *testing.T) {
	ctx := t.Context()
	e, cfg, store, _ := opsFixture(t, "")
	cfg.TAXII.Collections = append(cfg.TAXII.Collections,
		config.Collection{Alias: "amber", Title: "Up to AMBER"},
		config.Collection{Alias: "inbox", Writable: true})
	want := map[string]struct{ title, kind string }{
		"tlp-green": {"tlp-green", kind.Filter}, // no title configured: the alias
		"amber":     {"Up to AMBER", kind.Filter},
		"inbox":     {"inbox", kind.Local},
	}
	check := func(when string, store *storage.Store) {
		t.Helper()
		cols, err := store.Collections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, c := range cols {
			w, ok := want[c.Alias]
			if !ok {
				if c.Kind != kind.Owner || c.Title == "" {
					t.Errorf("%s: collection %q: kind %q title %q, want an owner collection with a title", when, c.Alias, c.Kind, c.Title)
				}
				continue
			}
			seen++
			if c.Title != w.title || c.Kind != w.kind {
				t.Errorf("%s: collection %q: title %q kind %q, want %q %q", when, c.Alias, c.Title, c.Kind, w.title, w.kind)
			}
		}
		if seen != len(want) {
			t.Errorf("%s: %d of the %d configured collections stored", when, seen, len(want))
		}
	}
	run := func(when string, store *storage.Store) {
		t.Helper()
		o := newOps(e, cfg, store)
		srv, err := newTAXIIServer(ctx, e, cfg, store, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		check(when+", server built", store)
		w, err := newWorker(ctx, e, cfg, store, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatalf("%s: sync %d: %v", when, i+1, err)
			}
			check(when+", after a sync", store)
		}
		req := httptest.NewRequest(http.MethodGet, "/threatconnect/collections/", nil)
		req.SetBasicAuth("demo", "demo-password")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var body struct {
			Collections []struct{ Title string }
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			t.Fatalf("%s: GET collections = %d %s", when, rec.Code, rec.Body.String())
		}
		for _, c := range body.Collections {
			if c.Title == "" {
				t.Errorf("%s: a collection is served with an empty title: %s", when, rec.Body.String())
			}
		}
	}
	run("first start", store)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := storage.Open(ctx, cfg.Storage.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	run("after a restart", again)
}
