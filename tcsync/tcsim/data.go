package tcsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// Id spaces. Indicator ids start above 2^53 so that a client decoding ids
// through float64 loses precision visibly (threatconnect-v3.md §1).
const (
	IndicatorIDBase int64 = 1 << 53 // indicator n has id IndicatorIDBase+n, n ≥ 1
	GroupIDBase     int64 = 1 << 50 // group n has id GroupIDBase+n
	attributeIDBase int64 = 1 << 52
)

// epoch is when generated data starts; item n is added n·37 s after it.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// typeCycle fixes the indicator type of index n as typeCycle[(n-1)%12], so
// every type is present and associations between types are computable in
// both directions without storing them.
var typeCycle = []string{
	tcapi.TypeAddress, tcapi.TypeHost, tcapi.TypeURL, tcapi.TypeFile, tcapi.TypeEmailAddress, tcapi.TypeASN,
	tcapi.TypeCIDR, tcapi.TypeEmailSubject, tcapi.TypeHashtag, tcapi.TypeMutex, tcapi.TypeRegistryKey, tcapi.TypeUserAgent,
}

func typePos(t string) int {
	for i, v := range typeCycle {
		if v == t {
			return i
		}
	}
	return -1
}

// linkRule is a generated indicator-to-indicator link: every indicator of
// type from at index n links to the indicator at n+offset (of type to).
type linkRule struct {
	name     string
	from, to string
	file     bool // a File action (§9.5) rather than a custom association (§9.4)
}

func (r linkRule) offset() int64 {
	d := (typePos(r.to) - typePos(r.from) + len(typeCycle)) % len(typeCycle)
	if d == 0 {
		d = len(typeCycle)
	}
	return int64(d)
}

var linkRules = []linkRule{
	{name: "ASN to Address", from: tcapi.TypeASN, to: tcapi.TypeAddress},
	{name: "CIDR to Address", from: tcapi.TypeCIDR, to: tcapi.TypeAddress},
	{name: "URL Host", from: tcapi.TypeURL, to: tcapi.TypeHost},
	{name: "DNS PTR Record", from: tcapi.TypeAddress, to: tcapi.TypeHost},
	{name: "Domain Registrant Email", from: tcapi.TypeHost, to: tcapi.TypeEmailAddress},
	{name: "Address to User Agent", from: tcapi.TypeAddress, to: tcapi.TypeUserAgent},
	{name: "File Traffic", from: tcapi.TypeFile, to: tcapi.TypeAddress, file: true},
	{name: "File DNS Query", from: tcapi.TypeFile, to: tcapi.TypeHost, file: true},
	{name: "File Mutex", from: tcapi.TypeFile, to: tcapi.TypeMutex, file: true},
	{name: "File Registry Key", from: tcapi.TypeFile, to: tcapi.TypeRegistryKey, file: true},
	{name: "File User Agent", from: tcapi.TypeFile, to: tcapi.TypeUserAgent, file: true},
	{name: "File Drop", from: tcapi.TypeFile, to: tcapi.TypeFile, file: true},
}

// Owners served by the simulator. The fourth has a hostile name to exercise
// TQL quoting end to end.
var owners = []tcapi.Owner{
	{ID: 1, Name: "Demo Organization", Type: "Organization", OwnerRole: "Organization Administrator", PermIndicator: "FULL", PermGroup: "FULL"},
	{ID: 2, Name: "Demo Source", Type: "Source", OwnerRole: "Director", PermIndicator: "FULL", PermGroup: "FULL"},
	{ID: 3, Name: "Demo Community", Type: "Community", OwnerRole: "Director", PermIndicator: "READ", PermGroup: "READ"},
	{ID: 4, Name: `Tricky "Quoted" \ Source's`, Type: "Source", OwnerRole: "Contributor", PermIndicator: "READ", PermGroup: "READ"},
}

// Owners returns the owners the simulator serves.
func Owners() []tcapi.Owner { return append([]tcapi.Owner(nil), owners...) }

