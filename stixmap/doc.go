// Package stixmap maps ThreatConnect (API v3) indicators, groups, owners and
// security labels to STIX 2.1 objects, following
// reference/stix-mapping.md (§4 tables; ids §3.2; markings §4.5; lifecycle
// §4.10). It is pure and deterministic: no I/O, no clock, no randomness.
// The same input gives the same bytes on every run and machine, whatever
// order the input arrives in, because every list we generate is sorted.
//
// Output. Each mapped object is an Object: its canonical JSON (RFC 8785:
// sorted keys, minimal escaping, no HTML escaping, no insignificant
// whitespace), the fields storage indexes (id, type, created, modified, the
// TLP level of its marking) and a SHA-256 content hash of the JSON without
// "modified", which the sync compares to decide whether a new version is
// needed. The JSON is written directly by a small canonical writer instead of
// going through TcM1911/stix2 marshal + map post-processing (which §0.3 allows):
// the library computes non-conformant SCO ids, cannot marshal TLP 2.0
// markings, emits default booleans, and its reflective marshal costs more than
// the whole budget of the sync (1,000,000 indicators in 120 s). Empty strings
// and lists are never emitted (the schemas reject them).
//
// Ids. SCO ids follow STIX 2.1 §2.9: UUIDv5 in the OASIS namespace over the
// RFC 8785 JSON of the ID contributing properties (one hash, MD5 first).
// The writer's canonical bytes are checked against github.com/gowebpki/jcs
// (SCOID is the general jcs-based path) and the 21 vectors of the
// specification. Every other id is UUIDv5 in N = UUIDv5(NAMESPACE_URL, TC
// base URL) (§3.2.4): groups "<type>|tc-group|<id>", owners
// "identity|tc-owner|<id>", the bridge "identity|bridge", relationships
// "relationship|<src>|<type>|<tgt>" (with "|<creator identity>" after
// "relationship" when both ends are SCOs, which every owner shares), statement markings
// "marking-definition|tc-security-label|<name>|<description>".
//
// Indicator ids are a deliberate deviation from §3.2.4: they derive from
// ThreatConnect's natural key "indicator|tc-indicator|<owner name>|<type>|<normalised
// value>" instead of the TC indicator id, because deletions arrive without an
// id (threatconnect-v3.md §6.5: owner name, type, summary) and must still be
// revoked: DeletedIndicatorIDs recomputes the indicator id and its based-on
// relationship id from the deletion record. The price: renaming an owner,
// or ThreatConnect merging a new hash into a File indicator (its summary and
// thus its key change), yields a new indicator id, and the old one stays
// published unless the sync revokes it (it can find it by its
// x_threatconnect_id, which the TC id still fills, as does the threatconnect
// external reference).
//
// Indicators. One TC indicator gives an indicator SDO with an escaped STIX
// pattern (CheckPattern parses what we emit), the SCO of its value (IPv6 in
// RFC 5952 form, lower-case hashes and host names, expanded registry hives,
// AS numbers as integers) and an indicator based-on SCO relationship; User
// Agent has no SCO and Hashtag maps to nothing. A value its SCO type
// rejects (a host whose xn-- label is not valid punycode, characters no host
// name has, an address the ipv4-addr/ipv6-addr schema refuses) keeps the
// indicator and its pattern; the SCO and based-on are omitted and
// Object.Omitted names the reason for the sync to count. Host DNS
// resolutions (fields=dnsResolution) become domain-name resolves-to
// ipv4-addr/ipv6-addr relationships with the address SCOs, marked like the
// host; the false-positive count becomes x_threatconnect_false_positives.
// Options.ContextLabels labels an indicator with its associated groups
// ("threat-actor:APT28", "malware:Emotet"); Options.OpenCTI adds
// x_opencti_score (ThreatAssess score / 10). Inactive indicators get
// valid_until = lastModified (reversible); revocation is only for deletion
// or leaving a collection's scope (Revoke).
//
// Groups and associations. Each group type maps per §4.3 (Document and
// Report → report, Event and Email → grouping, Signature → indicator with its
// rule as pattern, Threat → intrusion-set by default, Tactic → kill chain
// phases, Task → nothing). Associations follow the §4.4 table; pairs outside
// it become related-to with the lexically smaller id as source. A relationship
// depends only on its two ends (created = the later dateAdded, created_by_ref
// = the source's owner, marking = the stricter TLP of both ends), so the
// indicator side and the group side of one association produce the same id
// and bytes when both carry the same expansions. Containers list associations
// in object_refs, with the owner identity as placeholder when empty, plus
// the based-on relationships of the indicators they contain. File Actions
// (§9.5) become relationships typed and described by the action
// ("file-traffic", "File Traffic") from the File to the other indicator and
// between their observables. Attack patterns carry a mitre-attack external
// reference for the technique id of an ATT&CK tag, attribute or their name,
// as do malware, tools, signatures and indicators whose kill chain comes
// from an associated ATT&CK Tactic; other objects keep ATT&CK attributes in
// x_threatconnect_attributes.
//
// Markings. TC TLP labels map per mode (compat, tlp2, v1-only); the most
// restrictive label wins, DefaultTLP marks unlabelled data, organisation
// labels become statement markings with fixed created time. Object.TLP is the
// level of the marking actually emitted (v1-only AMBER+STRICT → RED).
//
// Cost. A Mapper holds only settings plus two id caches (owners, groups) and
// is safe for concurrent use. Builders come from a sync.Pool and ids are
// hashed from stack buffers, so the output JSON is most of what a call
// allocates; BenchmarkIndicator reports indicators per second and
// allocations per indicator.
package stixmap
