package stixmap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// examplesDir holds the OASIS test vectors the tests compare against
// (testdata/oasis/README.md), kept in the repository so that they run in
// every clone.
var examplesDir = filepath.Join("testdata", "oasis")

// TestSCOIDSpecVectors checks SCOID against the 21 objects with
// deterministic ids in the STIX 2.1 specification (stix-mapping.md §3.2.3).
func TestSCOIDSpecVectors(t *testing.T) {
	path := filepath.Join(examplesDir, "oasis-stix-v2.1-spec", "sco-examples-with-deterministic-ids.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(raw, &objs); err != nil {
		t.Fatal(err)
	}
	if len(objs) != 21 {
		t.Fatalf("got %d vectors, want 21", len(objs))
	}
	for _, o := range objs {
		want := o["id"].(string)
		t.Run(want, func(t *testing.T) {
			got, err := SCOID(o)
			if err != nil {
				t.Fatalf("SCOID: %v", err)
			}
			if got != want {
				t.Errorf("SCOID = %s, want %s", got, want)
			}
		})
	}
}

// TestMapperSCOIDs checks the ids the mapper computes with its own writer
// against the spec values of stix-mapping.md §3.2.3 and against SCOID.
func TestMapperSCOIDs(t *testing.T) {
	tests := []struct {
		typ    string
		values []string
		want   string
	}{
		{tcapi.TypeAddress, []string{"198.51.100.3"}, "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"},
		{tcapi.TypeEmailAddress, []string{"john@example.com"}, "email-addr--7165e2a9-671f-585d-b1e1-ca59c671d934"},
		{tcapi.TypeURL, []string{"https://example.com/research/index.html"}, "url--47c3cf9a-5027-5bf0-997a-017c7edc7c55"},
		{tcapi.TypeURL, []string{"http://example.com/a?x=1&y=2"}, "url--ae873ad5-e6a3-51e3-9038-5690ac1c832b"}, // & not escaped
		{tcapi.TypeASN, []string{"AS15139"}, "autonomous-system--3aa27478-50b5-5ab8-9da9-cdc12b657fff"},
		{tcapi.TypeRegistryKey, []string{`HKLM\System\Foo\Bar`}, "windows-registry-key--1884b770-b679-522a-a9c7-45fadaaec7bb"},
		{tcapi.TypeMutex, []string{"__CLEANSWEEP__"}, "mutex--f93fe911-e545-5239-b9b0-597840d0c871"},
		{tcapi.TypeHost, []string{"Example.COM"}, "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"},
		{tcapi.TypeEmailSubject, []string{"Urgent invoice"}, "email-message--0068570f-d323-5a7b-8719-460ce1b45ae5"},
		{tcapi.TypeFile, []string{"D41D8CD98F00B204E9800998ECF8427E"}, "file--02fff920-f614-527c-81d1-6353633a6d21"},
		{tcapi.TypeAddress, []string{"2001:0db8:0000:0000:0000:0000:0000:0001"}, "ipv6-addr--6469e3a9-"}, // RFC 5952 first
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.values[0], func(t *testing.T) {
			ob, err := observe(tt.typ, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if len(ob.scoID) < len(tt.want) || ob.scoID[:len(tt.want)] != tt.want {
				t.Errorf("SCO id = %s, want %s", ob.scoID, tt.want)
			}
			var sco map[string]any
			if err := json.Unmarshal(ob.sco.bytes(), &sco); err != nil {
				t.Fatal(err)
			}
			general, err := SCOID(sco)
			if err != nil {
				t.Fatal(err)
			}
			if general != ob.scoID {
				t.Errorf("writer id %s, SCOID (jcs) %s", ob.scoID, general)
			}
		})
	}
}

// TestSDOIDs checks the namespace and name scheme of stix-mapping.md §3.2.4
// against the worked example of §4.11.
func TestSDOIDs(t *testing.T) {
	x := newIDs("https://companyabc.threatconnect.com/")
	if got, want := x.ns.String(), "20217a3b-1d37-59b9-b61f-47a0c8b6b47b"; got != want {
		t.Errorf("namespace = %s, want %s", got, want)
	}
	for _, tt := range []struct{ got, want string }{
		{x.owner(1), "identity--f8544ed5-9bbf-51de-aecc-3631f0546637"},
		{x.group("threat-actor", 12), "threat-actor--1ceb5ea3-d862-5b0b-9669-71f8a9b0aa98"},
		{x.make("indicator", "indicator|tc-indicator|3"), "indicator--7087722b-36b5-590a-9ea5-a0cce5c94234"},
		{x.relationship("indicator--7087722b-36b5-590a-9ea5-a0cce5c94234", "based-on", "domain-name--b2f6abb4-55ec-5d4a-b7ad-d9d349853efd"),
			"relationship--3fa42d07-189a-57a9-8f52-c5d006a08e57"},
	} {
		if tt.got != tt.want {
			t.Errorf("id = %s, want %s", tt.got, tt.want)
		}
	}
}

// FuzzCanonicalString checks that the writer's string encoding is exactly
// RFC 8785 (as github.com/gowebpki/jcs produces it) for any valid string.
func FuzzCanonicalString(f *testing.F) {
	for _, s := range []string{"", "a&b<c>", `"\'`, "\x00\x1f\x7f", "\u2028\u2029", "é😀", "\ufffd", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = clean(s)
		ours := appendString(nil, s)
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Fatalf("jcs: %v", err)
		}
		if string(ours) != string(want) {
			t.Errorf("appendString(%q) = %s, jcs = %s", s, ours, want)
		}
	})
}
