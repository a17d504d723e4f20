// Package taxii implements the TAXII 2.1 server of taxii-bridge
// (OASIS taxii-v2.1-os; the rules cited as S-…, C-…, D-… are in
// reference/taxii21.md). It serves, with Echo v4:
//
//	GET    /taxii2/                                              discovery
//	GET    /{root}/                                              API root
//	GET    /{root}/status/{status-id}/                           status
//	GET    /{root}/collections/                                  collections
//	GET    /{root}/collections/{id}/                             collection
//	GET    /{root}/collections/{id}/manifest/                    manifest
//	GET    /{root}/collections/{id}/objects/                     envelope
//	POST   /{root}/collections/{id}/objects/                     status (writable collections)
//	GET    /{root}/collections/{id}/objects/{object-id}/         envelope
//	DELETE /{root}/collections/{id}/objects/{object-id}/         (writable collections)
//	GET    /{root}/collections/{id}/objects/{object-id}/versions/ versions
//	GET    /healthz, /readyz                                     operations, outside TAXII
//	GET    /admin/status                                         HTML status page (admin principals)
//
// Every GET route also answers HEAD with the GET's status and headers.
//
// One API root at /{root}/ (DESIGN.md §5). Every path works with and without
// its trailing slash, by rewriting before routing, never by redirect (D-11).
// Collections are addressed by id or alias; the per-request lookup reads an
// in-memory copy of the collection list that is at most one second old and
// is reloaded at once for a key it does not know (see Caches).
//
// Every non-2xx answer goes through one error handler that writes a TAXII
// error resource with a string http_status and an error_id that is also
// logged — router 404/405 (with Allow), 401 (with WWW-Authenticate for Basic
// and Bearer), 406, 413, 415, 422 and 500 alike (D-12). Every TAXII response,
// errors included, has Content-Type application/taxii+json;version=2.1;
// Accept is read leniently and 406 is reserved for headers that name only
// other TAXII versions or unrelated types (D-13, C-1, C-19).
//
// Authentication (D-14) is HTTP Basic against bcrypt hashes, or an API key by
// Bearer, Token, or as a Basic user name or password (C-17); keys are kept as
// SHA-256 digests and compared in constant time. Successful bcrypt checks are
// cached for a minute under a SHA-256 of the Authorization header, and
// concurrent identical checks share one bcrypt run. There is no anonymous
// access: with no principal configured every request is 401. A principal has
// read and write lists (aliases, ids or "*") and an optional TLP ceiling.
// Collections it can neither read nor write are invisible (absent from
// listings, 404 everywhere); visible but not readable is 403 (D-15, A-4).
// Visibility under the ceiling is decided on an object's latest version in
// the collection (DESIGN.md §10, issue 9): an object whose latest version is
// above the ceiling is invisible in every endpoint and under every version
// filter — absent from listings, manifests, versions lists and headers, and
// 404 on GET object and versions through the same store queries as an
// absent object, with the same error text. Of a visible object, versions
// above the ceiling are left out. The store applies the ceiling in SQL
// (storage.Query.MaxTLP), so hidden rows are never counted or paged past.
//
// Listings (objects, object, manifest, versions) are one keyset query each,
// ordered by the store's unique date_added (D-1, D-3, D-7). The page carries
// more and, exactly when more is true, next (D-8, C-4, C-5, A-1): a stateless
// cursor, base64url(JSON) "." base64url(HMAC-SHA-256), binding the API root,
// collection, endpoint, object id, the normalized filter, the page size
// asked for and the last (date_added, row id) served. A next sent alone
// resumes the original query (C-6); sent with filters, they must equal the
// cursor's or the request is a 400. The principal is not in the cursor;
// access and the TLP ceiling are re-checked on every request (S-7.19). Empty
// pages are {} without the X-TAXII-Date-Added headers (D-21, A-2), or
// {"more":false,"objects":[]} for a principal with the EmptyList
// compatibility switch (C-16). Unknown
// objects are 404, known ones filtered to nothing are {}. An objects
// page also stops at a 32 MiB response-byte budget (never below one
// object), with more and next set (D-10, C-20). Object JSON is copied from
// the store byte for byte (D-20). When a page ends with next, the page it
// names is queried in the background right away (prefetch.go), so a crawl's
// store queries overlap with the network; prefetched pages are keyed by the
// cursor, page size and TLP cap, held at most ten seconds, served only
// while current or fresh (see Caches), and dropped on every POST and DELETE.
//
// Writable collections accept POST (S-8.8). The work and memory of a POST
// are bounded by what was sent, never multiplied by it (issue 14): the body
// is read as a stream of JSON tokens, one envelope entry at a time into a
// reused buffer; the entry count is checked as entries arrive, so an
// envelope with more than max_objects_per_post entries (default 10,000,
// advertised in the API root's description and as
// x_taxii_bridge_max_objects_per_post) is refused with 422 at the first
// entry too many, before anything is stored; and each object is checked
// and canonicalized in one pass without per-token allocations (canon.go).
// The envelope is refused whole for a wrong Content-Type (415), a body above
// max_content_length (413, also when it arrives chunked), invalid JSON
// (400), or JSON that is not an envelope — not an object, no objects list,
// an empty one, a property repeated in any letter case, anything after it
// (422). Otherwise each object is checked on its own and, if it fails,
// counted and listed in the status failures with the reason; an envelope
// in which no object passes is a 422. The accepted ones are stored in
// canonical RFC 8785 form in one transaction after the whole envelope was
// read.
//
// A posted object is taken only when it is valid STIX 2.1 for its type
// (issue 9): property names are matched exactly, never case-insensitively
// as encoding/json does; a name repeated at any depth, exactly or in another
// letter case (Unicode simple folding: "TYPE", "Type", "ſ" for "s"), fails
// the object; top-level names must be STIX property names (lower-case
// ASCII, digits, '_'), so a case variant cannot stand alone either; type a
// STIX type name; id "<type>--<lower-case RFC 4122 UUID>"; spec_version
// "2.1"; created and modified STIX timestamps (UTC, literal T and Z, at
// most nine fractional digits) where STIX requires them (not on SCOs; no
// modified on marking definitions), modified not before created; the
// type-specific required properties of the common STIX types;
// object_marking_refs a list of marking-definition ids and
// granular_markings a list of objects; at most 1 MiB of valid UTF-8, nested
// at most 64 deep, numbers within IEEE 754 double range. Its TLP is the
// strictest TLP marking among its exact-case object_marking_refs and
// granular_markings[].marking_ref.
//
// The 202 status is complete at once. Its counts are exact; each of its
// successes, failures and pendings lists keeps its first 10,000 entries
// (Config.StatusDetailsLimit) within a byte budget, details never echo more
// than a short prefix of a posted value, and when entries were left out the
// status says how many (x_taxii_bridge_omitted_successes, …_failures,
// …_pendings) with a note; TAXII lets a server omit the lists (§4.3.1).
// The status belongs to the principal that posted (any other gets the 404
// of an unknown id) and stays readable for status_retention (default 7
// days, at least the 24 hours of S-8.3); expired statuses are deleted by the
// next POST.
//
// Posting a copy of an object hidden from the poster — the collection holds
// its id with a latest version above the poster's TLP ceiling — reveals
// nothing and changes nothing: the copy is not stored (neither a new
// version nor a downgrade of the hidden object, whatever its marking), and
// its status entry is exactly that of an object new to the collection: a
// success with the posted modified (or created) as version, or, for an
// object with neither, a fresh timestamp where a new object shows its new
// date_added — never the hidden object's date_added and never a sign that
// nothing changed. A poster that cannot read the collection likewise never
// sees the date_added of a copy the collection already held. What remains
// is that the poster cannot read its copy back, which is also what happens
// to any object it posts above its own ceiling.
//
// DELETE removes the object from that collection only, as the caller sees
// it: an object hidden from the caller's ceiling is a 404 like an absent
// one and nothing is removed; of a visible object, only the versions within
// the ceiling are removed.
//
// Requests have bounds checked before the work they bound, each refused
// with a 400 TAXII error: the query string (384 KiB), the match[...] values
// (1,000 per field, 64 KiB together, so every issued next fits its bound)
// and a next value (128 KiB). The request line and header block together
// are bounded by MaxHeaderBytes (512 KiB); net/http answers an oversized or
// malformed head itself, before any handler, in plain text (see
// NewHTTPServer).
//
// Every collection poll is logged at Info with the principal, collection,
// added_after, whether next was used, the number of objects, more and the
// last date_added served (B-7); credentials never reach a log line.
//
// Operations (issue 11; etag.go, ratelimit.go, profile.go, ops.go,
// statuspage.go). Every 200 to a GET carries a weak ETag and If-None-Match
// answers 304: a listing's tag is computed before its query from the
// collection, endpoint, reader's TLP cap and profile, raw query, the
// reader's newest date_added and a write counter, so an idle poll costs one
// index probe; an added_after at or past that newest date_added is
// answered {} without a query either. Responses are gzip-compressed
// (klauspost/compress) for clients that accept it. A principal may have a
// rate limit (token bucket, golang.org/x/time/rate): over it, 429 with
// Retry-After as a TAXII error. Failed authentications are counted per
// source address; a throttled address is refused with 429 before any
// bcrypt work, while API keys and cached Basic credentials from it still
// pass. A principal's profile bundles client quirks (objects: [] on empty
// listings, added_after echoed as X-TAXII-Date-Added-Last, a next sent as
// added_after). An Observer receives every request and delivery (metrics);
// the server also keeps a per-principal delivery table for the admin
// status page, server-rendered with html/template, which shows
// collections, sync runs, clients and a redacted configuration summary.
//
// Serve runs the handler with every http.Server timeout set, optional TLS
// (TLS 1.2+, ECDHE AEAD suites only, D-18) and graceful shutdown.
//
// # Caches
//
// Any number of serve replicas may share one database (issue 13). Each
// keeps its own caches, which no other replica invalidates, so each cache
// that holds data read from the database across requests has a bound on how
// long it may serve what another replica (or the sync) has superseded:
//
//   - Collection lookup (collectionCache, resources.go): the collection list
//     by id and alias, for resolving {id} on every request. At most 1 s
//     (collectionCacheTTL) after the query that filled it; a key it does
//     not hold reloads at once, so a new collection is found on its first
//     request. The collections endpoint itself queries per request.
//   - Prefetched pages (prefetch.go): served only when current — the
//     reader's newest mark in the collection (NewestDateAdded, read by
//     every listing anyway) equals the one read before the page was queried,
//     the test that answers 304 — or fresh, queried less than 1 s
//     (prefetchFresh) ago; such a page carries the ETag of its own mark.
//     Bound: 1 s. Held at most 10 s; dropped by this replica's POST and
//     DELETE.
//   - ETags and the "nothing new" answer to added_after (etag.go): nothing
//     is cached. A listing's tag and the shortcut are computed from the
//     newest mark each request reads (bound: none); the per-replica write
//     counter in the tag only adds changes. Other GETs hash the body served.
//   - bcrypt results (auth.go): cached for a minute, but they hold nothing
//     from the database. An entry records that the password in one
//     Authorization header matched the hash configured for its user in this
//     replica's configuration, which is read at start and fixed for the
//     server's life (a changed configuration is a restart, with an empty
//     cache); failed checks are never cached. Users and API keys are
//     configuration, not database data.
//   - Not caches of database data, and per replica by design: a
//     principal's rate limit and the failed-authentication throttle (N
//     replicas admit up to N times the configured rate), the delivery table
//     and sync runs of the status page (this replica's own). The status
//     page's counts and status resources are read per request.
//
// Below this package, storage maps collection ids to internal keys for the
// life of a Store (collections are never deleted or re-keyed), and the
// metrics package caches storage statistics for its StorageTTL (gauges,
// not served data).
package taxii
