package tcapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Indicator type names, exactly as ThreatConnect writes them in "type" and in
// TQL typeName (threatconnect-v3.md §6.1).
const (
	TypeAddress      = "Address"
	TypeEmailAddress = "EmailAddress"
	TypeFile         = "File"
	TypeHost         = "Host"
	TypeURL          = "URL"
	TypeASN          = "ASN"
	TypeCIDR         = "CIDR"
	TypeEmailSubject = "Email Subject"
	TypeHashtag      = "Hashtag"
	TypeMutex        = "Mutex"
	TypeRegistryKey  = "Registry Key"
	TypeUserAgent    = "User Agent"
)

// IndicatorTypes returns every built-in indicator type of threatconnect-v3.md §6.1.
func IndicatorTypes() []string {
	return []string{TypeAddress, TypeEmailAddress, TypeFile, TypeHost, TypeURL, TypeASN, TypeCIDR,
		TypeEmailSubject, TypeHashtag, TypeMutex, TypeRegistryKey, TypeUserAgent}
}

// Group type names (threatconnect-v3.md §7.1).
const (
	GroupAdversary      = "Adversary"
	GroupAttackPattern  = "Attack Pattern"
	GroupCampaign       = "Campaign"
	GroupCourseOfAction = "Course of Action"
	GroupDocument       = "Document"
	GroupEmail          = "Email"
	GroupEvent          = "Event"
	GroupIncident       = "Incident"
	GroupIntrusionSet   = "Intrusion Set"
	GroupMalware        = "Malware"
	GroupReport         = "Report"
	GroupSignature      = "Signature"
	GroupTactic         = "Tactic"
	GroupTask           = "Task"
	GroupThreat         = "Threat"
	GroupTool           = "Tool"
	GroupVulnerability  = "Vulnerability"
)

// GroupTypes returns every group type of threatconnect-v3.md §7.1.
func GroupTypes() []string {
	return []string{GroupAdversary, GroupAttackPattern, GroupCampaign, GroupCourseOfAction, GroupDocument,
		GroupEmail, GroupEvent, GroupIncident, GroupIntrusionSet, GroupMalware, GroupReport, GroupSignature,
		GroupTactic, GroupTask, GroupThreat, GroupTool, GroupVulnerability}
}

// List is ThreatConnect's collection shape, used both for expanded
// sub-collections inside objects ({"data":[…],"count":N}) and for the data of
// a list response (threatconnect-v3.md §5.3). A requested but empty expansion
// arrives as {} and decodes to a List with no Data; an expansion that was not
// requested is absent and also leaves a zero List, so callers that must tell
// the two apart know which fields they asked for. Count is set only when the
// server sent it.
type List[T any] struct {
	Data  []T  `json:"data,omitempty"`
	Count *int `json:"count,omitempty"`
}

// Len returns the number of elements carried in Data.
func (l List[T]) Len() int { return len(l.Data) }

