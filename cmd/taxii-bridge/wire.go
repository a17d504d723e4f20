package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// newTCClient builds the ThreatConnect client from the configuration; the
// secrets are revealed here and nowhere else.
func newTCClient(cfg *config.Config, log *slog.Logger) (*tcapi.Client, error) {
	return newObservedTCClient(cfg, log, nil)
}

// newObservedTCClient is newTCClient with every exchange reported to
// observe (metrics), when not nil.
func newObservedTCClient(cfg *config.Config, log *slog.Logger, observe func(int, error, time.Duration)) (*tcapi.Client, error) {
	tc := cfg.ThreatConnect
	if !tc.Enabled() {
		return nil, usageErrorf("threatconnect.base_url is not set in the configuration")
	}
	c, err := tcapi.New(tcapi.Options{
		BaseURL:            tc.BaseURL,
		AccessID:           tc.AccessID,
		SecretKey:          tc.SecretKey.Reveal(),
		APIToken:           tc.APIToken.Reveal(),
		Timeout:            tc.Timeout.D(),
		RequestsPerSecond:  tc.RequestsPerSecond,
		MaxRetries:         tc.MaxRetries,
		Proxy:              tc.Proxy,
		InsecureSkipVerify: tc.InsecureSkipVerify,
		Log:                log,
		Observe:            observe,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// newMapper builds the STIX mapper from the stix section.
func newMapper(cfg *config.Config) (*stixmap.Mapper, error) {
	m, err := stixmap.New(stixmap.Options{
		BaseURL:             cfg.ThreatConnect.BaseURL,
		TLPMode:             cfg.STIX.TLPMode,
		DefaultTLP:          cfg.STIX.DefaultTLP.Level,
		IndicatorReputation: cfg.STIX.IndicatorReputation,
		SourceReliability:   cfg.STIX.SourceReliability,
		FeedTags:            cfg.STIX.FeedTags,
		ContextLabels:       cfg.STIX.ContextLabels,
		OpenCTI:             cfg.STIX.OpenCTI,
	})
	if err != nil {
		return nil, usageErr(fmt.Errorf("stix: %w", err))
	}
	return m, nil
}

// newWorker wires client, mapper and store into a sync worker; o, when not
// nil, receives the ThreatConnect client's exchanges and the newest
// lastModified seen (metrics).
func newWorker(ctx context.Context, e *env, cfg *config.Config, store *storage.Store, progress func(tcsync.Progress), o *ops) (*tcsync.Worker, error) {
	var observe func(int, error, time.Duration)
	if o != nil && o.metrics != nil {
		observe = o.metrics.TCRequest
	}
	client, err := newObservedTCClient(cfg, e.Log, observe)
	if err != nil {
		return nil, err
	}
	var src tcsync.Source = client
	if o != nil && o.metrics != nil {
		src = modifiedSource{Source: client, seen: o.metrics.TCModified}
	}
	m, err := newMapper(cfg)
	if err != nil {
		return nil, err
	}
	if err := preflightTQL(ctx, e, client, cfg); err != nil {
		return nil, err
	}
	opt := syncOptions(cfg)
	opt.Mapper = m
	opt.Log = e.Log
	opt.Progress = progress
	opt.OnRun = o.recordRun
	if o != nil && o.fence != nil {
		opt.Fence = o.fence.Check
	}
	return tcsync.New(src, store, opt)
}

// syncOptions translates the configuration into the worker's options: the
// sync section, the configured collections with their served title and kind
// decided, and the settings of other sections the worker reads. The caller
// adds the mapper, the log and the callbacks.
func syncOptions(cfg *config.Config) tcsync.Options {
	s := cfg.Sync
	var cols []tcsync.Collection
	for _, c := range cfg.TAXII.Collections {
		f := c.Filter
		cols = append(cols, tcsync.Collection{
			Alias:       c.Alias,
			Title:       c.DisplayTitle(),
			Description: c.Description,
			Kind:        c.Kind(),
			Filter: tcsync.Filter{
				Owners:        f.Owners,
				MaxTLP:        f.MaxTLP.Level,
				STIXTypes:     f.STIXTypes,
				Tags:          f.Tags,
				MinConfidence: f.MinConfidence,
			},
		})
	}
	return tcsync.Options{
		Sync: tcsync.Sync{
			Interval:                   s.Interval.D(),
			FirstFetch:                 s.FirstFetch.D(),
			Owners:                     s.Owners,
			Tags:                       s.Tags,
			IndicatorTypes:             s.IndicatorTypes,
			GroupTypes:                 s.GroupTypes,
			ActiveOnly:                 s.ActiveOnly,
			CreateRelationships:        s.CreateRelationships,
			TQL:                        s.TQL,
			GroupTQL:                   s.GroupTQL,
			ConfidenceThreshold:        s.ConfidenceThreshold,
			ThreatAssessScoreThreshold: s.ThreatAssessScoreThreshold,
			PageSize:                   s.PageSize,
			Exclusions: tcsync.Exclusions{
				Values:  s.Exclusions.Values,
				CIDRs:   s.Exclusions.CIDRs,
				Domains: s.Exclusions.Domains,
			},
			BypassExclusionList: s.BypassExclusionList,
		},
		Collections:         cols,
		PerOwnerCollections: cfg.TAXII.PerOwnerCollections,
		ReconcileInterval:   s.ReconcileInterval.D(),
		VersionRetention:    cfg.Storage.VersionRetention.D(),
	}
}

// The store is what the worker needs of it.
var _ tcsync.Store = (*storage.Store)(nil)

// preflightTimeout bounds the start-up TQL check.
const preflightTimeout = 15 * time.Second

// preflightTQL checks, before any sync, that ThreatConnect accepts the
// queries the sync will send (sync.tql, sync.group_tql and the generated
// filters): a rejection is a configuration error (exit 2) carrying
// ThreatConnect's message. When ThreatConnect cannot be reached the check is
// skipped with a warning — serve keeps serving what is stored and the worker
// retries — so only a definite rejection stops the start, and the check
// gives up after preflightTimeout so an outage does not delay serving.
func preflightTQL(ctx context.Context, e *env, client *tcapi.Client, cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, min(cfg.ThreatConnect.Timeout.D(), preflightTimeout))
	defer cancel()
	owners, err := client.Owners(ctx)
	if err != nil {
		e.Log.Warn("cannot check the sync's TQL before starting; ThreatConnect not reachable", "err", err)
		return nil
	}
	scope, err := tcapi.OwnerScope(cfg.Sync.Owners, owners)
	if err != nil {
		return usageErr(err)
	}
	e.Log.Info("sync owners", "owners", describeOwnerScope(cfg.Sync.Owners, scope, len(owners)))
	for q, v := range probeQueries(ctx, client, syncQueries(cfg, scope)) {
		switch {
		case v.err == nil:
		case v.rejected != "":
			return usageErrorf("%s", v.rejected)
		default:
			e.Log.Warn("cannot check the sync's TQL before starting", "query", q.name, "err", v.err)
		}
	}
	return nil
}
