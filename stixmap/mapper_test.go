package stixmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

const testBase = "https://companyabc.threatconnect.com"

func mustNew(t testing.TB, o Options) *Mapper {
	t.Helper()
	if o.BaseURL == "" {
		o.BaseURL = testBase
	}
	m, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

var day = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// withValue builds an indicator of typ whose value field holds v.
func withValue(typ, v string) tcapi.Indicator {
	in := tcapi.Indicator{ID: 42, OwnerID: 1, OwnerName: "Demo Organization", Type: typ, Summary: v,
		DateAdded: day, LastModified: day.Add(time.Hour), Active: true}
	switch typ {
	case tcapi.TypeAddress:
		in.IP = v
	case tcapi.TypeEmailAddress:
		in.Address = v
	case tcapi.TypeFile:
		in.SHA256 = v
	case tcapi.TypeHost:
		in.HostName = v
	case tcapi.TypeURL:
		in.Text = v
	case tcapi.TypeASN:
		in.ASNumber = v
	case tcapi.TypeCIDR:
		in.Block = v
	case tcapi.TypeEmailSubject:
		in.Subject = v
	case tcapi.TypeMutex:
		in.Mutex = v
	case tcapi.TypeRegistryKey:
		in.KeyName = v
		in.ValueName = v
		in.ValueType = "REG_SZ"
	case tcapi.TypeUserAgent:
		in.UserAgentString = v
	}
	return in
}

func primary(t testing.TB, objs []Object, typ string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(o.JSON, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s among %d objects", typ, len(objs))
	return nil
}

// TestPatternRoundTrip proves that every pattern we build is well-formed and
// compares exactly the (normalised) TC value, for hostile values too
// (stix-mapping.md §3.6).
func TestPatternRoundTrip(t *testing.T) {
	m := mustNew(t, Options{})
	hostile := `it's \ a "q" <b>&</b> ] OR [x:y = '' é😀` + "\n\t"
	tests := []struct {
		typ, value string
		want       map[string]string // object path → compared value
	}{
		{tcapi.TypeAddress, "198.51.100.3", map[string]string{"ipv4-addr:value": "198.51.100.3"}},
		{tcapi.TypeAddress, "2001:0DB8::0001", map[string]string{"ipv6-addr:value": "2001:db8::1"}},
		{tcapi.TypeAddress, "::ffff:192.0.2.1", map[string]string{"ipv4-addr:value": "192.0.2.1"}},
		{tcapi.TypeCIDR, "10.0.0.0/8", map[string]string{"ipv4-addr:value": "10.0.0.0/8"}},
		{tcapi.TypeCIDR, "2001:DB8::/32", map[string]string{"ipv6-addr:value": "2001:db8::/32"}},
		{tcapi.TypeCIDR, "::ffff:0:0/90", map[string]string{"ipv6-addr:value": "::ffff:0:0/90"}},
		{tcapi.TypeCIDR, "::ffff:1.2.3.0/120", map[string]string{"ipv4-addr:value": "1.2.3.0/24"}},
		{tcapi.TypeAddress, "64:ff9b::192.0.2.1", map[string]string{"ipv6-addr:value": "64:ff9b::c000:201"}},
		{tcapi.TypeEmailAddress, hostile + "@x", map[string]string{"email-addr:value": strings.TrimSpace(hostile + "@x")}},
		{tcapi.TypeFile, strings.Repeat("AB", 32), map[string]string{"file:hashes.'SHA-256'": strings.Repeat("ab", 32)}},
		{tcapi.TypeHost, "Bad.Example.", map[string]string{"domain-name:value": "bad.example"}},
		{tcapi.TypeURL, "http://x/" + hostile, map[string]string{"url:value": strings.TrimSpace("http://x/" + hostile)}},
		{tcapi.TypeASN, "ASN204288", map[string]string{"autonomous-system:number": "204288"}},
		{tcapi.TypeASN, "as 15139", map[string]string{"autonomous-system:number": "15139"}},
		{tcapi.TypeMutex, `Global\` + hostile, map[string]string{"mutex:name": strings.TrimSpace(`Global\` + hostile)}},
		{tcapi.TypeRegistryKey, `HKCU\` + hostile, map[string]string{
			"windows-registry-key:key":                 strings.TrimSpace(`HKEY_CURRENT_USER\` + hostile),
			"windows-registry-key:values[*].name":      strings.TrimSpace(`HKCU\` + hostile),
			"windows-registry-key:values[*].data_type": "REG_SZ"}},
		{tcapi.TypeUserAgent, hostile, map[string]string{"network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'": strings.TrimSpace(hostile)}},
		{tcapi.TypeEmailSubject, hostile, map[string]string{"email-message:subject": strings.TrimSpace(hostile)}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.value, func(t *testing.T) {
			objs, err := m.Indicator(withValue(tt.typ, tt.value))
			if err != nil {
				t.Fatalf("Indicator: %v", err)
			}
			checkObjects(t, objs)
			ind := primary(t, objs, "indicator")
			cs, err := CheckPattern(ind["pattern"].(string))
			if err != nil {
				t.Fatalf("CheckPattern(%q): %v", ind["pattern"], err)
			}
			got := map[string]string{}
			for _, c := range cs {
				if c.Operator != "=" {
					t.Errorf("operator %q, want =", c.Operator)
				}
				got[c.Path] = c.Value
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("pattern %q compares (-want +got):\n%s", ind["pattern"], d)
			}
		})
	}
}

// TestCheckPatternRejects shows the checker fails on malformed patterns.
func TestCheckPatternRejects(t *testing.T) {
	for _, p := range []string{
		``, `[`, `[url:value = 'a'`, `[url:value = 'it's']`, `[url:value = 'a\b']`, `[url:value = 'a' OR]`,
		`[url:value 'a']`, `[url value = 'a']`, `[url:value = 'a'] x`, `[file:hashes.'SHA-256 = 'a']`,
		`[autonomous-system:number = 12a]`, `[url:value = 'a\']`, `[a:b[x] = 'c']`,
	} {
		if _, err := CheckPattern(p); err == nil {
			t.Errorf("CheckPattern(%q) = nil error, want an error", p)
		}
	}
	cs, err := CheckPattern(`[windows-registry-key:values[*].name = 'a\\b\'c' AND autonomous-system:number != 7]`)
	if err != nil {
		t.Fatal(err)
	}
	want := []ParsedComparison{{Path: "windows-registry-key:values[*].name", Operator: "=", Value: `a\b'c`},
		{Path: "autonomous-system:number", Operator: "!=", Value: "7", Integer: true}}
	if d := cmp.Diff(want, cs); d != "" {
		t.Errorf("CheckPattern (-want +got):\n%s", d)
	}
}

// TestIndicatorErrors: unmappable input is a clear error naming the field, never a panic.
func TestIndicatorErrors(t *testing.T) {
	m := mustNew(t, Options{})
	tests := []struct {
		name string
		in   tcapi.Indicator
		want string
	}{
		{"empty ip", withValue(tcapi.TypeAddress, " "), `"ip"`},
		{"bad cidr", withValue(tcapi.TypeCIDR, "10.0.0.0/33"), `"Block"`},
		{"bad asn", withValue(tcapi.TypeASN, "ASNfoo"), `"AS Number"`},
		{"asn too big", withValue(tcapi.TypeASN, "AS4294967296"), `"AS Number"`},
		{"bad md5", tcapi.Indicator{ID: 1, OwnerName: "o", Type: tcapi.TypeFile, MD5: "xyz", DateAdded: day}, `"md5"`},
		{"short sha256", withValue(tcapi.TypeFile, "abcd"), `"sha256"`},
		{"no hashes", tcapi.Indicator{ID: 1, OwnerName: "o", Type: tcapi.TypeFile, DateAdded: day}, "at least one"},
		{"empty host", withValue(tcapi.TypeHost, " "), `"hostName"`},
		{"empty url", withValue(tcapi.TypeURL, ""), `"text"`},
		{"empty mutex", withValue(tcapi.TypeMutex, ""), `"Mutex"`},
		{"empty registry key", withValue(tcapi.TypeRegistryKey, ""), `"Key Name"`},
		{"unknown type", tcapi.Indicator{ID: 1, OwnerName: "o", Type: "Bitcoin Wallet", Value1: "x", DateAdded: day}, `"Bitcoin Wallet"`},
		{"no owner", tcapi.Indicator{ID: 1, Type: tcapi.TypeHost, HostName: "a.example", DateAdded: day}, "ownerName"},
		{"no dates", tcapi.Indicator{ID: 1, OwnerName: "o", Type: tcapi.TypeHost, HostName: "a.example"}, "dateAdded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := m.Indicator(tt.in)
			if err == nil {
				t.Fatalf("Indicator = %d objects, want an error", len(objs))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
		})
	}
	objs, err := m.Indicator(withValue(tcapi.TypeHashtag, "#x"))
	if err != nil || objs != nil {
		t.Errorf("Hashtag: Indicator = %v, %v; want nil, nil (no STIX mapping, stix-mapping.md §4.2)", objs, err)
	}
}

func TestGroupErrors(t *testing.T) {
	m := mustNew(t, Options{})
	tests := []struct {
		name string
		in   tcapi.Group
		want string
	}{
		{"unknown type", tcapi.Group{ID: 1, Type: "Case", Name: "x", DateAdded: day}, `"Case"`},
		{"empty name", tcapi.Group{ID: 1, Type: tcapi.GroupMalware, Name: " ", DateAdded: day}, "name"},
		{"signature without text", tcapi.Group{ID: 1, Type: tcapi.GroupSignature, Name: "s", FileType: "YARA", DateAdded: day}, "fileText"},
		{"signature without type", tcapi.Group{ID: 1, Type: tcapi.GroupSignature, Name: "s", FileText: "x", DateAdded: day}, "fileType"},
		{"no dates", tcapi.Group{ID: 1, Type: tcapi.GroupMalware, Name: "m"}, "dateAdded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Group(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Group error = %v, want one mentioning %s", err, tt.want)
			}
		})
	}
	for _, typ := range []string{tcapi.GroupTactic, tcapi.GroupTask} {
		if objs, err := m.Group(tcapi.Group{ID: 1, Type: typ, Name: "x", DateAdded: day}); err != nil || objs != nil {
			t.Errorf("Group(%s) = %v, %v; want nil, nil (stix-mapping.md §4.3)", typ, objs, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{},
		{BaseURL: testBase, TLPMode: "tlp3"},
		{BaseURL: testBase, IndicatorReputation: "evil"},
		{BaseURL: testBase, SourceReliability: "G"},
		{BaseURL: testBase, SourceReliability: "Bx"},
		{BaseURL: testBase, ThreatAs: "malware"},
		{BaseURL: testBase, IdentityClass: map[string]string{"Source": "feed"}},
		{BaseURL: testBase, DefaultTLP: tlp.Level(9)},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) = nil error, want an error", o)
		}
	}
}

// shuffled returns a copy of in with indicators, groups and every embedded
// list in a random order.
func shuffled(in goldenInput, r *rand.Rand) goldenInput {
	out := in
	out.Indicators = slices.Clone(in.Indicators)
	out.Groups = slices.Clone(in.Groups)
	r.Shuffle(len(out.Indicators), func(i, j int) { out.Indicators[i], out.Indicators[j] = out.Indicators[j], out.Indicators[i] })
	r.Shuffle(len(out.Groups), func(i, j int) { out.Groups[i], out.Groups[j] = out.Groups[j], out.Groups[i] })
	shuf := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	for i := range out.Indicators {
		x := &out.Indicators[i]
		x.Tags.Data = slices.Clone(x.Tags.Data)
		shuf(len(x.Tags.Data), func(a, b int) { x.Tags.Data[a], x.Tags.Data[b] = x.Tags.Data[b], x.Tags.Data[a] })
		x.SecurityLabels.Data = slices.Clone(x.SecurityLabels.Data)
		shuf(len(x.SecurityLabels.Data), func(a, b int) {
			x.SecurityLabels.Data[a], x.SecurityLabels.Data[b] = x.SecurityLabels.Data[b], x.SecurityLabels.Data[a]
		})
		x.Attributes.Data = slices.Clone(x.Attributes.Data)
		shuf(len(x.Attributes.Data), func(a, b int) {
			x.Attributes.Data[a], x.Attributes.Data[b] = x.Attributes.Data[b], x.Attributes.Data[a]
		})
		x.AssociatedGroups.Data = slices.Clone(x.AssociatedGroups.Data)
		shuf(len(x.AssociatedGroups.Data), func(a, b int) {
			x.AssociatedGroups.Data[a], x.AssociatedGroups.Data[b] = x.AssociatedGroups.Data[b], x.AssociatedGroups.Data[a]
		})
	}
	for i := range out.Groups {
		x := &out.Groups[i]
		x.AssociatedGroups.Data = slices.Clone(x.AssociatedGroups.Data)
		shuf(len(x.AssociatedGroups.Data), func(a, b int) {
			x.AssociatedGroups.Data[a], x.AssociatedGroups.Data[b] = x.AssociatedGroups.Data[b], x.AssociatedGroups.Data[a]
		})
		x.AssociatedIndicators.Data = slices.Clone(x.AssociatedIndicators.Data)
		shuf(len(x.AssociatedIndicators.Data), func(a, b int) {
			x.AssociatedIndicators.Data[a], x.AssociatedIndicators.Data[b] = x.AssociatedIndicators.Data[b], x.AssociatedIndicators.Data[a]
		})
		x.Attributes.Data = slices.Clone(x.Attributes.Data)
		shuf(len(x.Attributes.Data), func(a, b int) {
			x.Attributes.Data[a], x.Attributes.Data[b] = x.Attributes.Data[b], x.Attributes.Data[a]
		})
	}
	return out
}

// TestDeterminism maps every golden input twice, the second time with all
// lists shuffled, and requires byte-identical objects (stix-mapping.md §4.1
// "ordering").
func TestDeterminism(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.tc.json"))
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in := mustReadInput(t, f)
			a := byID(mapAll(t, mustMapper(t, in), in))
			for range 3 {
				b := byID(mapAll(t, mustMapper(t, in), shuffled(in, r)))
				if len(a) != len(b) {
					t.Fatalf("%d objects, then %d", len(a), len(b))
				}
				for id, js := range a {
					if !bytes.Equal(js, b[id]) {
						t.Errorf("%s differs after shuffling:\n%s\n%s", id, js, b[id])
					}
				}
			}
		})
	}
}

