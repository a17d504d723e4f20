package tcsync

import (
	"log/slog"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// Options configure a Worker.
type Options struct {
	Sync Sync
	// Collections are the configured extra collections: those of kind
	// kind.Filter are fed, the others only keep their alias from owner
	// collections.
	Collections []Collection
	// PerOwnerCollections gives every ThreatConnect owner its own collection;
	// otherwise everything goes to one collection with alias "threatconnect".
	PerOwnerCollections bool
	Mapper              *stixmap.Mapper
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Progress, when set, is called after every committed batch.
	Progress func(Progress)
	// ReconcileInterval is how often RunScheduled reconciles (see
	// Reconcile); zero never does.
	ReconcileInterval time.Duration
	// VersionRetention, when positive, makes RunScheduled drop non-latest
	// versions added longer ago than this after each reconciliation.
	VersionRetention time.Duration
	// OnRun, when set, is called after every run (incremental or
	// reconciliation) with its start, summary and error: metrics, history.
	OnRun func(started time.Time, sum Summary, err error)
	// Fence, when set, is called first in every write transaction the
	// worker runs (each Store.Update); an error fails the transaction, so
	// nothing of it is written. Scale-out sets it to the leader's fence
	// check (leader.Fence.Check), so a replica whose term is over cannot
	// write even when a write races the loss of leadership. The worker's
	// EnsureCollection and Maintain calls are not Updates and are not
	// fenced; both are idempotent.
	Fence func(tx *storage.Tx) error
}

// Sync selects what the worker pulls from ThreatConnect and how often (the
// configuration's sync section).
type Sync struct {
	// Interval is the time between runs of Run (default 15m when zero).
	Interval time.Duration
	// FirstFetch is how far back a stream's first window reaches; zero
	// reads everything.
	FirstFetch time.Duration
	// Owners are owner names; empty means the API user's own organization
	// (the seed's default), ["*"] every owner the credentials can read.
	Owners              []string
	Tags                []string
	IndicatorTypes      []string // ["All"] or ThreatConnect type names; empty syncs no indicators
	GroupTypes          []string // ["All"] or ThreatConnect group type names; empty syncs no groups
	ActiveOnly          bool
	CreateRelationships bool
	// TQL replaces the generated indicator filters; GroupTQL the group
	// filters. Neither is sent to the other endpoint.
	TQL      string
	GroupTQL string
	// ConfidenceThreshold and ThreatAssessScoreThreshold are minimums
	// (value >= threshold) for indicators; 0 turns them off.
	ConfidenceThreshold        int
	ThreatAssessScoreThreshold int
	// PageSize is the indicators asked for per page (default 1000 when not
	// positive); group pages hold at most 250.
	PageSize            int
	Exclusions          Exclusions
	BypassExclusionList bool
}

// DefaultSync returns the sync settings of a default configuration
// (config.Default().Sync, which cmd checks it agrees with).
func DefaultSync() Sync {
	return Sync{
		Interval:            15 * time.Minute,
		FirstFetch:          30 * 24 * time.Hour,
		IndicatorTypes:      []string{"All"},
		GroupTypes:          []string{"All"},
		ActiveOnly:          true,
		CreateRelationships: true,
		PageSize:            1000,
	}
}

// Exclusions are values never published, typically benign infrastructure.
type Exclusions struct {
	Values  []string // exact values, case-insensitive
	CIDRs   []string // addresses and CIDR blocks; an indicator inside one is excluded
	Domains []string // a host, URL host or e-mail domain equal to or below one is excluded
}

// Collection is a configured collection as the worker sees it, its title
// and kind already decided.
type Collection struct {
	Alias       string
	Title       string // as served
	Description string
	Kind        string // kind.Filter for a collection the worker feeds
	Filter      Filter
}

// Filter decides, at write time, which synced objects a filter collection
// holds. Empty lists match everything.
type Filter struct {
	Owners        []string
	MaxTLP        tlp.Level // tlp.None: no limit
	STIXTypes     []string
	Tags          []string
	MinConfidence int
}
