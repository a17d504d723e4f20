package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// newTCClient builds the ThreatConnect client from the configuration; the
// secrets are revealed here and nowhere else.
func newTCClient(cfg *config.Config, log *slog.Logger) (*tcapi.Client, error) {
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

// newWorker wires client, mapper and store into a sync worker.
func newWorker(ctx context.Context, e *env, cfg *config.Config, store *storage.Store, progress func(tcsync.Progress)) (*tcsync.Worker, error) {
	client, err := newTCClient(cfg, e.Log)
	if err != nil {
		return nil, err
	}
	m, err := newMapper(cfg)
	if err != nil {
		return nil, err
	}
	return tcsync.New(client, store, tcsync.Options{
		Sync:                cfg.Sync,
		Collections:         cfg.TAXII.Collections,
		PerOwnerCollections: cfg.TAXII.PerOwnerCollections,
		Mapper:              m,
		Log:                 e.Log,
		Progress:            progress,
	})
}