func byID(objs []Object) map[string][]byte {
	m := make(map[string][]byte, len(objs))
	for _, o := range objs {
		m[o.ID] = o.JSON
	}
	return m
}

// TestDeletedIndicatorIDs: the ids recomputed from a deletion record
// (owner, type, summary; threatconnect-v3.md §6.5) are the ids Indicator gave.
func TestDeletedIndicatorIDs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.tc.json"))
	n := 0
	for _, f := range files {
		in := mustReadInput(t, f)
		m := mustMapper(t, in)
		for _, ind := range in.Indicators {
			objs, err := m.Indicator(ind)
			if err != nil || len(objs) == 0 {
				continue
			}
			var want []string
			for _, o := range objs {
				if o.Type == "indicator" || o.Type == "relationship" && strings.Contains(string(o.JSON), `"based-on"`) {
					want = append(want, o.ID)
				}
			}
			got, err := m.DeletedIndicatorIDs(tcapi.DeletedIndicator{OwnerName: ind.OwnerName, Type: ind.Type, Summary: ind.Summary})
			if err != nil {
				t.Errorf("%s %d: DeletedIndicatorIDs: %v", filepath.Base(f), ind.ID, err)
				continue
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s %d (%s %q) ids (-from Indicator +from deletion):\n%s", filepath.Base(f), ind.ID, ind.Type, ind.Summary, d)
			}
			n++
		}
	}
	if n < 20 {
		t.Errorf("checked only %d indicators", n)
	}
	m := mustNew(t, Options{})
	if _, err := m.DeletedIndicatorIDs(tcapi.DeletedIndicator{Type: tcapi.TypeHost, Summary: "a.example"}); err == nil {
		t.Error("deletion without owner: want an error")
	}
	// An indicator whose value is no valid address still exists (pattern only), so its deletion revokes it.
	if ids, err := m.DeletedIndicatorIDs(tcapi.DeletedIndicator{OwnerName: "o", Type: tcapi.TypeAddress, Summary: "nope"}); err != nil || len(ids) != 1 {
		t.Errorf("deletion with a bad address = %q, %v; want the indicator id alone", ids, err)
	}
	if _, err := m.DeletedIndicatorIDs(tcapi.DeletedIndicator{OwnerName: "o", Type: tcapi.TypeAddress, Summary: " "}); err == nil {
		t.Error("deletion with an empty address: want an error")
	}
	id, err := m.IndicatorID("o", tcapi.TypeHost, "A.example")
	if err != nil || !strings.HasPrefix(id, "indicator--") {
		t.Errorf("IndicatorID = %q, %v", id, err)
	}
}

