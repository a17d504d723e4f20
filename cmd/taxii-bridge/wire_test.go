package main

import (
	"github.com/taxii-bridge/taxii-bridge/kind"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// syncElsewhere names the config.Sync fields that syncOptions carries into
// an Options field rather than into the tcsync.Sync field of the same name.
var syncElsewhere = map[string]string{
	"Sync.ReconcileInterval": "ReconcileInterval",
}

// TestSyncOptions_CarriesEverySyncField sets each field of config.Sync alone
// and checks that syncOptions carries its value into exactly one option: the
// tcsync.Sync field of the same name (or the one syncElsewhere names). A
// field added to config.Sync and not translated fails here.
func TestSyncOptions_CarriesEverySyncField(t *testing.T) {
	var cfg config.Config
	n := 0
	leaves(reflect.ValueOf(&cfg.Sync).Elem(), "Sync", func(path string, f reflect.Value) {
		n++
		sample, want := sampleValue(t, path, f)
		f.Set(sample)
		defer f.SetZero()

		target := path
		if p, ok := syncElsewhere[path]; ok {
			target = p
		}
		var set []string
		opt := syncOptions(&cfg)
		leaves(reflect.ValueOf(&opt).Elem(), "", func(p string, v reflect.Value) {
			if !v.IsZero() {
				set = append(set, p)
			}
			if p == target && !reflect.DeepEqual(v.Interface(), want) {
				t.Errorf("config.%s = %v gives tcsync.Options.%s = %#v; want %#v", path, sample, p, v.Interface(), want)
			}
		})
		if !slices.Equal(set, []string{target}) {
			t.Errorf("config.%s set alone gives the options %v; want only %s (translate it in syncOptions, "+
				"as a tcsync.Sync field of the same name or a line in syncElsewhere)", path, set, target)
		}
	})
	if n < 15 {
		t.Errorf("walked %d fields of config.Sync; the walk is broken", n)
	}
}

// TestSyncOptions_CarriesEveryCollectionField sets each field of a
// configured collection alone and checks that the worker's collection
// changes with it.
func TestSyncOptions_CarriesEveryCollectionField(t *testing.T) {
	base := syncOptions(&config.Config{TAXII: config.TAXII{Collections: []config.Collection{{}}}}).Collections[0]
	var c config.Collection
	leaves(reflect.ValueOf(&c).Elem(), "Collection", func(path string, f reflect.Value) {
		sample, _ := sampleValue(t, path, f)
		f.Set(sample)
		defer f.SetZero()
		got := syncOptions(&config.Config{TAXII: config.TAXII{Collections: []config.Collection{c}}}).Collections[0]
		if reflect.DeepEqual(got, base) {
			t.Errorf("config.%s = %v does not reach the worker's collection (translate it in syncOptions)", path, sample)
		}
	})
}

func TestSyncOptions(t *testing.T) {
	cfg := config.Default()
	cfg.Storage.VersionRetention = config.Dur(90 * 24 * time.Hour)
	cfg.TAXII.Collections = []config.Collection{
		{Alias: "tlp-green", Filter: config.Filter{MaxTLP: config.TLP{Level: tlp.Green}}},
		{Alias: "apt", Title: " APT28 ", Description: "d", Filter: config.Filter{Owners: []string{"Org"},
			STIXTypes: []string{"indicator"}, Tags: []string{"apt28"}, MinConfidence: 30}},
		{Alias: "inbox", Title: "Inbox", Writable: true},
	}
	opt := syncOptions(&cfg)
	want := []tcsync.Collection{
		{Alias: "tlp-green", Title: "tlp-green", Kind: kind.Filter, Filter: tcsync.Filter{MaxTLP: tlp.Green}},
		{Alias: "apt", Title: "APT28", Description: "d", Kind: kind.Filter, Filter: tcsync.Filter{Owners: []string{"Org"},
			STIXTypes: []string{"indicator"}, Tags: []string{"apt28"}, MinConfidence: 30}},
		{Alias: "inbox", Title: "Inbox", Kind: kind.Local},
	}
	if !reflect.DeepEqual(opt.Collections, want) {
		t.Errorf("Collections = %+v; want %+v", opt.Collections, want)
	}
	if !opt.PerOwnerCollections {
		t.Error("PerOwnerCollections = false; want the default true")
	}
	if got, want := opt.ReconcileInterval, 24*time.Hour; got != want {
		t.Errorf("ReconcileInterval = %v; want %v", got, want)
	}
	if got, want := opt.VersionRetention, 90*24*time.Hour; got != want {
		t.Errorf("VersionRetention = %v; want %v", got, want)
	}
}

// The worker's defaults are the configuration's.
func TestSyncOptions_AgreeWithConfig(t *testing.T) {
	cfg := config.Default()
	if got, want := syncOptions(&cfg).Sync, tcsync.DefaultSync(); !reflect.DeepEqual(got, want) {
		t.Errorf("the default configuration's sync options = %+v; tcsync.DefaultSync() = %+v", got, want)
	}
}

var (
	durationType = reflect.TypeFor[config.Duration]()
	tlpType      = reflect.TypeFor[config.TLP]()
)

// leaves calls fn with every settable leaf under v, by dotted path: the
// fields of structs, except config's Duration and TLP, which are leaves.
func leaves(v reflect.Value, path string, fn func(path string, v reflect.Value)) {
	if v.Kind() != reflect.Struct || v.Type() == durationType || v.Type() == tlpType {
		fn(path, v)
		return
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		p := f.Name
		if path != "" {
			p = path + "." + f.Name
		}
		leaves(v.Field(i), p, fn)
	}
}

// sampleValue is a non-zero value for a config leaf, and what the worker's
// option should hold for it.
func sampleValue(t *testing.T, path string, f reflect.Value) (sample reflect.Value, want any) {
	t.Helper()
	switch {
	case f.Type() == durationType:
		return reflect.ValueOf(config.Dur(7 * time.Minute)), 7 * time.Minute
	case f.Type() == tlpType:
		return reflect.ValueOf(config.TLP{Level: tlp.Amber}), tlp.Amber
	case f.Kind() == reflect.String:
		return reflect.ValueOf("sample").Convert(f.Type()), "sample"
	case f.Kind() == reflect.Bool:
		return reflect.ValueOf(true), true
	case f.Kind() == reflect.Int:
		return reflect.ValueOf(7), 7
	case f.Type() == reflect.TypeFor[[]string]():
		return reflect.ValueOf([]string{"sample"}), []string{"sample"}
	}
	t.Fatalf("config.%s: no sample value for a %s; add one to sampleValue", path, f.Type())
	return reflect.Value{}, nil
}