var labelDate = time.Date(2016, 8, 31, 0, 0, 0, 0, time.UTC)

// securityLabels: the six TLP labels and a custom org label (§10).
var securityLabels = []tcapi.SecurityLabel{
	{ID: 1, Name: "TLP:WHITE", Color: "FFFFFF", Owner: "System", DateAdded: labelDate, Description: "Disclosure is not limited."},
	{ID: 2, Name: "TLP:GREEN", Color: "33FF00", Owner: "System", DateAdded: labelDate, Description: "Limited disclosure, restricted to the community."},
	{ID: 3, Name: "TLP:AMBER", Color: "FFC000", Owner: "System", DateAdded: labelDate, Description: "Limited disclosure, restricted to participants' organizations."},
	{ID: 4, Name: "TLP:RED", Color: "FF2B2B", Owner: "System", DateAdded: labelDate, Description: "Not for disclosure, restricted to participants only."},
	{ID: 5, Name: "TLP:CLEAR", Color: "FFFFFF", Owner: "System", DateAdded: time.Date(2022, 8, 31, 0, 0, 0, 0, time.UTC), Description: "Disclosure is not limited."},
	{ID: 6, Name: "TLP:AMBER+STRICT", Color: "FFC000", Owner: "System", DateAdded: time.Date(2022, 8, 31, 0, 0, 0, 0, time.UTC), Description: "Restricted to the organization only."},
	{ID: 7, Name: "dictators", Color: "8800FF", Owner: "Demo Organization", DateAdded: epoch, Description: "A custom organization label."},
}

// SecurityLabels returns the labels the simulator assigns: six TLP labels and one custom.
func SecurityLabels() []tcapi.SecurityLabel {
	return append([]tcapi.SecurityLabel(nil), securityLabels...)
}

// hostile are values that break naive quoting, patterns, terminals and
// storage (issue 4 §2).
var hostile = []string{
	`a'] OR [file:name = 'x`,
	`double "quoted" value`,
	`single 'quoted' value`,
	`back\slash\\ and \"escaped\"`,
	"line one\nline two\r\nline three",
	strings.Repeat("8K-", 8192/3+1)[:8192],
	"emoji 🔥💀🦠 value",
	"RTL \u202egnp.exe and عربى עברית",
	"`backtick` and ${template} and %s and %00",
	"tab\there and bell\a and unit-sep\x1f",
}

// uniqueBad makes a hostile value unique to indicator n, as ThreatConnect
// keeps an indicator's value unique within its owner: a hostile string that
// is the whole value gets " #n" appended, so the hostile part stays intact.
func uniqueBad(bad string, n int64) string { return fmt.Sprintf("%s #%d", bad, n) }

// Hostile returns the hostile strings sprinkled through generated data.
func Hostile() []string { return append([]string(nil), hostile...) }

var tagPool = []tcapi.Tag{
	{ID: 11, Name: "Targeted Attack"},
	{ID: 475, Name: "Phishing", TechniqueID: "T1566", Description: "Adversaries may send phishing messages to gain access to victim systems."},
	{ID: 9, Name: "Ransomware", Description: "Apply this Tag to objects involved in ransomware attacks."},
	{ID: 12, Name: "APT28"},
	{ID: 13, Name: "Botnet"},
	{ID: 14, Name: "C2"},
	{ID: 15, Name: hostile[0]},
	{ID: 16, Name: `tag "with" quotes`},
	{ID: 17, Name: `tag\with\backslashes`},
	{ID: 18, Name: "tag 🔥 emoji"},
}

var users = []tcapi.User{
	{ID: 3, UserName: "11112222333344445555", FirstName: "John", LastName: "Smith", Pseudonym: "jsmithAPI", Owner: "Demo Organization"},
	{ID: 69, UserName: "analyst@example.com", FirstName: "Ann", LastName: "Lyst", Pseudonym: "annl", Owner: "Demo Organization"},
}