// TestHashIgnoresModified: a new lastModified alone changes the bytes but
// not the content hash (stix-mapping.md §0.7); a content change changes it.
func TestHashIgnoresModified(t *testing.T) {
	m := mustNew(t, Options{})
	a := withValue(tcapi.TypeHost, "a.example")
	b := a
	b.LastModified = a.LastModified.Add(24 * time.Hour)
	c := a
	c.Tags.Data = []tcapi.Tag{{Name: "new"}}
	oa, _ := m.Indicator(a)
	ob, _ := m.Indicator(b)
	oc, _ := m.Indicator(c)
	if bytes.Equal(oa[0].JSON, ob[0].JSON) || oa[0].Hash != ob[0].Hash {
		t.Errorf("modified-only change: JSON equal %v, hash equal %v; want different JSON, same hash",
			bytes.Equal(oa[0].JSON, ob[0].JSON), oa[0].Hash == ob[0].Hash)
	}
	if oa[0].Hash == oc[0].Hash {
		t.Error("tag change kept the content hash")
	}
}

// TestRevoke covers stix-mapping.md §3.3/§4.10: revoked is a new, later,
// permanent version; SCOs and markings cannot be revoked.
// TestBump: a changed object whose modified did not move becomes the next
// version (latest + 1 ms) with canonical JSON and the same content hash;
// an object already newer, and an SCO, are left alone.
func TestBump(t *testing.T) {
	m := mustNew(t, Options{})
	objs, err := m.Indicator(withValue(tcapi.TypeHost, "bumped.example"))
	if err != nil {
		t.Fatal(err)
	}
	ind := objs[0]
	for _, tt := range []struct {
		name  string
		after time.Time
		want  time.Time
	}{
		{"same modified", ind.Modified, ind.Modified.Add(time.Millisecond)},
		{"stored is newer", ind.Modified.Add(time.Hour), ind.Modified.Add(time.Hour + time.Millisecond)},
		{"already newer", ind.Modified.Add(-time.Hour), ind.Modified},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bump(ind, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Modified.Equal(tt.want) || b.Hash != ind.Hash || b.ID != ind.ID || !b.Created.Equal(ind.Created) {
				t.Errorf("Bump: modified %v hash same %v; want modified %v and the same hash", b.Modified, b.Hash == ind.Hash, tt.want)
			}
			checkObjects(t, []Object{b})
			var v, old map[string]any
			_ = json.Unmarshal(b.JSON, &v)
			_ = json.Unmarshal(ind.JSON, &old)
			if v["modified"] != stamp(tt.want) {
				t.Errorf("bumped JSON modified = %v, want %s", v["modified"], stamp(tt.want))
			}
			delete(v, "modified")
			delete(old, "modified")
			if d := cmp.Diff(old, v); d != "" {
				t.Errorf("Bump changed other properties:\n%s", d)
			}
		})
	}
	if b, err := Bump(objs[1], day); err != nil || string(b.JSON) != string(objs[1].JSON) {
		t.Errorf("Bump of an SCO = %s, %v; want it unchanged", b.JSON, err)
	}
	if _, err := Bump(Object{ID: "indicator--x", Modified: day, JSON: []byte("[1")}, day); err == nil || !strings.Contains(err.Error(), "indicator--x") {
		t.Errorf("Bump of broken JSON: error %v, want one naming the object", err)
	}
}

