package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

var (
	aliasRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	apiRootRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	stixType  = regexp.MustCompile(`^[a-z][a-z0-9-]{1,249}$`)
)

// MinCursorSecret is the shortest cursor secret accepted, in bytes: the
// HMAC key of the TAXII paging cursors (taxii.cursor_secret, or the one the
// database keeps). The TAXII server refuses a shorter one too.
const MinCursorSecret = 16

// reservedRoots are the server's own first path segments, which an API root
// cannot take.
var reservedRoots = []string{"taxii2", "healthz", "readyz"}

// CheckAPIRoot returns an error when root cannot be the TAXII API root: it
// must be one path segment of letters, digits, '.', '_' or '-', so clients
// that name the root by its last path segment work (taxii21.md C-12), and
// none of the server's own paths. The TAXII server checks the same.
func CheckAPIRoot(root string) error {
	if !apiRootRE.MatchString(root) || slices.Contains(reservedRoots, root) {
		return fmt.Errorf("api root %q: want one path segment of up to 64 letters, digits, '.', '_' or '-', other than %s",
			root, strings.Join(reservedRoots, ", "))
	}
	return nil
}

type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

// Validate checks every value and returns a *ValidationError naming each bad
// key, or nil.
func (c *Config) Validate() error {
	p := problems(append([]string(nil), c.parseProblems...))
	if strings.TrimSpace(c.Storage.Path) == "" && !c.Storage.Postgres() {
		p.add("storage.path", "must not be empty")
	}
	c.validatePostgres(&p)
	checkDuration(&p, "storage.version_retention", c.Storage.VersionRetention)
	if d := c.Storage.VersionRetention; d.bad == "" && d.d != 0 && d.d < 24*time.Hour {
		p.add("storage.version_retention", "must be 0 (keep every version) or at least 24h (taxii21.md D-6), got %s", d)
	}
	c.validateTC(&p)
	c.validateSync(&p)
	c.validateSTIX(&p)
	c.validateTAXII(&p)
	c.validateOps(&p)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (c *Config) validateTC(p *problems) {
	tc := c.ThreatConnect
	if tc.BaseURL != "" {
		u, err := url.Parse(tc.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add("threatconnect.base_url", "must be an http(s) URL such as https://app.threatconnect.com/api, got %q", tc.BaseURL)
		} else if u.User != nil {
			p.add("threatconnect.base_url", "must not contain credentials; use access_id/secret_key or api_token")
		}
		hmac := tc.AccessID != "" || tc.SecretKey.IsSet()
		switch {
		case hmac && (tc.AccessID == "" || !tc.SecretKey.IsSet()):
			p.add("threatconnect.access_id", "HMAC needs both access_id and secret_key (or env %s and %s)", EnvAccessID, EnvSecretKey)
		case !hmac && !tc.APIToken.IsSet():
			p.add("threatconnect.access_id", "no credentials: set access_id and secret_key, or api_token (or env %s/%s, %s)", EnvAccessID, EnvSecretKey, EnvAPIToken)
		}
	}
	if tc.Proxy != "" {
		u, err := url.Parse(tc.Proxy)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			p.add("threatconnect.proxy", "must be a proxy URL such as http://proxy:3128")
		}
	}
	checkDuration(p, "threatconnect.timeout", tc.Timeout)
	if tc.Timeout.bad == "" && tc.Timeout.d <= 0 {
		p.add("threatconnect.timeout", "must be positive, got %s", tc.Timeout)
	}
	if tc.RequestsPerSecond <= 0 || tc.RequestsPerSecond > 1000 {
		p.add("threatconnect.requests_per_second", "must be greater than 0 and at most 1000, got %g", tc.RequestsPerSecond)
	}
	if tc.MaxRetries < 0 || tc.MaxRetries > 20 {
		p.add("threatconnect.max_retries", "must be between 0 and 20, got %d", tc.MaxRetries)
	}
}

