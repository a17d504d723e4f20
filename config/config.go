// Package config is taxii-bridge's configuration: one typed struct for the
// whole YAML schema of DESIGN.md §4, its defaults, the environment overrides
// for secrets, and validation.
//
// Loading is Parse(reader) → defaults overlaid by the YAML (unknown keys are
// errors) → ApplyEnv (secrets from TC_ACCESS_ID, TC_SECRET_KEY, TC_API_TOKEN,
// TAXII_BRIDGE_CURSOR_SECRET, TAXII_BRIDGE_POSTGRES_PASSWORD) → Validate, which gathers every problem into one
// *ValidationError whose lines read "key.path: problem".
//
// Secrets are held in the Secret type, whose String, GoString, Format,
// MarshalText, MarshalJSON and LogValue all print "[redacted]"; the only way
// to read one is Reveal, so a secret cannot reach a log line or an error by
// accident. Durations accept Go syntax plus whole days ("30d").
package config

import (
	"github.com/taxii-bridge/taxii-bridge/kind"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// Config is the whole configuration file.
type Config struct {
	Storage       Storage       `yaml:"storage"`
	ThreatConnect ThreatConnect `yaml:"threatconnect"`
	Sync          Sync          `yaml:"sync"`
	STIX          STIX          `yaml:"stix"`
	TAXII         TAXII         `yaml:"taxii"`
	Metrics       Metrics       `yaml:"metrics"`

	parseProblems []string // unknown keys and wrongly typed values, reported by Validate
	// storagePathSet records that the file set storage.path, which
	// storage.postgres_url excludes.
	storagePathSet bool
}

// Storage selects the backend: the SQLite file at Path (the default), or
// the PostgreSQL database at PostgresURL, which any number of serve
// replicas share (docs/scale-out.md).
type Storage struct {
	Path string `yaml:"path"`
	// PostgresURL is a postgres:// (or postgresql://) URL. It is a Secret
	// because it may carry the password; PostgresConnString is the one
	// place that reveals it, PostgresDisplay the form to print.
	PostgresURL Secret `yaml:"postgres_url"`
	// PostgresPassword, from EnvPostgresPassword only (never the file),
	// replaces any password in PostgresURL.
	PostgresPassword Secret `yaml:"-"`
	// VersionRetention drops non-latest versions added longer ago than this,
	// once a day (taxii21.md D-5, D-6); zero keeps every version.
	VersionRetention Duration `yaml:"version_retention"`
}

// ThreatConnect is how to reach and authenticate to the ThreatConnect API v3.
// Either AccessID and SecretKey (HMAC) or APIToken is used; HMAC wins when both are set.
type ThreatConnect struct {
	BaseURL            string   `yaml:"base_url"`
	AccessID           string   `yaml:"access_id"`
	SecretKey          Secret   `yaml:"secret_key"`
	APIToken           Secret   `yaml:"api_token"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	Proxy              string   `yaml:"proxy"`
	Timeout            Duration `yaml:"timeout"`
	RequestsPerSecond  float64  `yaml:"requests_per_second"`
	MaxRetries         int      `yaml:"max_retries"`
}

// Enabled reports whether a ThreatConnect source is configured at all; without
// one, serve runs a standalone TAXII server.
func (t ThreatConnect) Enabled() bool { return t.BaseURL != "" }

// Sync selects what the sync worker pulls from ThreatConnect and how often.
type Sync struct {
	Interval   Duration `yaml:"interval"`
	FirstFetch Duration `yaml:"first_fetch"`
	// ReconcileInterval is how often a sync re-reads everything to find
	// association changes and deleted groups, which lastModified does not
	// show (DESIGN.md §10); zero never does.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// Owners are owner names; empty means the API user's own organization
	// (the seed's default), ["*"] every owner the credentials can read.
	Owners              []string `yaml:"owners"`
	Tags                []string `yaml:"tags"`
	IndicatorTypes      []string `yaml:"indicator_types"`
	GroupTypes          []string `yaml:"group_types"`
	ActiveOnly          bool     `yaml:"active_only"`
	CreateRelationships bool     `yaml:"create_relationships"`
	// TQL replaces the generated indicator filters; GroupTQL the group
	// filters. Neither is sent to the other endpoint.
	TQL      string `yaml:"tql"`
	GroupTQL string `yaml:"group_tql"`
	// ConfidenceThreshold and ThreatAssessScoreThreshold are minimums
	// (value >= threshold) for indicators; 0 turns them off.
	ConfidenceThreshold        int        `yaml:"confidence_threshold"`
	ThreatAssessScoreThreshold int        `yaml:"threat_assess_score_threshold"`
	PageSize                   int        `yaml:"page_size"`
	Exclusions                 Exclusions `yaml:"exclusions"`
	BypassExclusionList        bool       `yaml:"bypass_exclusion_list"`
}

// Exclusions are values never published, typically benign infrastructure.
type Exclusions struct {
	Values  []string `yaml:"values"`
	CIDRs   []string `yaml:"cidrs"`
	Domains []string `yaml:"domains"`
}

// STIX shapes the STIX 2.1 output.
type STIX struct {
	TLPMode             string   `yaml:"tlp_mode"`
	DefaultTLP          TLP      `yaml:"default_tlp"`
	IndicatorReputation string   `yaml:"indicator_reputation"`
	SourceReliability   string   `yaml:"source_reliability"`
	FeedTags            []string `yaml:"feed_tags"`
	// ContextLabels adds to each indicator one label per associated group,
	// "<stix type>:<name>" (threat-actor:APT28, malware:Emotet), for
	// consumers that keep only indicator objects.
	ContextLabels bool `yaml:"context_labels"`
	// OpenCTI adds OpenCTI's conventions: x_opencti_score from the
	// ThreatAssess score.
	OpenCTI bool `yaml:"opencti"`
}

// TAXII configures the TAXII 2.1 server.
type TAXII struct {
	Listen           string `yaml:"listen"`
	TLSCertFile      string `yaml:"tls_cert_file"`
	TLSKeyFile       string `yaml:"tls_key_file"`
	Title            string `yaml:"title"`
	Description      string `yaml:"description"`
	Contact          string `yaml:"contact"`
	APIRoot          string `yaml:"api_root"`
	DefaultPageSize  int    `yaml:"default_page_size"`
	MaxPageSize      int    `yaml:"max_page_size"`
	MaxContentLength int64  `yaml:"max_content_length"`
	// MaxObjectsPerPost is the most objects one POSTed envelope may hold;
	// a larger envelope is refused whole before any object is checked.
	MaxObjectsPerPost int `yaml:"max_objects_per_post"`
	// StatusRetention is how long the status resource of a POST stays
	// readable (at least 24h, taxii21.md S-8.3, X-3).
	StatusRetention     Duration     `yaml:"status_retention"`
	CursorSecret        Secret       `yaml:"cursor_secret"`
	PerOwnerCollections bool         `yaml:"per_owner_collections"`
	Collections         []Collection `yaml:"collections"`
	Users               []User       `yaml:"users"`
	APIKeys             []APIKey     `yaml:"api_keys"`

	// Operations (issue 11).
	RateLimit        RateLimit `yaml:"rate_limit"`         // per principal, unless it sets its own
	AuthFailureLimit RateLimit `yaml:"auth_failure_limit"` // failed authentications per source address
	Gzip             bool      `yaml:"gzip"`               // compress responses for clients that accept it
}

// Collection is an extra collection: a filter over the synced data, or a
// local writable collection (Writable) that clients POST to and TC never feeds.
type Collection struct {
	Alias       string `yaml:"alias"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Writable    bool   `yaml:"writable"`
	Filter      Filter `yaml:"filter"`
}

// Kind is the kind of a configured collection: kind.Local when it is
// writable, kind.Filter otherwise.
func (c Collection) Kind() string {
	if c.Writable {
		return kind.Local
	}
	return kind.Filter
}

// DisplayTitle is the title the collection is served with: the configured
// one, or the alias when none is configured (TAXII requires a title, and
// clients such as OpenCTI match collections by it).
func (c Collection) DisplayTitle() string {
	if t := strings.TrimSpace(c.Title); t != "" {
		return t
	}
	return c.Alias
}

// Filter decides, at write time, which synced objects a filter collection holds.
// Empty lists match everything.
type Filter struct {
	Owners        []string `yaml:"owners"`
	MaxTLP        TLP      `yaml:"max_tlp"`
	STIXTypes     []string `yaml:"stix_types"`
	Tags          []string `yaml:"tags"`
	MinConfidence int      `yaml:"min_confidence"`
}

// User is a TAXII client authenticated by HTTP Basic.
type User struct {
	Name         string   `yaml:"name"`
	PasswordHash string   `yaml:"password_hash"`
	Read         []string `yaml:"read"`
	Write        []string `yaml:"write"`
	MaxTLP       TLP      `yaml:"max_tlp"`
	// EmptyList answers an empty listing with "objects": [] instead of {}
	// for clients that cannot parse the latter (taxii21.md C-16).
	EmptyList bool `yaml:"empty_list"`

	// Operations (issue 11).
	Profile   string     `yaml:"profile"`    // client wire profile (ProfileNames)
	RateLimit *RateLimit `yaml:"rate_limit"` // replaces taxii.rate_limit for this principal
	Admin     bool       `yaml:"admin"`      // may read /admin/status
	// Bootstrap is "all" (the default) or "current": a poll without
	// added_after then serves only current objects (not revoked, not past
	// valid_until); polls with added_after serve everything.
	Bootstrap string `yaml:"bootstrap"`
}

// APIKey is a TAXII client authenticated by "Authorization: Bearer <key>"
// (or "Token <key>"); only the key's SHA-256 is configured.
type APIKey struct {
	Name      string   `yaml:"name"`
	KeySHA256 string   `yaml:"key_sha256"`
	Read      []string `yaml:"read"`
	Write     []string `yaml:"write"`
	MaxTLP    TLP      `yaml:"max_tlp"`
	EmptyList bool     `yaml:"empty_list"` // as User.EmptyList

	// Operations (issue 11), as for User.
	Profile   string     `yaml:"profile"`
	RateLimit *RateLimit `yaml:"rate_limit"`
	Admin     bool       `yaml:"admin"`
	Bootstrap string     `yaml:"bootstrap"` // as User.Bootstrap
}

// RateLimit is a token bucket: requests_per_second sustained, burst at
// once. requests_per_second 0 means no limit.
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is where /metrics is served, separately from TAXII; empty
	// (the default) serves no metrics.
	Listen string `yaml:"listen"`
}