func TestRevoke(t *testing.T) {
	m := mustNew(t, Options{})
	objs, err := m.Indicator(withValue(tcapi.TypeHost, "gone.example"))
	if err != nil {
		t.Fatal(err)
	}
	ind := objs[0]
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"later time", ind.Modified.Add(time.Hour), ind.Modified.Add(time.Hour)},
		{"clock behind", ind.Modified.Add(-time.Hour), ind.Modified.Add(time.Millisecond)},
		{"same time", ind.Modified, ind.Modified.Add(time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Revoke(ind, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Modified.Equal(tt.want) || !r.Created.Equal(ind.Created) || r.ID != ind.ID {
				t.Errorf("Revoke: modified %v created %v id %s; want %v %v %s", r.Modified, r.Created, r.ID, tt.want, ind.Created, ind.ID)
			}
			checkObjects(t, []Object{r})
			var v map[string]any
			_ = json.Unmarshal(r.JSON, &v)
			var old map[string]any
			_ = json.Unmarshal(ind.JSON, &old)
			if v["revoked"] != true || v["modified"] != stamp(tt.want) {
				t.Errorf("revoked JSON: revoked=%v modified=%v", v["revoked"], v["modified"])
			}
			delete(v, "revoked")
			delete(v, "modified")
			delete(old, "modified")
			if d := cmp.Diff(old, v); d != "" {
				t.Errorf("revocation changed other properties:\n%s", d)
			}
			if r.Hash == ind.Hash {
				t.Error("revoked version has the same content hash")
			}
			if _, err := Revoke(r, tt.at); !errors.Is(err, ErrRevoked) {
				t.Errorf("second Revoke error = %v, want ErrRevoked", err)
			}
		})
	}
	if _, err := Revoke(objs[1], day); err == nil {
		t.Errorf("Revoke(%s) = nil error, want: SCOs cannot be revoked", objs[1].Type)
	}
	if _, err := Revoke(Object{ID: "x", JSON: []byte("[1")}, day); err == nil {
		t.Error("Revoke of broken JSON: want an error")
	}
}