func (c *Config) validateSync(p *problems) {
	s := c.Sync
	checkDuration(p, "sync.interval", s.Interval)
	if s.Interval.bad == "" && s.Interval.d < 30*time.Second {
		p.add("sync.interval", "must be at least 30s, got %s", s.Interval)
	}
	checkDuration(p, "sync.first_fetch", s.FirstFetch)
	checkDuration(p, "sync.reconcile_interval", s.ReconcileInterval)
	if d := s.ReconcileInterval; d.bad == "" && d.d != 0 && d.d < s.Interval.d {
		p.add("sync.reconcile_interval", "must be 0 (never) or at least sync.interval, got %s", d)
	}
	checkTypes(p, "sync.indicator_types", s.IndicatorTypes, tcapi.IndicatorTypes())
	checkTypes(p, "sync.group_types", s.GroupTypes, tcapi.GroupTypes())
	if s.ConfidenceThreshold < 0 || s.ConfidenceThreshold > 100 {
		p.add("sync.confidence_threshold", "must be between 0 and 100, got %d", s.ConfidenceThreshold)
	}
	if s.ThreatAssessScoreThreshold < 0 || s.ThreatAssessScoreThreshold > 1000 {
		p.add("sync.threat_assess_score_threshold", "must be between 0 and 1000, got %d", s.ThreatAssessScoreThreshold)
	}
	if s.PageSize < 1 || s.PageSize > 10000 {
		p.add("sync.page_size", "must be between 1 and 10000, got %d", s.PageSize)
	}
	for i, v := range s.Exclusions.CIDRs {
		if _, _, err := net.ParseCIDR(v); err != nil {
			if _, err2 := netip.ParseAddr(v); err2 != nil {
				p.add(fmt.Sprintf("sync.exclusions.cidrs[%d]", i), "not a CIDR block or address: %q", v)
			}
		}
	}
	for i, v := range s.Exclusions.Domains {
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " /:") {
			p.add(fmt.Sprintf("sync.exclusions.domains[%d]", i), "not a domain name: %q", v)
		}
	}
	for i, v := range s.Owners {
		if strings.TrimSpace(v) == "" {
			p.add(fmt.Sprintf("sync.owners[%d]", i), "must not be empty")
		}
		if v == "*" && len(s.Owners) > 1 {
			p.add(fmt.Sprintf("sync.owners[%d]", i), `"*" (every readable owner) must be the only entry`)
		}
	}
}

func (c *Config) validateSTIX(p *problems) {
	s := c.STIX
	switch s.TLPMode {
	case "compat", "tlp2", "v1-only":
	default:
		p.add("stix.tlp_mode", "must be compat, tlp2 or v1-only, got %q", s.TLPMode)
	}
	checkTLP(p, "stix.default_tlp", s.DefaultTLP)
	switch strings.ToLower(s.IndicatorReputation) {
	case "", "malicious-activity", "anomalous-activity", "anonymization", "benign", "unknown", "compromised", "attribution",
		"bad", "suspicious", "good", "none": // the seed feed's reputation names
	default:
		p.add("stix.indicator_reputation", "must be empty, Bad, Suspicious, Good, Unknown or a STIX indicator type (malicious-activity, anomalous-activity, benign, compromised, attribution, anonymization), got %q", s.IndicatorReputation)
	}
	// A letter, or the seed feed's form "B - Usually reliable".
	if r := s.SourceReliability; r != "" && (!strings.Contains("ABCDEF", r[:1]) || len(r) > 1 && r[1] != ' ') {
		p.add("stix.source_reliability", "must be empty or one of A, B, C, D, E, F (optionally as \"B - Usually reliable\"), got %q", r)
	}
	for i, t := range s.FeedTags {
		if strings.TrimSpace(t) == "" {
			p.add(fmt.Sprintf("stix.feed_tags[%d]", i), "must not be empty")
		}
	}
}