// Indicator is a ThreatConnect v3 indicator with every field of
// threatconnect-v3.md §6.2, the per-type value keys of §6.1 (named keys and
// the value1..value3 fallback of fields=genericCustomIndicatorValues) and the
// expansions of §8 and §9. Pointers mark fields whose absence differs from
// zero (an unrated indicator is not rated 0). Unknown JSON keys are ignored.
type Indicator struct {
	ID           int64     `json:"id"`
	OwnerID      int64     `json:"ownerId,omitempty"`
	OwnerName    string    `json:"ownerName,omitempty"`
	Type         string    `json:"type"`
	Summary      string    `json:"summary,omitempty"`
	DateAdded    time.Time `json:"dateAdded,omitzero"`
	LastModified time.Time `json:"lastModified,omitzero"`
	WebLink      string    `json:"webLink,omitempty"`
	LegacyLink   string    `json:"legacyLink,omitempty"`
	XID          string    `json:"xid,omitempty"`

	// Rating is the threat rating 0–5, a decimal on the wire ("5.00").
	Rating *float64 `json:"rating,omitempty"`
	// Confidence is 0–100.
	Confidence   *int   `json:"confidence,omitempty"`
	Description  string `json:"description,omitempty"`
	Source       string `json:"source,omitempty"`
	PrivateFlag  bool   `json:"privateFlag"`
	Active       bool   `json:"active"`
	ActiveLocked bool   `json:"activeLocked"`

	// fields=threatAssess.
	ThreatAssessRating             *float64 `json:"threatAssessRating,omitempty"`
	ThreatAssessConfidence         *float64 `json:"threatAssessConfidence,omitempty"`
	ThreatAssessScore              *int     `json:"threatAssessScore,omitempty"`
	ThreatAssessScoreObserved      *int     `json:"threatAssessScoreObserved,omitempty"`
	ThreatAssessScoreFalsePositive *int     `json:"threatAssessScoreFalsePositive,omitempty"`
	CalScore                       *int     `json:"calScore,omitempty"`

	// fields=observations and fields=falsePositives.
	Observations                *int      `json:"observations,omitempty"`
	LastObserved                time.Time `json:"lastObserved,omitzero"`
	FalsePositives              *int      `json:"falsePositives,omitempty"`
	LastFalsePositive           time.Time `json:"lastFalsePositive,omitzero"`
	FalsePositiveReportedByUser bool      `json:"falsePositiveReportedByUser,omitempty"`
	// ObservationCount, FalsePositiveCount and CalIndicatorStatus appear in v2-era data.
	ObservationCount   *int   `json:"observationCount,omitempty"`
	FalsePositiveCount *int   `json:"falsePositiveCount,omitempty"`
	CalIndicatorStatus string `json:"calIndicatorStatus,omitempty"`

	// fields=sightings and fields=externalDates.
	FirstSeen            time.Time `json:"firstSeen,omitzero"`
	LastSeen             time.Time `json:"lastSeen,omitzero"`
	ExternalDateAdded    time.Time `json:"externalDateAdded,omitzero"`
	ExternalLastModified time.Time `json:"externalLastModified,omitzero"`
	ExternalDateExpires  time.Time `json:"externalDateExpires,omitzero"`

	// Per-type value keys (§6.1). JSON names are exact, spaces included.
	IP              string  `json:"ip,omitempty"`      // Address
	Address         string  `json:"address,omitempty"` // EmailAddress
	MD5             string  `json:"md5,omitempty"`     // File, upper-case hex
	SHA1            string  `json:"sha1,omitempty"`    // File
	SHA256          string  `json:"sha256,omitempty"`  // File
	Size            FlexInt `json:"size,omitempty"`    // File; string or number on the wire
	HostName        string  `json:"hostName,omitempty"`
	DNSActive       bool    `json:"dnsActive,omitempty"`
	WhoisActive     bool    `json:"whoisActive,omitempty"`
	Text            string  `json:"text,omitempty"`       // URL
	ASNumber        string  `json:"AS Number,omitempty"`  // ASN, e.g. "ASN204288"
	Block           string  `json:"Block,omitempty"`      // CIDR
	Subject         string  `json:"Subject,omitempty"`    // Email Subject
	Hashtag         string  `json:"Hashtag,omitempty"`    // Hashtag
	Mutex           string  `json:"Mutex,omitempty"`      // Mutex
	KeyName         string  `json:"Key Name,omitempty"`   // Registry Key
	ValueName       string  `json:"Value Name,omitempty"` // Registry Key
	ValueType       string  `json:"Value Type,omitempty"` // Registry Key, e.g. REG_SZ
	UserAgentString string  `json:"User Agent String,omitempty"`
	// Value1..Value3 come with fields=genericCustomIndicatorValues and replace
	// the named keys of custom types.
	Value1 string `json:"value1,omitempty"`
	Value2 string `json:"value2,omitempty"`
	Value3 string `json:"value3,omitempty"`

	// Expansions (§4.2, §8, §9).
	Tags                 List[Tag]            `json:"tags,omitzero"`
	SecurityLabels       List[SecurityLabel]  `json:"securityLabels,omitzero"`
	Attributes           List[Attribute]      `json:"attributes,omitzero"`
	AssociatedGroups     List[Group]          `json:"associatedGroups,omitzero"`
	AssociatedIndicators List[Indicator]      `json:"associatedIndicators,omitzero"`
	CustomAssociations   List[Indicator]      `json:"customAssociations,omitzero"`
	FileActions          List[FileAction]     `json:"fileActions,omitzero"`
	FileOccurrences      List[FileOccurrence] `json:"fileOccurrences,omitzero"`
	// DNSResolution comes with fields=dnsResolution on Host indicators.
	DNSResolution List[DNSResolution] `json:"dnsResolution,omitzero"`
	// CustomAssociationName is set on the elements of CustomAssociations (§9.4).
	CustomAssociationName string `json:"customAssociationName,omitempty"`
	// AssociationName comes with fields=associationName (§9.3).
	AssociationName string `json:"associationName,omitempty"`
}

