package tcapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// threatconnect-v3.md §2.2 vectors A–D, including C and C' (same query,
// %20 versus +, different signatures).
func TestSignVectors(t *testing.T) {
	tests := []struct {
		name, secret, path, ts, want string
	}{
		{"A", "test", "test", "1587340800", "p5a/YiTRs7sNMp/PEDgZxky8lJDRLbza1pi8erjURrU="},
		{"B", "s3cr3tK3y", "/api/v3/security/owners", "1714521600", "LcJLwvLS0M+A3smtgO5n7+m+8UJbRMgi5Ioizemp/NI="},
		{"C", "s3cr3tK3y", "/api/v3/indicators?tql=typeName%20IN%20%28%22Address%22%2C%22Host%22%29%20AND%20lastModified%20GEQ%20%222024-05-01T00%3A00%3A00Z%22&fields=tags&fields=securityLabels&resultStart=0&resultLimit=1000&sorting=lastModified%20ASC", "1714521600", "g5o0DT9zXnF9WGazYymWX6U15k17UB/HLmT2rzOPzQo="},
		{"C'", "s3cr3tK3y", "/api/v3/indicators?tql=typeName+IN+%28%22Address%22%2C%22Host%22%29+AND+lastModified+GEQ+%222024-05-01T00%3A00%3A00Z%22&fields=tags&fields=securityLabels&resultStart=0&resultLimit=1000&sorting=lastModified+ASC", "1714521600", "xXczxdQLlXPjNvh3iYCW6rklvs/jZf3YodSxvGJtPL8="},
		{"D", "s3cr3tK3y", "/api/v2/indicators/hosts/example.com?Owner=Common%20Community", "1513703787", "JxP4hesKI2Ty//XqT90UE/2T0W2jSHUZWHyLUqpx9Jg="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(tt.secret, tt.path, "GET", tt.ts); got != tt.want {
				t.Errorf("Sign(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// The header the client sets for vector B (threatconnect-v3.md §2.2 full request).
func TestAuthorizeHeaderVectorB(t *testing.T) {
	c, err := New(Options{BaseURL: "https://app.threatconnect.com/api", AccessID: "12345678901234567890", SecretKey: "s3cr3tK3y",
		Now: func() time.Time { return time.Unix(1714521600, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, c.endpoint("/v3/security/owners", nil).String(), nil)
	c.authorize(req)
	if got, want := req.Header.Get("Authorization"), "TC 12345678901234567890:LcJLwvLS0M+A3smtgO5n7+m+8UJbRMgi5Ioizemp/NI="; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got := req.Header.Get("Timestamp"); got != "1714521600" {
		t.Errorf("Timestamp = %q, want 1714521600", got)
	}
}

func TestAuthorizeToken(t *testing.T) {
	c, err := New(Options{BaseURL: "https://tc.example/api", APIToken: "APIV2:430:c8mTcH:1234567890123:abc="})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://tc.example/api/v3/indicators", nil)
	c.authorize(req)
	if got := req.Header.Get("Authorization"); got != "TC-Token APIV2:430:c8mTcH:1234567890123:abc=" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no base", Options{APIToken: "x"}, "base url is empty"},
		{"relative base", Options{BaseURL: "tc.example/api", APIToken: "x"}, "must be absolute"},
		{"no credentials", Options{BaseURL: "https://tc.example/api"}, "no credentials"},
		{"id without secret", Options{BaseURL: "https://tc.example/api", AccessID: "a"}, "set together"},
		{"bad proxy", Options{BaseURL: "https://tc.example/api", APIToken: "x", Proxy: "::nope"}, "proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Next links are re-based onto the configured scheme and host, keeping the
// link's escaped path and raw query byte for byte (threatconnect-v3.md §2.1).
func TestRebaseKeepsBytesAndUsesConfiguredHost(t *testing.T) {
	c, err := New(Options{BaseURL: "https://app.threatconnect.com/api", APIToken: "x"})
	if err != nil {
		t.Fatal(err)
	}
	link := "https://api.threatconnect.com/api/v3/indicators?tql=a%20b+c%2Fd&fields=tags&resultStart=2&resultLimit=2"
	u, err := c.rebase(link)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.String(), "https://app.threatconnect.com/api/v3/indicators?tql=a%20b+c%2Fd&fields=tags&resultStart=2&resultLimit=2"; got != want {
		t.Errorf("rebase = %q, want %q", got, want)
	}
	if got, want := u.RequestURI(), "/api/v3/indicators?tql=a%20b+c%2Fd&fields=tags&resultStart=2&resultLimit=2"; got != want {
		t.Errorf("RequestURI = %q, want %q (the signed bytes)", got, want)
	}
}

func TestFilterTQL(t *testing.T) {
	since := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	until := time.Date(2024, 5, 2, 0, 0, 0, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name       string
		f          Filter
		indicators string
		groups     string
	}{
		{"empty asks for active and inactive", Filter{}, "(indicatorActive = true OR indicatorActive = false)", ""},
		{"owners", Filter{Owners: []string{"Org A", "Src B"}, ActiveOnly: true},
			`ownerName IN ("Org A","Src B") AND indicatorActive = true`, `ownerName IN ("Org A","Src B")`},
		{"hostile owner", Filter{Owners: []string{`Tricky "Quoted" \ Source's`}, ActiveOnly: true},
			`ownerName IN ("Tricky \"Quoted\" \\ Source\'s") AND indicatorActive = true`, `ownerName IN ("Tricky \"Quoted\" \\ Source\'s")`},
		{"hostile tags", Filter{Tags: []string{`a'] OR [file:name = 'x`, "back`tick", "new\nline", "🔥"}, ActiveOnly: true},
			"tag IN (\"a\\'] OR [file:name = \\'x\",\"back\\`tick\",\"new\nline\",\"🔥\") AND indicatorActive = true",
			"tag IN (\"a\\'] OR [file:name = \\'x\",\"back\\`tick\",\"new\nline\",\"🔥\")"},
		{"types", Filter{IndicatorTypes: []string{"Address", "Registry Key"}, GroupTypes: []string{"Campaign"}, ActiveOnly: true},
			`indicatorActive = true AND typeName IN ("Address","Registry Key")`, `typeName IN ("Campaign")`},
		{"All means every type", Filter{IndicatorTypes: []string{"Address", "All"}, GroupTypes: []string{"all"}, ActiveOnly: true}, "indicatorActive = true", ""},
		{"blank values dropped", Filter{Owners: []string{"", " "}, Tags: []string{""}, ActiveOnly: true}, "indicatorActive = true", ""},
		{"active only is indicators only", Filter{ActiveOnly: true}, "indicatorActive = true", ""},
		{"thresholds are minimums, indicators only", Filter{MinConfidence: 50, MinThreatAssessScore: 300, ActiveOnly: true},
			"indicatorActive = true AND confidence GEQ 50 AND threatAssessScore GEQ 300", ""},
		{"window at second precision in UTC", Filter{ModifiedSince: since, ModifiedUntil: until, ActiveOnly: true},
			`indicatorActive = true AND lastModified GEQ "2024-05-01T10:00:00Z" AND lastModified LT "2024-05-01T23:00:00Z"`,
			`lastModified GEQ "2024-05-01T10:00:00Z" AND lastModified LT "2024-05-01T23:00:00Z"`},
		{"everything, seed order", Filter{Owners: []string{"Org A"}, Tags: []string{"apt28"}, IndicatorTypes: []string{"Host"},
			GroupTypes: []string{"Report"}, ActiveOnly: true, MinConfidence: 1, MinThreatAssessScore: 2, ModifiedSince: since},
			`ownerName IN ("Org A") AND tag IN ("apt28") AND indicatorActive = true AND confidence GEQ 1 AND threatAssessScore GEQ 2 AND typeName IN ("Host") AND lastModified GEQ "2024-05-01T10:00:00Z"`,
			`ownerName IN ("Org A") AND tag IN ("apt28") AND typeName IN ("Report") AND lastModified GEQ "2024-05-01T10:00:00Z"`},
		// The user's TQL replaces the indicator filters (seed §12.2) but keeps
		// the window (unlike the seed, §12.3); it never reaches /v3/groups.
		{"user tql takes over indicators only", Filter{Owners: []string{"Org A"}, ActiveOnly: true, MinConfidence: 5,
			UserTQL: ` rating GEQ 4 OR tag = "x" `, ModifiedSince: since},
			`(rating GEQ 4 OR tag = "x") AND lastModified GEQ "2024-05-01T10:00:00Z"`,
			`ownerName IN ("Org A") AND lastModified GEQ "2024-05-01T10:00:00Z"`},
		{"user tql without active only gets inactive ones too", Filter{UserTQL: `rating GEQ 4`},
			`(rating GEQ 4) AND (indicatorActive = true OR indicatorActive = false)`, ""},
		{"user tql that names indicatorActive is left alone", Filter{UserTQL: `indicatorActive = false`},
			`(indicatorActive = false)`, ""},
		{"group tql takes over groups", Filter{Owners: []string{"Org A"}, ActiveOnly: true, GroupTypes: []string{"Report"},
			GroupUserTQL: ` status = "New" OR tag = "x" `, ModifiedSince: since},
			`ownerName IN ("Org A") AND indicatorActive = true AND lastModified GEQ "2024-05-01T10:00:00Z"`,
			`(status = "New" OR tag = "x") AND lastModified GEQ "2024-05-01T10:00:00Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.IndicatorTQL(); got != tt.indicators {
				t.Errorf("IndicatorTQL() =\n %s\nwant\n %s", got, tt.indicators)
			}
			if got := tt.f.GroupTQL(); got != tt.groups {
				t.Errorf("GroupTQL() =\n %s\nwant\n %s", got, tt.groups)
			}
		})
	}
}

func TestAnd(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"", " "}, ""},
		{[]string{"a = 1"}, "a = 1"},
		{[]string{"a = 1 OR b = 2", "id > 5"}, "(a = 1 OR b = 2) AND (id > 5)"},
		{[]string{"(a = 1) OR (b = 2)", "id > 5"}, "((a = 1) OR (b = 2)) AND (id > 5)"},
		{[]string{`(x = ")(")`, "id > 5"}, `(x = ")(") AND (id > 5)`},
	}
	for _, tt := range tests {
		if got := And(tt.in...); got != tt.want {
			t.Errorf("And(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// threatconnect-v3.md §1: timestamps with Z, +0000, millis, trailing spaces, no zone.
func TestParseTime(t *testing.T) {
	want := time.Date(2021, 11, 2, 14, 58, 55, 0, time.UTC)
	for _, s := range []string{"2021-11-02T14:58:55Z", "2021-11-02T14:58:55+0000", "2021-11-02T14:58:55+00:00",
		"2021-11-02T15:58:55+01:00", "2021-11-02T14:58:55", "2021-11-02 14:58:55", "2021-11-02T14:58:55Z  "} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, err := ParseTime("2021-11-02T14:58:55.123Z"); err != nil || got.Nanosecond() != 123000000 {
		t.Errorf("ParseTime(millis) = %v, %v", got, err)
	}
	if _, err := ParseTime("yesterday"); err == nil || !strings.Contains(err.Error(), `"yesterday"`) {
		t.Errorf("ParseTime(yesterday) error = %v, want one naming the value", err)
	}
	var in Indicator
	err := Unmarshal([]byte(`{"id":1,"type":"Host","lastModified":"not a time"}`), &in)
	if err == nil || !strings.Contains(err.Error(), "not a time") || !strings.Contains(err.Error(), "lastModified") {
		t.Errorf("decode bad time: error = %v, want it to name key and value", err)
	}
	// Lenient forms anywhere in the tree; other strings that look like times are untouched.
	var p struct{ Data []Indicator }
	err = Unmarshal([]byte(`{"data":[{"id":9007199254918487,"type":"Host","dateAdded":"2021-11-02T14:58:55+0000","lastModified":"",`+
		`"description":"2021-11-02T14:58:55+0000","tags":{"data":[{"name":"t","lastUsed":"2021-11-02"}]},`+
		`"associatedGroups":{"data":[{"id":1,"type":"Event","name":"e","eventDate":"2021-11-02 14:58:55"}]}}]}`), &p)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Data[0]
	if got.ID != 9007199254918487 || !got.DateAdded.Equal(want) || !got.LastModified.IsZero() ||
		got.Description != "2021-11-02T14:58:55+0000" || got.Tags.Data[0].LastUsed.Day() != 2 || !got.AssociatedGroups.Data[0].EventDate.Equal(want) {
		t.Errorf("lenient decode = %+v", got)
	}
}

// Sizes and vote counts arrive as numbers or strings (threatconnect-v3.md §1).
func TestFlexInt(t *testing.T) {
	tests := []struct {
		in      string
		want    FlexInt
		wantErr bool
	}{
		{`123`, 123, false}, {`"124"`, 124, false}, {`""`, 0, false}, {`null`, 0, false}, {`" 7 "`, 7, false},
		{`12.0`, 12, false}, {`"9007199254918487"`, 9007199254918487, false}, {`"abc"`, 0, true}, {`1.5`, 0, true},
	}
	for _, tt := range tests {
		var n FlexInt
		err := json.Unmarshal([]byte(tt.in), &n)
		if (err != nil) != tt.wantErr || n != tt.want {
			t.Errorf("FlexInt(%s) = %d, %v; want %d, err %v", tt.in, n, err, tt.want, tt.wantErr)
		}
	}
}

// threatconnect-v3.md §6.1: named keys first, value1..3 next, summary last.
func TestIndicatorValue(t *testing.T) {
	tests := []struct {
		name       string
		in         Indicator
		value      string
		values     []string
		wantValues bool
	}{
		{"address", Indicator{Type: TypeAddress, IP: "1.2.3.4", Summary: "x"}, "1.2.3.4", []string{"1.2.3.4"}, true},
		{"email", Indicator{Type: TypeEmailAddress, Address: "a@b.c"}, "a@b.c", nil, false},
		{"host", Indicator{Type: TypeHost, HostName: "bad.com"}, "bad.com", nil, false},
		{"url", Indicator{Type: TypeURL, Text: "http://x/"}, "http://x/", nil, false},
		{"asn", Indicator{Type: TypeASN, ASNumber: "ASN204288"}, "ASN204288", nil, false},
		{"cidr", Indicator{Type: TypeCIDR, Block: "10.0.0.0/8"}, "10.0.0.0/8", nil, false},
		{"subject", Indicator{Type: TypeEmailSubject, Subject: "Hi"}, "Hi", nil, false},
		{"hashtag", Indicator{Type: TypeHashtag, Hashtag: "#x"}, "#x", nil, false},
		{"mutex", Indicator{Type: TypeMutex, Mutex: `Global\m`}, `Global\m`, nil, false},
		{"user agent", Indicator{Type: TypeUserAgent, UserAgentString: "Bot/1"}, "Bot/1", nil, false},
		{"generic values", Indicator{Type: TypeASN, Value1: "ASN1"}, "ASN1", []string{"ASN1"}, true},
		{"custom type", Indicator{Type: "Bitcoin Address", Value1: "1abc"}, "1abc", nil, false},
		{"summary last", Indicator{Type: TypeHost, Summary: "s.com"}, "s.com", nil, false},
		{"file strongest hash", Indicator{Type: TypeFile, MD5: "M", SHA1: "S1", SHA256: "S256"}, "S256", []string{"M", "S1", "S256"}, true},
		{"file md5 only", Indicator{Type: TypeFile, MD5: "M"}, "M", []string{"M"}, true},
		{"file sha1 without md5", Indicator{Type: TypeFile, SHA1: "S1"}, "S1", []string{"", "S1"}, true},
		{"file from summary", Indicator{Type: TypeFile, Summary: strings.Repeat("A", 32) + " : " + strings.Repeat("B", 40)},
			strings.Repeat("B", 40), []string{strings.Repeat("A", 32), strings.Repeat("B", 40)}, true},
		{"registry key", Indicator{Type: TypeRegistryKey, KeyName: `HKLM\x`, ValueName: "Run", ValueType: "REG_SZ"},
			`HKLM\x`, []string{`HKLM\x`, "Run", "REG_SZ"}, true},
		{"registry key from summary", Indicator{Type: TypeRegistryKey, Summary: `HKLM\x : Run : REG_SZ`},
			`HKLM\x`, []string{`HKLM\x`, "Run", "REG_SZ"}, true},
		{"nothing", Indicator{Type: TypeHost}, "", []string{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Value(); got != tt.value {
				t.Errorf("Value() = %q, want %q", got, tt.value)
			}
			if tt.wantValues {
				got := tt.in.Values()
				if strings.Join(got, "|") != strings.Join(tt.values, "|") || len(got) != len(tt.values) {
					t.Errorf("Values() = %q, want %q", got, tt.values)
				}
			}
		})
	}
}

func TestAPIErrorKinds(t *testing.T) {
	tests := []struct {
		status    int
		msg       string
		want      error
		retryable bool
	}{
		{400, "TQL Parse Error: unknown keyword", ErrTQLParse, false},
		{400, "Association cannot be applied", ErrBadRequest, false},
		{401, "Signature data did not match expected result", ErrUnauthorized, false},
		{403, "The requested owner was not found", ErrForbidden, false},
		{404, "The requested resource was not found", ErrNotFound, false},
		{429, "", ErrRateLimited, true},
		{500, "", ErrServer, true},
		{502, "", ErrServer, true},
		{503, "", ErrServer, true},
		{504, "", ErrServer, true},
		{501, "", ErrServer, false},
		{200, "odd", ErrUnsuccessful, false},
	}
	for _, tt := range tests {
		e := &APIError{Method: "GET", Path: "/api/v3/x", StatusCode: tt.status, Message: tt.msg}
		if !errors.Is(e, tt.want) {
			t.Errorf("status %d %q: errors.Is(%v) false", tt.status, tt.msg, tt.want)
		}
		if e.Retryable() != tt.retryable {
			t.Errorf("status %d: Retryable() = %v, want %v", tt.status, e.Retryable(), tt.retryable)
		}
		if !strings.Contains(e.Error(), "/api/v3/x") {
			t.Errorf("Error() = %q does not name the path", e.Error())
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{"Wed, 01 May 2024 00:00:10 GMT", 10 * time.Second}, {"Wed, 01 May 2024 00:00:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	c := &Client{baseDelay: 100 * time.Millisecond, maxDelay: time.Second, maxRA: 5 * time.Second}
	for attempt := range 10 {
		d := c.backoff(attempt, 0)
		if d < 75*time.Millisecond || d > 1250*time.Millisecond {
			t.Errorf("backoff(%d) = %v, outside [75ms, 1.25s]", attempt, d)
		}
	}
	if d := c.backoff(0, 3*time.Second); d != 3*time.Second {
		t.Errorf("backoff with Retry-After 3s = %v, want 3s", d)
	}
	if d := c.backoff(0, time.Hour); d != 5*time.Second {
		t.Errorf("backoff with Retry-After 1h = %v, want the 5s cap", d)
	}
}

func TestOwnerScope(t *testing.T) {
	visible := []Owner{{Name: "Demo Source", Type: "Source"}, {Name: "Demo Organization", Type: "Organization"}, {Name: "C", Type: "Community"}}
	tests := []struct {
		name       string
		configured []string
		visible    []Owner
		want       []string
		wantErr    bool
	}{
		{"empty is the own organization (seed)", nil, visible, []string{"Demo Organization"}, false},
		{"star is every owner", []string{"*"}, visible, nil, false},
		{"names as given", []string{"Demo Source", "Nobody"}, visible, []string{"Demo Source", "Nobody"}, false},
		{"no organization visible", nil, visible[:1], nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OwnerScope(tt.configured, tt.visible)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("OwnerScope(%q) = %q, %v; want %q (error %t)", tt.configured, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