// TestMarkingsMatchOASIS compares our marking definitions with the
// vendored OASIS objects (stix-mapping.md §3.4).
func TestMarkingsMatchOASIS(t *testing.T) {
	want := map[string]any{}
	load := func(path string) {
		raw, err := os.ReadFile(filepath.Join(examplesDir, path))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		var objs []any
		switch x := v.(type) {
		case []any:
			objs = x
		case map[string]any:
			if o, ok := x["objects"].([]any); ok {
				objs = o
			} else {
				objs = []any{x}
			}
		}
		for _, o := range objs {
			om := o.(map[string]any)
			want[om["id"].(string)] = om
		}
	}
	load("oasis-stix-v2.1-spec/tlp1-marking-definitions.json")
	for _, f := range []string{"bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "e828b379-4e03-4974-9ac4-e53a884c97c1", "939a9414-2ddd-4d32-a0cd-375ea402b003"} {
		load("oasis-cti-stix-common-objects/objects/marking-definition/marking-definition--" + f + ".json")
	}
	load("oasis-cti-stix-common-objects/extension-definition-specifications/tlp-2.0/examples/tlp-clear.json")
	load("oasis-cti-stix-common-objects/extension-definition-specifications/tlp-2.0/examples/tlp-amber.json")
	load("oasis-cti-stix-common-objects/objects/extension-definition/extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d.json")
	seen := 0
	for _, mode := range []string{ModeCompat, ModeTLP2, ModeV1Only} {
		for _, o := range mustNew(t, Options{TLPMode: mode}).Markings() {
			w, ok := want[o.ID]
			if o.ID == tlp2CreatorID {
				continue // ours: OASIS publishes no object for the extension's creator
			}
			if !ok {
				t.Errorf("%s: marking %s is not an OASIS object", mode, o.ID)
				continue
			}
			var got any
			_ = json.Unmarshal(o.JSON, &got)
			if d := cmp.Diff(w, got); d != "" {
				t.Errorf("%s differs from OASIS (-oasis +ours):\n%s", o.ID, d)
			}
			seen++
		}
	}
	if seen < 10 {
		t.Errorf("compared only %d markings", seen)
	}
}