// Value returns the indicator's primary value (threatconnect-v3.md §6.1): the
// IP of an Address, the address of an EmailAddress, the strongest hash of a
// File (SHA-256, then SHA-1, then MD5), the host name, the URL text, "AS
// Number", "Block", "Subject", "Hashtag", "Mutex", the "Key Name" of a
// Registry Key, the "User Agent String", and value1 for custom types. Named
// keys win, value1..value3 are the fallback, and the summary is the last resort.
func (in Indicator) Value() string {
	if in.Type == TypeFile {
		h := in.fileHashes()
		for _, v := range []string{h[2], h[1], h[0]} {
			if v != "" {
				return v
			}
		}
		return ""
	}
	if v := in.Values(); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns the indicator's value parts in ThreatConnect's value1..value3
// order, with trailing empty parts dropped: [md5, sha1, sha256] for a File
// (a missing hash leaves "" in its place), [Key Name, Value Name, Value Type]
// for a Registry Key, and a single value for every other type. Named keys win
// over value1..value3; the summary (split on " : " for multi-value types) is
// the last resort.
func (in Indicator) Values() []string {
	var v [3]string
	switch in.Type {
	case TypeFile:
		v = in.fileHashes()
	case TypeRegistryKey:
		v = [3]string{in.KeyName, in.ValueName, in.ValueType}
		if v == ([3]string{}) {
			v = [3]string{in.Value1, in.Value2, in.Value3}
		}
		if v == ([3]string{}) && in.Summary != "" {
			parts := strings.SplitN(in.Summary, " : ", 3)
			copy(v[:], parts)
		}
	default:
		v[0] = in.namedValue()
		if v[0] == "" {
			v[0] = in.Value1
		}
		if v[0] == "" {
			v[0] = in.Summary
		}
	}
	n := len(v)
	for n > 0 && v[n-1] == "" {
		n--
	}
	return append([]string(nil), v[:n]...)
}

func (in Indicator) namedValue() string {
	switch in.Type {
	case TypeAddress:
		return in.IP
	case TypeEmailAddress:
		return in.Address
	case TypeHost:
		return in.HostName
	case TypeURL:
		return in.Text
	case TypeASN:
		return in.ASNumber
	case TypeCIDR:
		return in.Block
	case TypeEmailSubject:
		return in.Subject
	case TypeHashtag:
		return in.Hashtag
	case TypeMutex:
		return in.Mutex
	case TypeUserAgent:
		return in.UserAgentString
	}
	return ""
}

// fileHashes returns md5, sha1, sha256 from the named keys, else value1..3,
// else the summary, where hashes are recognised by their length.
func (in Indicator) fileHashes() [3]string {
	h := [3]string{in.MD5, in.SHA1, in.SHA256}
	if h == ([3]string{}) {
		h = [3]string{in.Value1, in.Value2, in.Value3}
	}
	if h == ([3]string{}) && in.Summary != "" {
		for _, p := range strings.Split(in.Summary, " : ") {
			p = strings.TrimSpace(p)
			switch len(p) {
			case 32:
				h[0] = p
			case 40:
				h[1] = p
			case 64:
				h[2] = p
			}
		}
	}
	return h
}

// DeletedIndicator is one element of GET /v3/indicators/deleted
// (threatconnect-v3.md §6.5). The documented sample has no id; match deletions
// on (OwnerName, Type, Summary). DateAdded is the time of deletion as the API
// reports it.
type DeletedIndicator struct {
	ID        int64     `json:"id,omitempty"`
	OwnerID   int64     `json:"ownerId,omitempty"`
	OwnerName string    `json:"ownerName,omitempty"`
	DateAdded time.Time `json:"dateAdded,omitzero"`
	Type      string    `json:"type"`
	Summary   string    `json:"summary"`
}

// Group is a ThreatConnect v3 group with the common fields of
// threatconnect-v3.md §7.2 and every type-specific field of §7.3 (Document,
// Report, Email, Event, Incident, Signature, Task). Fields that do not apply
// to a group's type stay zero. Unknown JSON keys are ignored.
type Group struct {
	ID            int64     `json:"id"`
	OwnerID       int64     `json:"ownerId,omitempty"`
	OwnerName     string    `json:"ownerName,omitempty"`
	Type          string    `json:"type"`
	Name          string    `json:"name"`
	XID           string    `json:"xid,omitempty"`
	DateAdded     time.Time `json:"dateAdded,omitzero"`
	LastModified  time.Time `json:"lastModified,omitzero"`
	WebLink       string    `json:"webLink,omitempty"`
	LegacyLink    string    `json:"legacyLink,omitempty"`
	CreatedBy     *User     `json:"createdBy,omitempty"`
	UpVoteCount   FlexInt   `json:"upVoteCount,omitempty"` // a string ("0") on the wire
	DownVoteCount FlexInt   `json:"downVoteCount,omitempty"`
	UpVote        *bool     `json:"upVote,omitempty"`

	// fields=sightings and fields=externalDates.
	FirstSeen            time.Time `json:"firstSeen,omitzero"`
	LastSeen             time.Time `json:"lastSeen,omitzero"`
	ExternalDateAdded    time.Time `json:"externalDateAdded,omitzero"`
	ExternalLastModified time.Time `json:"externalLastModified,omitzero"`
	ExternalDateExpires  time.Time `json:"externalDateExpires,omitzero"`

	// Expansions.
	Tags                   List[Tag]             `json:"tags,omitzero"`
	SecurityLabels         List[SecurityLabel]   `json:"securityLabels,omitzero"`
	Attributes             List[Attribute]       `json:"attributes,omitzero"`
	AssociatedGroups       List[Group]           `json:"associatedGroups,omitzero"`
	AssociatedIndicators   List[Indicator]       `json:"associatedIndicators,omitzero"`
	AssociatedVictimAssets List[json.RawMessage] `json:"associatedVictimAssets,omitzero"`
	CommonGroup            json.RawMessage       `json:"commonGroup,omitempty"` // fields=common
	Insights               json.RawMessage       `json:"insights,omitempty"`    // fields=insights
	AIProvider             string                `json:"aiProvider,omitempty"`

	// Status is the Document/Report upload status, the Event/Incident status
	// or the Task status, depending on Type.
	Status string `json:"status,omitempty"`

	// Document and Report.
	FileName          string          `json:"fileName,omitempty"` // also Signature
	FileSize          FlexInt         `json:"fileSize,omitempty"`
	DocumentType      string          `json:"documentType,omitempty"`
	DocumentDateAdded time.Time       `json:"documentDateAdded,omitzero"`
	Malware           bool            `json:"malware,omitempty"`
	Password          string          `json:"password,omitempty"`
	GeneratedReport   bool            `json:"generatedReport,omitempty"`
	PublishDate       time.Time       `json:"publishDate,omitzero"` // Report
	Reviews           json.RawMessage `json:"reviews,omitempty"`
	IntelReviews      json.RawMessage `json:"intelReviews,omitempty"`

	// Email.
	To                string    `json:"to,omitempty"`
	From              string    `json:"from,omitempty"`
	EmailSubject      string    `json:"subject,omitempty"`
	Header            string    `json:"header,omitempty"`
	Body              string    `json:"body,omitempty"`
	EmailDate         time.Time `json:"emailDate,omitzero"`
	Score             *int      `json:"score,omitempty"`
	ScoreIncludesBody bool      `json:"scoreIncludesBody,omitempty"`
	ScoreBreakdown    string    `json:"scoreBreakdown,omitempty"`

	// Event and Incident.
	EventDate time.Time `json:"eventDate,omitzero"`
	EventType string    `json:"eventType,omitempty"` // Event only

	// Signature.
	FileType           string    `json:"fileType,omitempty"`
	FileText           string    `json:"fileText,omitempty"`
	SignatureDateAdded time.Time `json:"signatureDateAdded,omitzero"`

	// Task.
	DueDate        time.Time       `json:"dueDate,omitzero"`
	EscalationDate time.Time       `json:"escalationDate,omitzero"`
	ReminderDate   time.Time       `json:"reminderDate,omitzero"`
	Assignments    json.RawMessage `json:"assignments,omitempty"`
	Escalated      bool            `json:"escalated,omitempty"`
	Overdue        bool            `json:"overdue,omitempty"`
	Reminded       bool            `json:"reminded,omitempty"`
}

// Tag is a ThreatConnect tag (threatconnect-v3.md §8.1). TechniqueID is set
// only on ATT&CK tags; Owner only in /v3/tags listings.
type Tag struct {
	ID          int64        `json:"id,omitempty"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	LastUsed    time.Time    `json:"lastUsed,omitzero"`
	TechniqueID string       `json:"techniqueId,omitempty"`
	Owner       string       `json:"owner,omitempty"`
	Tactics     List[string] `json:"tactics,omitzero"`
	Platforms   List[string] `json:"platforms,omitzero"`
}

// SecurityLabel is a ThreatConnect security label (threatconnect-v3.md §8.2,
// §10): the six TLP labels owned by "System" or an owner's custom label.
type SecurityLabel struct {
	ID          int64     `json:"id,omitempty"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Color       string    `json:"color,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	DateAdded   time.Time `json:"dateAdded,omitzero"`
	Source      string    `json:"source,omitempty"`
}

// Attribute is an indicator or group attribute (threatconnect-v3.md §8.3).
// Type is the attribute type name ("Description", "Source", "First Seen", …);
// Default marks the default Description or Source. An attribute may carry its
// own security labels (fields=attributes.securityLabels).
type Attribute struct {
	ID             int64               `json:"id,omitempty"`
	Type           string              `json:"type"`
	Value          string              `json:"value"`
	Source         string              `json:"source,omitempty"`
	DateAdded      time.Time           `json:"dateAdded,omitzero"`
	LastModified   time.Time           `json:"lastModified,omitzero"`
	CreatedBy      *User               `json:"createdBy,omitempty"`
	Pinned         bool                `json:"pinned,omitempty"`
	Default        bool                `json:"default,omitempty"`
	SecurityLabels List[SecurityLabel] `json:"securityLabels,omitzero"`
	IndicatorID    int64               `json:"indicatorId,omitempty"`
	GroupID        int64               `json:"groupId,omitempty"`
	Settings       json.RawMessage     `json:"settings,omitempty"`
}

// User is the createdBy object of groups and attributes (threatconnect-v3.md §7.2, §8.3).
type User struct {
	ID        int64  `json:"id,omitempty"`
	UserName  string `json:"userName,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Pseudonym string `json:"pseudonym,omitempty"`
	Owner     string `json:"owner,omitempty"`
}

// Owner is an Organization, Community or Source as GET /v3/security/owners
// returns it (threatconnect-v3.md §8.4). Permission values are FULL, READ,
// NONE or BUILD.
type Owner struct {
	ID                   int64  `json:"id"`
	Name                 string `json:"name"`
	Type                 string `json:"type"`
	OwnerRole            string `json:"ownerRole,omitempty"`
	PermIndicator        string `json:"permIndicator,omitempty"`
	PermGroup            string `json:"permGroup,omitempty"`
	PermPost             string `json:"permPost,omitempty"`
	PermVictim           string `json:"permVictim,omitempty"`
	PermAttribute        string `json:"permAttribute,omitempty"`
	PermApps             string `json:"permApps,omitempty"`
	PermUsers            string `json:"permUsers,omitempty"`
	PermSecurityLabel    string `json:"permSecurityLabel,omitempty"`
	PermTag              string `json:"permTag,omitempty"`
	PermAttributeType    string `json:"permAttributeType,omitempty"`
	PermSettings         string `json:"permSettings,omitempty"`
	PermMembers          string `json:"permMembers,omitempty"`
	PermCopyData         string `json:"permCopyData,omitempty"`
	PermInvite           string `json:"permInvite,omitempty"`
	PermTask             string `json:"permTask,omitempty"`
	PermCaseTag          string `json:"permCaseTag,omitempty"`
	PermArtifact         string `json:"permArtifact,omitempty"`
	PermComment          string `json:"permComment,omitempty"`
	PermTimeline         string `json:"permTimeline,omitempty"`
	PermWorkflowTemplate string `json:"permWorkflowTemplate,omitempty"`
	PermPublish          string `json:"permPublish,omitempty"`
	PermPlaybooksExecute string `json:"permPlaybooksExecute,omitempty"`
	PermPlaybooks        string `json:"permPlaybooks,omitempty"`
}

// FileAction is one File-to-indicator behaviour link (threatconnect-v3.md
// §9.5): Relationship is "File Traffic", "File DNS Query", "File Drop", … and
// Indicator the linked indicator.
type FileAction struct {
	Relationship string     `json:"relationship"`
	Indicator    *Indicator `json:"indicator,omitempty"`
}

// DNSResolution is one DNS resolution of a Host indicator
// (fields=dnsResolution, threatconnect-v3.md §4.2, "Host/Address enrichment
// blobs"). The reference documents the field but not its shape; this
// follows ThreatConnect's UI and tcex model [I]: a resolution date and the
// Address indicators the host resolved to. A flat "ip" is accepted too.
type DNSResolution struct {
	ID             int64           `json:"id,omitempty"`
	ResolutionDate time.Time       `json:"resolutionDate,omitzero"`
	Addresses      List[Indicator] `json:"addresses,omitzero"`
	IP             string          `json:"ip,omitempty"`
}

// IPs returns the addresses of the resolution: the ip of each Address
// indicator, then the flat ip, without blanks.
func (r DNSResolution) IPs() []string {
	var out []string
	for _, a := range r.Addresses.Data {
		if v := strings.TrimSpace(a.Value()); v != "" {
			out = append(out, v)
		}
	}
	if v := strings.TrimSpace(r.IP); v != "" {
		out = append(out, v)
	}
	return out
}

// FileOccurrence is where a File was seen (fields=fileOccurrences, threatconnect-v3.md §4.2).
type FileOccurrence struct {
	ID       int64     `json:"id,omitempty"`
	FileName string    `json:"fileName,omitempty"`
	Path     string    `json:"path,omitempty"`
	Date     time.Time `json:"date,omitzero"`
}

// FlexInt is an integer that ThreatConnect sends either as a JSON number or
// as a string: File size ("124" or 123) and group vote counts ("0")
// (threatconnect-v3.md §1). An empty string or null decodes to 0. It encodes
// as a number.
type FlexInt int64

// UnmarshalJSON accepts 123, "123", "", null and integral decimals like 123.0.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode integer %s: %w", b, err)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = FlexInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return fmt.Errorf("decode integer: %q is not an integer", s)
	}
	*n = FlexInt(int64(f))
	return nil
}

// timeLayouts are the timestamp forms ThreatConnect has been seen to send
// (threatconnect-v3.md §1): RFC 3339 with Z or an offset and optional
// fractions, offsets without a colon (+0000), and zone-less forms read as UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// ParseTime parses a ThreatConnect timestamp leniently: RFC 3339 with "Z" or
// an offset, "+0000"-style offsets, milliseconds, a missing zone (UTC), a
// space instead of "T", and a bare date. Surrounding spaces are ignored (doc
// samples carry trailing spaces). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q: not a ThreatConnect timestamp", s)
}