// rng is splitmix64: fast, stateless to seed, deterministic.
type rng struct{ s uint64 }

func newRNG(seed int64, kind uint64, n int64) *rng {
	r := &rng{s: uint64(seed)*0x9E3779B97F4A7C15 ^ kind<<56 ^ uint64(n)}
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) chance(pct int) bool { return r.intn(100) < pct }

func intp(v int) *int           { return &v }
func floatp(v float64) *float64 { return &v }
func dateOf(n int64) time.Time  { return epoch.Add(time.Duration(n) * 37 * time.Second) }
func hashHex(seed int64, n int64, kind string, size int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%d", seed, kind, n))
	s := strings.ToUpper(hex.EncodeToString(h[:]))
	for len(s) < size {
		s += s
	}
	return s[:size]
}

// genIndicator builds generated indicator number n (1-based) from the seed alone.
func (s *Simulator) genIndicator(n int64) *tcapi.Indicator {
	r := newRNG(s.seed, 1, n)
	id := IndicatorIDBase + n
	typ := typeCycle[(n-1)%int64(len(typeCycle))]
	o := owners[0]
	switch x := r.intn(100); {
	case x >= 95:
		o = owners[3]
	case x >= 80:
		o = owners[2]
	case x >= 55:
		o = owners[1]
	}
	in := &tcapi.Indicator{
		ID: id, OwnerID: o.ID, OwnerName: o.Name, Type: typ,
		DateAdded:    dateOf(n),
		WebLink:      fmt.Sprintf("https://app.threatconnect.com/#/details/indicators/%d/overview", id),
		Active:       !r.chance(10),
		PrivateFlag:  r.chance(5),
		ActiveLocked: r.chance(3),
	}
	in.LastModified = in.DateAdded.Add(time.Duration(r.intn(30*24*3600)) * time.Second)
	if !r.chance(10) {
		in.Rating = floatp([]float64{0, 1, 2, 2.5, 3, 4, 5}[r.intn(7)])
	}
	if !r.chance(10) {
		in.Confidence = intp(r.intn(101))
	}
	score := r.intn(1001)
	in.ThreatAssessScore = intp(score)
	in.ThreatAssessRating = floatp(float64(r.intn(6)))
	in.ThreatAssessConfidence = floatp(float64(r.intn(101)))
	in.ThreatAssessScoreObserved = intp(0)
	in.ThreatAssessScoreFalsePositive = intp(0)
	in.CalScore = intp(r.intn(1001))
	in.Observations = intp(r.intn(20))
	in.FalsePositives = intp(r.intn(3))
	if *in.Observations > 0 {
		in.LastObserved = in.LastModified
	}
	if r.chance(50) {
		in.FirstSeen = in.DateAdded.Add(-72 * time.Hour)
		in.LastSeen = in.LastModified
	}
	// Every 29th cycle of the twelve types is hostile, with one hostile
	// string per cycle, so each hostile string meets each type within
	// 29·12·len(hostile) ≈ 3,500 indicators.
	var bad string
	if cycle := (n - 1) / 12; cycle%29 == 3 {
		bad = hostile[(cycle/29)%int64(len(hostile))]
	}
	s.fillValue(in, n, r, bad)
	if bad != "" && in.Description == "" {
		in.Description = bad
	} else if r.chance(40) {
		in.Description = fmt.Sprintf("Generated %s indicator %d.", typ, n)
	}
	if r.chance(30) {
		in.Source = "Simulated feed " + o.Name
	}
	// Tags: 0–3 distinct from the pool.
	for k, nt := 0, r.intn(4); k < nt; k++ {
		t := tagPool[r.intn(len(tagPool))]
		dup := false
		for _, e := range in.Tags.Data {
			dup = dup || e.ID == t.ID
		}
		if !dup {
			t.LastUsed = in.LastModified
			in.Tags.Data = append(in.Tags.Data, t)
		}
	}
	// Labels: unlabelled, one of the six TLPs, or the custom label (with a TLP).
	switch x := r.intn(9); {
	case x < 6:
		in.SecurityLabels.Data = []tcapi.SecurityLabel{securityLabels[x]}
	case x == 6:
		in.SecurityLabels.Data = []tcapi.SecurityLabel{securityLabels[2], securityLabels[6]}
	}
	if in.Description != "" {
		in.Attributes.Data = append(in.Attributes.Data, tcapi.Attribute{
			ID: attributeIDBase + n*4, Type: "Description", Value: in.Description, Default: true,
			DateAdded: in.DateAdded, LastModified: in.DateAdded, CreatedBy: &users[n%2],
		})
	}
	if in.Source != "" {
		in.Attributes.Data = append(in.Attributes.Data, tcapi.Attribute{
			ID: attributeIDBase + n*4 + 1, Type: "Source", Value: in.Source, Default: true,
			DateAdded: in.DateAdded, LastModified: in.DateAdded, CreatedBy: &users[n%2],
		})
	}
	if r.chance(20) {
		a := tcapi.Attribute{ID: attributeIDBase + n*4 + 2, Type: "Additional Analysis and Context",
			Value: fmt.Sprintf("Analyst note %d", n), DateAdded: in.DateAdded, LastModified: in.LastModified, CreatedBy: &users[1]}
		if r.chance(50) {
			a.SecurityLabels.Data = []tcapi.SecurityLabel{securityLabels[3]}
		}
		in.Attributes.Data = append(in.Attributes.Data, a)
	}
	return in
}