func (c *Config) validateTAXII(p *problems) {
	t := c.TAXII
	if _, _, err := net.SplitHostPort(t.Listen); err != nil {
		p.add("taxii.listen", "must be host:port such as 127.0.0.1:8080, got %q", t.Listen)
	}
	if (t.TLSCertFile == "") != (t.TLSKeyFile == "") {
		p.add("taxii.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	if strings.TrimSpace(t.Title) == "" {
		p.add("taxii.title", "must not be empty")
	}
	if err := CheckAPIRoot(t.APIRoot); err != nil {
		p.add("taxii.api_root", "%v", err)
	}
	if t.MaxPageSize < 1 || t.MaxPageSize > 100000 {
		p.add("taxii.max_page_size", "must be between 1 and 100000, got %d", t.MaxPageSize)
	}
	if t.DefaultPageSize < 1 || t.DefaultPageSize > t.MaxPageSize {
		p.add("taxii.default_page_size", "must be between 1 and max_page_size (%d), got %d", t.MaxPageSize, t.DefaultPageSize)
	}
	if t.MaxContentLength < 1024 || t.MaxContentLength > 1<<30 {
		p.add("taxii.max_content_length", "must be between 1024 and 1073741824 bytes, got %d", t.MaxContentLength)
	}
	if t.MaxObjectsPerPost < 1 || t.MaxObjectsPerPost > 10_000_000 {
		p.add("taxii.max_objects_per_post", "must be between 1 and 10000000, got %d", t.MaxObjectsPerPost)
	}
	if d := t.StatusRetention.D(); d < 24*time.Hour {
		p.add("taxii.status_retention", "must be at least 24h (TAXII asks for a day of queryability), got %s", d)
	}
	if t.CursorSecret.IsSet() && len(t.CursorSecret.Reveal()) < MinCursorSecret {
		p.add("taxii.cursor_secret", "must be at least %d bytes when set", MinCursorSecret)
	}
	aliases := map[string]bool{}
	for i, col := range t.Collections {
		key := fmt.Sprintf("taxii.collections[%d]", i)
		switch {
		case !aliasRE.MatchString(col.Alias):
			p.add(key+".alias", "must be lower-case letters, digits, '.', '_' or '-', got %q", col.Alias)
		case aliases[col.Alias]:
			p.add(key+".alias", "duplicate alias %q", col.Alias)
		}
		aliases[col.Alias] = true
		checkTLP(p, key+".filter.max_tlp", col.Filter.MaxTLP)
		if col.Filter.MinConfidence < 0 || col.Filter.MinConfidence > 100 {
			p.add(key+".filter.min_confidence", "must be between 0 and 100, got %d", col.Filter.MinConfidence)
		}
		for j, st := range col.Filter.STIXTypes {
			if !stixType.MatchString(st) {
				p.add(fmt.Sprintf("%s.filter.stix_types[%d]", key, j), "not a STIX type name: %q", st)
			}
		}
	}
	names := map[string]bool{}
	for i, u := range t.Users {
		key := fmt.Sprintf("taxii.users[%d]", i)
		checkPrincipalName(p, key, u.Name, names)
		if !strings.HasPrefix(u.PasswordHash, "$2a$") && !strings.HasPrefix(u.PasswordHash, "$2b$") && !strings.HasPrefix(u.PasswordHash, "$2y$") {
			p.add(key+".password_hash", "must be a bcrypt hash from `taxii-bridge hash-password`")
		}
		checkTLP(p, key+".max_tlp", u.MaxTLP)
		checkRefs(p, key, u.Read, u.Write)
	}
	for i, k := range t.APIKeys {
		key := fmt.Sprintf("taxii.api_keys[%d]", i)
		checkPrincipalName(p, key, k.Name, names)
		if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != 32 {
			p.add(key+".key_sha256", "must be the 64 hex digits of the key's SHA-256")
		}
		checkTLP(p, key+".max_tlp", k.MaxTLP)
		checkRefs(p, key, k.Read, k.Write)
	}
}

func checkPrincipalName(p *problems, key, name string, seen map[string]bool) {
	switch {
	case strings.TrimSpace(name) == "":
		p.add(key+".name", "must not be empty")
	case strings.Contains(name, ":"):
		p.add(key+".name", "must not contain ':' (HTTP Basic separates user and password with it)")
	case seen[name]:
		p.add(key+".name", "duplicate principal name %q", name)
	}
	seen[name] = true
}

func checkRefs(p *problems, key string, read, write []string) {
	for j, r := range read {
		if strings.TrimSpace(r) == "" {
			p.add(fmt.Sprintf("%s.read[%d]", key, j), "must not be empty")
		}
	}
	for j, w := range write {
		if strings.TrimSpace(w) == "" {
			p.add(fmt.Sprintf("%s.write[%d]", key, j), "must not be empty")
		}
	}
}

func checkDuration(p *problems, key string, d Duration) {
	if err := d.check(); err != nil {
		p.add(key, "%v", err)
	}
}

func checkTLP(p *problems, key string, t TLP) {
	if err := t.check(); err != nil {
		p.add(key, "%v", err)
	}
}

func checkTypes(p *problems, key string, got, known []string) {
	for i, v := range got {
		if strings.EqualFold(v, "All") {
			if len(got) > 1 {
				p.add(key, "\"All\" cannot be combined with other types")
			}
			continue
		}
		ok := false
		for _, k := range known {
			if v == k {
				ok = true
				break
			}
		}
		if !ok {
			p.add(fmt.Sprintf("%s[%d]", key, i), "unknown type %q (known: All, %s)", v, strings.Join(known, ", "))
		}
	}
}

// validateOps checks the operations keys of issue 11: metrics, rate
// limits, profiles.
func (c *Config) validateOps(p *problems) {
	if l := c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			p.add("metrics.listen", "must be host:port such as 127.0.0.1:9464, or empty for no metrics, got %q", l)
		} else if l == c.TAXII.Listen {
			p.add("metrics.listen", "must differ from taxii.listen (%s)", l)
		}
	}
	checkRate := func(key string, r *RateLimit) {
		if r == nil || key == "taxii.auth_failure_limit" && r.RequestsPerSecond == -1 {
			return
		}
		if r.RequestsPerSecond < 0 || r.RequestsPerSecond > 1e6 {
			p.add(key+".requests_per_second", "must be between 0 (no limit) and 1000000, got %g", r.RequestsPerSecond)
		}
		if r.Burst < 0 || r.Burst > 1e6 {
			p.add(key+".burst", "must be between 0 and 1000000, got %d", r.Burst)
		}
	}
	checkRate("taxii.rate_limit", &c.TAXII.RateLimit)
	checkRate("taxii.auth_failure_limit", &c.TAXII.AuthFailureLimit)
	checkProfile := func(key, name string) {
		if name != "" && !slices.Contains(ProfileNames, name) {
			p.add(key, "unknown profile %q (known: %s)", name, strings.Join(ProfileNames, ", "))
		}
	}
	checkBootstrap := func(key, v string) {
		if v != "" && v != "all" && v != "current" {
			p.add(key, "must be all or current, got %q", v)
		}
	}
	for i, u := range c.TAXII.Users {
		key := fmt.Sprintf("taxii.users[%d]", i)
		checkRate(key+".rate_limit", u.RateLimit)
		checkProfile(key+".profile", u.Profile)
		checkBootstrap(key+".bootstrap", u.Bootstrap)
	}
	for i, k := range c.TAXII.APIKeys {
		key := fmt.Sprintf("taxii.api_keys[%d]", i)
		checkRate(key+".rate_limit", k.RateLimit)
		checkProfile(key+".profile", k.Profile)
		checkBootstrap(key+".bootstrap", k.Bootstrap)
	}
}