// TestObjectFields checks the fields the sync routes on.
func TestObjectFields(t *testing.T) {
	m := mustNew(t, Options{DefaultTLP: tlp.Green})
	in := withValue(tcapi.TypeHost, "a.example")
	c := 80
	in.Confidence = &c
	in.Tags.Data = []tcapi.Tag{{Name: "b"}, {Name: "a"}}
	objs, err := m.Indicator(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.TCID != 42 || o.TCType != tcapi.TypeHost || o.Owner != "Demo Organization" || o.Confidence != 80 ||
			!slices.Equal(o.Tags, []string{"a", "b"}) || o.TLP != tlp.Green {
			t.Errorf("%s: fields %+v", o.ID, o)
		}
		if versioned := !o.Modified.IsZero(); versioned == (o.Type == "domain-name") {
			t.Errorf("%s: Modified zero = %v", o.ID, o.Modified.IsZero())
		}
	}
	owner, err := m.Owner(tcapi.Owner{ID: 1, Name: "Demo Organization", Type: "Source"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(objs[0].JSON), `"created_by_ref":"`+owner.ID+`"`) {
		t.Errorf("indicator created_by_ref does not point at the owner identity %s", owner.ID)
	}
	if !strings.Contains(string(owner.JSON), `"identity_class":"system"`) {
		t.Errorf("Source owner identity: %s", owner.JSON)
	}
	checkObjects(t, []Object{owner, m.Bridge()})
	if _, err := m.Owner(tcapi.Owner{ID: 2}); err == nil {
		t.Error("owner without name: want an error")
	}
}

// TestConcurrentUse: one Mapper is shared by the sync's goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	m := mustNew(t, Options{})
	inds := benchIndicators()[:200]
	want := make([][]Object, len(inds))
	for i, in := range inds {
		want[i], _ = m.Indicator(in)
	}
	done := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := range inds {
				j := (i + w*50) % len(inds)
				got, err := m.Indicator(inds[j])
				if err != nil {
					done <- err
					return
				}
				for k := range got {
					if !bytes.Equal(got[k].JSON, want[j][k].JSON) {
						done <- errors.New("concurrent mapping changed the output of " + got[k].ID)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestCIDRSubset: the optional ISSUBSET form of CIDR patterns (stix-mapping.md §4.2).
func TestCIDRSubset(t *testing.T) {
	for _, tt := range []struct {
		subset bool
		want   string
	}{{false, "="}, {true, "ISSUBSET"}} {
		m := mustNew(t, Options{CIDRSubset: tt.subset})
		objs, err := m.Indicator(withValue(tcapi.TypeCIDR, "198.51.100.0/24"))
		if err != nil {
			t.Fatal(err)
		}
		checkObjects(t, objs)
		cs, err := CheckPattern(primary(t, objs, "indicator")["pattern"].(string))
		if err != nil || len(cs) != 1 || cs[0].Operator != tt.want || cs[0].Value != "198.51.100.0/24" {
			t.Errorf("CIDRSubset=%v: %+v, %v; want operator %s", tt.subset, cs, err, tt.want)
		}
	}
}

// TestSCORelationshipPerOwner: the same link between two shared SCOs,
// asserted by two owners, gives two relationships (one per creator), while
// links with an SDO end keep the §3.2.4 id.
func TestSCORelationshipPerOwner(t *testing.T) {
	m := mustNew(t, Options{})
	pair := func(owner string, ownerID int64) string {
		asn := withValue(tcapi.TypeASN, "AS64500")
		asn.OwnerName, asn.OwnerID = owner, ownerID
		addr := withValue(tcapi.TypeAddress, "192.0.2.1")
		addr.OwnerName, addr.OwnerID = owner, ownerID
		asn.AssociatedIndicators.Data = []tcapi.Indicator{addr}
		objs, err := m.Indicator(asn)
		if err != nil {
			t.Fatal(err)
		}
		checkObjects(t, objs)
		for _, o := range objs {
			if strings.Contains(string(o.JSON), `"belongs-to"`) {
				return o.ID
			}
		}
		t.Fatal("no belongs-to relationship")
		return ""
	}
	if a, b := pair("Org A", 1), pair("Org B", 2); a == b {
		t.Errorf("two owners share relationship id %s", a)
	}
	if a, b := pair("Org A", 1), pair("Org A", 1); a != b {
		t.Errorf("same owner, ids %s and %s", a, b)
	}
}

// TestAssociationSymmetry: the indicator side and the group side of one
// association yield one relationship with the same bytes even when the
// embedded copies omit owner fields (stix-mapping.md §4.4 rule 2).
func TestAssociationSymmetry(t *testing.T) {
	m := mustNew(t, Options{})
	ind := withValue(tcapi.TypeHost, "c2.example")
	grp := tcapi.Group{ID: 9, OwnerID: 1, OwnerName: "Demo Organization", Type: tcapi.GroupMalware, Name: "Loader",
		DateAdded: day.Add(48 * time.Hour), LastModified: day.Add(72 * time.Hour)}
	ind.AssociatedGroups.Data = []tcapi.Group{{ID: 9, OwnerName: "Demo Organization", Type: tcapi.GroupMalware, Name: "Loader", DateAdded: grp.DateAdded}}
	grp.AssociatedIndicators.Data = []tcapi.Indicator{{ID: ind.ID, Type: ind.Type, Summary: ind.Summary, DateAdded: ind.DateAdded}}
	rel := func(objs []Object, err error) Object {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if strings.Contains(string(o.JSON), `"indicates"`) {
				return o
			}
		}
		t.Fatal("no indicates relationship")
		return Object{}
	}
	a, b := rel(m.Indicator(ind)), rel(m.Group(grp))
	if a.ID != b.ID || !bytes.Equal(a.JSON, b.JSON) {
		t.Errorf("two sides differ:\n%s\n%s", a.JSON, b.JSON)
	}
	if !a.Created.Equal(grp.DateAdded) {
		t.Errorf("created = %v, want the later dateAdded %v", a.Created, grp.DateAdded)
	}
}

// TestConfidence covers stix-mapping.md §4.6: 0/absent is unspecified,
// values clamp to 100, and the optional threatAssessConfidence fallback.
func TestConfidence(t *testing.T) {
	p := func(v int) *int { return &v }
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		fallback bool
		conf     *int
		ta       *float64
		want     any // nil = absent
	}{
		{"absent", false, nil, f(70), nil},
		{"zero", false, p(0), nil, nil},
		{"kept", false, p(74), f(10), float64(74)},
		{"clamped", false, p(150), nil, float64(100)},
		{"fallback", true, nil, f(71.5), float64(72)},
		{"fallback after zero", true, p(0), f(30.2), float64(30)},
		{"fallback zero", true, nil, f(0), nil},
		{"tc wins", true, p(5), f(90), float64(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, Options{ConfidenceFromThreatAssess: tt.fallback})
			in := withValue(tcapi.TypeHost, "a.example")
			in.Confidence, in.ThreatAssessConfidence = tt.conf, tt.ta
			objs, err := m.Indicator(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := primary(t, objs, "indicator")["confidence"]; got != tt.want {
				t.Errorf("confidence = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInvalidObservableKeepsIndicator: a value its SCO type rejects keeps the
// indicator and its pattern, drops the SCO and based-on, and names the
// reason in Object.Omitted (issue 10 item 8).
func TestInvalidObservableKeepsIndicator(t *testing.T) {
	m := mustNew(t, Options{})
	tests := []struct {
		name    string
		in      tcapi.Indicator
		pattern string
	}{
		{"not punycode", withValue(tcapi.TypeHost, "xn--zz.bad.example"), "[domain-name:value = 'xn--zz.bad.example']"},
		{"punycode of disallowed runes", withValue(tcapi.TypeHost, "xn--zz-not-punycode.example"), "[domain-name:value = 'xn--zz-not-punycode.example']"},
		{"empty punycode", withValue(tcapi.TypeHost, "xn--.example"), "[domain-name:value = 'xn--.example']"},
		{"space in host", withValue(tcapi.TypeHost, "a b.example"), "[domain-name:value = 'a b.example']"},
		{"quote in host", withValue(tcapi.TypeHost, "a'b.example"), `[domain-name:value = 'a\'b.example']`},
		{"bad ipv4", withValue(tcapi.TypeAddress, "999.1.1.1"), "[ipv4-addr:value = '999.1.1.1']"},
		{"ipv6 zone", withValue(tcapi.TypeAddress, "fe80::1%eth0"), "[ipv6-addr:value = 'fe80::1%eth0']"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := m.Indicator(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 || objs[0].Type != "indicator" {
				t.Fatalf("Indicator = %d objects; want the indicator alone", len(objs))
			}
			if objs[0].Omitted != OmittedInvalidValue {
				t.Errorf("Omitted = %q, want %q", objs[0].Omitted, OmittedInvalidValue)
			}
			var ind struct{ Pattern string }
			_ = json.Unmarshal(objs[0].JSON, &ind)
			if ind.Pattern != tt.pattern {
				t.Errorf("pattern = %s, want %s", ind.Pattern, tt.pattern)
			}
			checkObjects(t, objs)
		})
	}
	objs, err := m.Indicator(withValue(tcapi.TypeHost, "xn--bcher-kva.example"))
	if err != nil || len(objs) != 3 || objs[0].Omitted != "" {
		t.Errorf("valid punycode host: %d objects, omitted %q, %v; want indicator, SCO and based-on", len(objs), objs[0].Omitted, err)
	}
}

// TestContextLabelsFollowAssociations: with Options.ContextLabels an
// indicator's labels name its associated groups, so a changed association
// changes the content hash and makes a new version.
func TestContextLabelsFollowAssociations(t *testing.T) {
	m := mustNew(t, Options{ContextLabels: true})
	in := withValue(tcapi.TypeHost, "ctx.example")
	in.AssociatedGroups.Data = []tcapi.Group{{ID: 7, Type: tcapi.GroupAdversary, Name: "APT28", DateAdded: day}}
	a, err := m.Indicator(in)
	if err != nil {
		t.Fatal(err)
	}
	in.AssociatedGroups.Data = append(in.AssociatedGroups.Data, tcapi.Group{ID: 8, Type: tcapi.GroupMalware, Name: "Emotet", DateAdded: day})
	b, err := m.Indicator(in)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Hash == b[0].Hash {
		t.Error("a new association left the indicator's content hash unchanged")
	}
	if !bytes.Contains(b[0].JSON, []byte(`"malware:Emotet"`)) || !bytes.Contains(b[0].JSON, []byte(`"threat-actor:APT28"`)) {
		t.Errorf("labels missing: %s", b[0].JSON)
	}
	off, _ := mustNew(t, Options{}).Indicator(in)
	if bytes.Contains(off[0].JSON, []byte(`"malware:Emotet"`)) {
		t.Errorf("context labels without the option: %s", off[0].JSON)
	}
}