// fillValue sets the type's value keys, summary and legacy link. A non-empty
// bad puts a hostile string into the value where the type permits free text.
func (s *Simulator) fillValue(in *tcapi.Indicator, n int64, r *rng, bad string) {
	owner := strings.ReplaceAll(in.OwnerName, " ", "+")
	legacy := func(kind, key, v string) string {
		return fmt.Sprintf("https://app.threatconnect.com/auth/indicators/details/%s.xhtml?%s=%s&owner=%s", kind, key, v, owner)
	}
	custom := fmt.Sprintf("https://app.threatconnect.com/auth/indicators/details/customIndicator.xhtml?id=%d&owner=%s", in.ID, owner)
	switch in.Type {
	case tcapi.TypeAddress:
		if n%5 == 0 {
			in.IP = fmt.Sprintf("2001:db8:%x:%x::1", (n>>16)&0xffff, n&0xffff)
		} else {
			in.IP = fmt.Sprintf("%d.%d.%d.%d", 11+(n>>24)%200, (n>>16)&255, (n>>8)&255, n&255)
		}
		in.Summary, in.LegacyLink = in.IP, legacy("address", "address", in.IP)
	case tcapi.TypeHost:
		in.HostName = fmt.Sprintf("h%d.bad-%d.example", n, r.intn(1000))
		if (n-1)/12%37 == 7 {
			// one host in 37: an xn-- label that is not valid punycode ('_' is
			// no punycode digit), which ThreatConnect stores as given
			in.HostName = fmt.Sprintf("xn--bad_puny%d.%s", n, in.HostName)
		}
		in.DNSActive, in.WhoisActive = r.chance(50), r.chance(30)
		in.Summary, in.LegacyLink = in.HostName, legacy("host", "host", in.HostName)
	case tcapi.TypeURL:
		in.Text = fmt.Sprintf("http://h%d.bad.example/path/%d", n, r.intn(1000))
		if bad != "" {
			in.Text += "?q=" + bad
		}
		in.Summary, in.LegacyLink = in.Text, legacy("url", "url", fmt.Sprint(in.ID))
	case tcapi.TypeFile:
		in.MD5 = hashHex(s.seed, n, "md5", 32)
		switch r.intn(3) {
		case 1:
			in.SHA1 = hashHex(s.seed, n, "sha1", 40)
		case 2:
			in.SHA1 = hashHex(s.seed, n, "sha1", 40)
			in.SHA256 = hashHex(s.seed, n, "sha256", 64)
		}
		if r.chance(60) {
			in.Size = tcapi.FlexInt(100 + r.intn(1<<20))
		}
		var parts []string
		for _, h := range []string{in.MD5, in.SHA1, in.SHA256} {
			if h != "" {
				parts = append(parts, h)
			}
		}
		in.Summary, in.LegacyLink = strings.Join(parts, " : "), legacy("file", "file", in.MD5)
	case tcapi.TypeEmailAddress:
		in.Address = fmt.Sprintf("user%d@bad.example", n)
		in.Summary, in.LegacyLink = in.Address, legacy("emailaddress", "emailaddress", in.Address)
	case tcapi.TypeASN:
		in.ASNumber = fmt.Sprintf("ASN%d", n)
		in.Summary, in.LegacyLink = in.ASNumber, custom
	case tcapi.TypeCIDR:
		in.Block = fmt.Sprintf("%d.%d.%d.0/24", 11+(n>>16)%200, (n>>8)&255, n&255)
		in.Summary, in.LegacyLink = in.Block, custom
	case tcapi.TypeEmailSubject:
		in.Subject = fmt.Sprintf("Invoice %d overdue", n)
		if bad != "" {
			in.Subject = uniqueBad(bad, n)
		}
		in.Summary, in.LegacyLink = in.Subject, custom
	case tcapi.TypeHashtag:
		in.Hashtag = fmt.Sprintf("#campaign%d", n)
		if bad != "" {
			in.Hashtag = "#" + uniqueBad(bad, n)
		}
		in.Summary, in.LegacyLink = in.Hashtag, custom
	case tcapi.TypeMutex:
		in.Mutex = fmt.Sprintf(`Global\evil_mtx_%d`, n)
		if bad != "" {
			in.Mutex = uniqueBad(bad, n)
		}
		in.Summary, in.LegacyLink = in.Mutex, custom
	case tcapi.TypeRegistryKey:
		in.KeyName = fmt.Sprintf(`HKEY_LOCAL_MACHINE\Software\Evil%d`, n)
		in.ValueName = "Run"
		if bad != "" {
			in.ValueName = bad
		}
		in.ValueType = []string{"REG_SZ", "REG_DWORD", "REG_BINARY", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_QWORD"}[r.intn(6)]
		in.Summary, in.LegacyLink = in.KeyName+" : "+in.ValueName+" : "+in.ValueType, custom
	case tcapi.TypeUserAgent:
		in.UserAgentString = fmt.Sprintf("EvilBot/%d.%d (compatible)", n, r.intn(10))
		if bad != "" {
			in.UserAgentString = uniqueBad(bad, n)
		}
		in.Summary, in.LegacyLink = in.UserAgentString, custom
	}
}

var groupStatus = map[string][]string{
	tcapi.GroupEvent:    {"Completed", "Escalated", "False Positive", "In Progress", "Needs Review", "New", "No Further Action", "Reopened"},
	tcapi.GroupIncident: {"New", "Open", "Stalled", "Containment Achieved", "Restoration Achieved", "Incident Reported", "Closed", "Rejected", "Deleted"},
	tcapi.GroupTask:     {"Not Started", "In Progress", "Completed", "Waiting on Someone", "Deferred"},
}

// genGroup builds generated group number n (1-based) from the seed alone.
func (s *Simulator) genGroup(n int64) *tcapi.Group {
	r := newRNG(s.seed, 2, n)
	types := tcapi.GroupTypes()
	typ := types[(n-1)%int64(len(types))]
	id := GroupIDBase + n
	o := owners[int(n)%3]
	if n%29 == 0 {
		o = owners[3]
	}
	g := &tcapi.Group{
		ID: id, OwnerID: o.ID, OwnerName: o.Name, Type: typ,
		Name:          fmt.Sprintf("%s %d", typ, n),
		DateAdded:     epoch.Add(time.Duration(n) * 3 * time.Hour),
		WebLink:       fmt.Sprintf("https://app.threatconnect.com/#/details/groups/%d/overview", id),
		CreatedBy:     &users[n%2],
		UpVoteCount:   tcapi.FlexInt(r.intn(5)),
		DownVoteCount: 0,
	}
	if n%13 == 0 {
		g.Name = hostile[(n/13)%int64(len(hostile))]
	}
	if typ == tcapi.GroupVulnerability {
		g.Name = fmt.Sprintf("CVE-2024-%05d", n)
	}
	branch := strings.ToLower(strings.ReplaceAll(typ, " ", ""))
	g.LegacyLink = fmt.Sprintf("https://app.threatconnect.com/auth/%s/%s.xhtml?%s=%d", branch, branch, branch, id)
	g.LastModified = g.DateAdded.Add(time.Duration(r.intn(60*24*3600)) * time.Second)
	if r.chance(60) {
		g.FirstSeen = g.DateAdded.Add(-24 * time.Hour)
		g.LastSeen = g.LastModified
	}
	if r.chance(20) {
		g.XID = fmt.Sprintf("sim-%d-%d", s.seed, n)
	}
	switch typ {
	case tcapi.GroupDocument, tcapi.GroupReport:
		g.FileName = fmt.Sprintf("report-%d.pdf", n)
		g.FileSize = tcapi.FlexInt(1000 + r.intn(100000))
		g.Status = "Success"
		g.DocumentType = "PDF"
		g.DocumentDateAdded = g.DateAdded
		g.Malware = typ == tcapi.GroupDocument && r.chance(20)
		if typ == tcapi.GroupReport {
			g.PublishDate = g.DateAdded.Add(24 * time.Hour)
			g.GeneratedReport = r.chance(50)
		}
	case tcapi.GroupEmail:
		g.To = fmt.Sprintf("victim%d@example.com", n)
		g.From = "auto-confirm@bad.example"
		g.EmailSubject = g.Name
		g.Header = "Received: from bad.example"
		g.Body = "Please visit bad.example …"
		g.EmailDate = g.DateAdded
		g.Score = intp(r.intn(1000))
		g.ScoreIncludesBody = true
		g.ScoreBreakdown = "Rule SPF Neutral was matched against 'neutral'.\t100\n"
	case tcapi.GroupEvent:
		g.EventDate = g.DateAdded
		g.EventType = "NONE"
		g.Status = groupStatus[typ][r.intn(len(groupStatus[typ]))]
	case tcapi.GroupIncident:
		g.EventDate = g.DateAdded
		g.Status = groupStatus[typ][r.intn(len(groupStatus[typ]))]
	case tcapi.GroupSignature:
		g.FileName = fmt.Sprintf("rule%d.yar", n)
		g.FileType = []string{"YARA", "Snort", "Suricata", "Sigma", "Regex"}[r.intn(5)]
		g.FileText = fmt.Sprintf("rule sim_%d { strings: $a = \"evil\" condition: $a }", n)
		g.SignatureDateAdded = g.DateAdded
	case tcapi.GroupTask:
		g.DueDate = g.DateAdded.Add(7 * 24 * time.Hour)
		g.Status = groupStatus[typ][r.intn(len(groupStatus[typ]))]
		g.Overdue = r.chance(30)
	}
	if r.chance(50) {
		t := tagPool[r.intn(len(tagPool))]
		t.LastUsed = g.LastModified
		g.Tags.Data = []tcapi.Tag{t}
	}
	if x := r.intn(8); x < 7 {
		g.SecurityLabels.Data = []tcapi.SecurityLabel{securityLabels[x]}
	}
	g.Attributes.Data = []tcapi.Attribute{{
		ID: attributeIDBase - n*2, Type: "Description", Value: "Simulated " + typ + " " + g.Name, Default: true, Pinned: true,
		DateAdded: g.DateAdded, LastModified: g.DateAdded, CreatedBy: g.CreatedBy,
	}}
	return g
}