// ProfileNames are the client profiles a principal may name (taxii.ProfileNames).
var ProfileNames = []string{"default", "elastic", "misp", "opencti", "sentinel", "splunk", "xsoar"}

// Default returns the configuration with every default of DESIGN.md §4 filled in.
func Default() Config {
	return Config{
		Storage: Storage{Path: "taxii-bridge.db"},
		ThreatConnect: ThreatConnect{
			Timeout:           Dur(60 * time.Second),
			RequestsPerSecond: 10,
			MaxRetries:        5,
		},
		Sync: Sync{
			Interval:            Dur(15 * time.Minute),
			FirstFetch:          Dur(30 * 24 * time.Hour),
			ReconcileInterval:   Dur(24 * time.Hour),
			IndicatorTypes:      []string{"All"},
			GroupTypes:          []string{"All"},
			ActiveOnly:          true,
			CreateRelationships: true,
			PageSize:            1000,
		},
		STIX: STIX{TLPMode: "compat"},
		TAXII: TAXII{
			Listen:              "127.0.0.1:8080",
			Title:               "ThreatConnect TAXII bridge",
			APIRoot:             "threatconnect",
			DefaultPageSize:     1000,
			MaxPageSize:         10000,
			MaxContentLength:    10 << 20,
			MaxObjectsPerPost:   10000,
			StatusRetention:     Dur(7 * 24 * time.Hour),
			PerOwnerCollections: true,
			AuthFailureLimit:    RateLimit{RequestsPerSecond: 0.2, Burst: 10},
			Gzip:                true,
		},
	}
}

// TLP is a tlp.Level read from YAML by name ("AMBER", "TLP:RED", "WHITE");
// empty means tlp.None. A bad name is kept and reported by Validate with its
// key path, so one run names every bad key.
type TLP struct {
	tlp.Level
	bad string
}

// UnmarshalText parses a TLP name; it never fails (see TLP).
func (t *TLP) UnmarshalText(b []byte) error {
	t.Level, t.bad = tlp.None, ""
	if len(b) == 0 {
		return nil
	}
	l, err := tlp.Parse(string(b))
	if err != nil {
		t.bad = string(b)
		return nil
	}
	t.Level = l
	return nil
}

// MarshalText writes the TLP name.
func (t TLP) MarshalText() ([]byte, error) { return []byte(t.Level.String()), nil }

func (t TLP) check() error {
	if t.bad != "" {
		_, err := tlp.Parse(t.bad)
		return err
	}
	return nil
}
