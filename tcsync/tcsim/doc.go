// Package tcsim is an in-process ThreatConnect API v3 simulator: the same
// wire format as the real service where a client can tell, for tests,
// benchmarks, the demo and `taxii-bridge tc-simulator`
// (reference/threatconnect-v3.md §17 is its checklist; cited below as §n).
//
// Authentication is checked as §2.4 describes: "TC <id>:<sig>" with a
// Timestamp within ±5 minutes of the simulator's injectable clock and an
// HMAC-SHA256 over r.RequestURI — the raw request target, so %20 and + are
// both accepted exactly when the signature covers the bytes sent — or
// "TC-Token <token>"; failures are 401 with the real messages. Every answer
// carries a Date header from the same clock, so clock-skew checks can be tested.
//
// Data is generated lazily and deterministically from the seed: indicator n
// (id IndicatorIDBase+n, above 2^53) and group n (GroupIDBase+n) are built
// from a splitmix64 stream seeded by (seed, n) whenever they are needed, so a
// million indicators cost no more memory than a thousand. Indicator types
// cycle through the twelve built-in types, which makes associations
// computable in both directions without storing them: indicator↔group by
// index modulo the group count, group↔group in pairs, and the custom
// indicator-to-indicator associations and File actions of §9.4–§9.5 by fixed
// offsets within the type cycle. Tags (ATT&CK and hostile names), the six TLP
// labels, a custom label and unlabelled items, attributes with their own
// labels, rating/confidence/ThreatAssess spreads, inactive, private and
// locked items occur throughout, and hostile strings (quotes, backslashes,
// newlines, 8 KB, emoji, bidi overrides, STIX-pattern injection) go into
// free-text values and names on a fixed schedule. One host in 37 has an
// xn-- label that is not valid punycode; DNS-active hosts resolve
// (fields=dnsResolution) to the Address indicator before them; File Actions
// expand their indicator with fileActions.<field> (one level, §4.4); every
// indicator has a false-positive count (fields=falsePositives). TQL keywords
// are checked per endpoint: an indicator keyword on /v3/groups (rating GEQ 4)
// or a group keyword on /v3/indicators (status) is a "TQL Parse Error".
//
// Mutations (Modify, Deactivate, Delete, Add, the Associate family and the
// group equivalents) live in a small overlay keyed by id; each one stamps
// lastModified with the simulator's clock (associations bump both ends, a
// choice the real API leaves undocumented, §9.7) and deletions are listed by
// /v3/indicators/deleted. Fail queues faults for the next N requests: any
// status with the error envelope, 429 with Retry-After, a slow answer, a body
// cut in half, or a TCP reset.
//
// Routes (§3, §17.2): /api/v3/indicators (list, by id or summary,
// deleted), /api/v3/groups (list, by id), /api/v3/security/owners,
// /api/v3/tags, /api/v3/securityLabels, /api/v3/indicatorAttributes,
// /api/v3/groupAttributes, /api/v2/owners, and OPTIONS …/tql and …/fields;
// anything else is a JSON 404. Plain HTTP is served (the real service
// answers 403 to it), since tests and the demo run on loopback.
//
// Requests are served with the real envelopes (§5): absolute next/prev
// links that keep every parameter and re-encode spaces as %20, count only
// with count=true on the first page, {} for requested but empty expansions,
// vote counts as strings and File sizes in both forms, fields omitted rather
// than null. fields= expansions allow one level of dot notation (§4.4);
// sorting takes key/direction pairs; indicators are active-only unless the
// TQL mentions indicatorActive (§6.6). The TQL subset (tql.go) covers the
// operators and keywords of §11 and answers anything else with a
// "TQL Parse Error" 400. Ordered by id (the default), a scan starts at the
// query's "id >" bound and offset pages resume where the previous one ended,
// so paging through everything is linear; other orders sort the full match.
// Embedded association lists are capped (Options.EmbedLimit) with the true
// count, the way to exercise association paging (§9.3).
package tcsim
