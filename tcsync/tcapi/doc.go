// Package tcapi is a read-only client for the ThreatConnect REST API v3 and
// the wire types it decodes (reference/threatconnect-v3.md, cited below as §n).
//
// Wire types. Indicator, Group, Owner, Tag, SecurityLabel, Attribute, User,
// DeletedIndicator, FileAction and the List envelope of sub-collections
// follow §5–§9 field for field. Ids are int64 and never pass through float64
// (ids above 2^53 occur, §1); fields whose absence differs from zero
// (rating, confidence, threat-assess scores) are pointers; sizes and vote
// counts that arrive as strings or numbers are FlexInt; an empty requested
// expansion ({}) decodes to an empty List; unknown keys are ignored.
// Timestamps are time.Time: the fast path is plain encoding/json (strict RFC
// 3339, which is what ThreatConnect sends), and only a document that fails
// is re-read with ParseTime applied to the known time keys (+0000 offsets,
// missing zone, trailing spaces) — see Unmarshal. Indicator.Value and
// Indicator.Values pick the primary value and the value parts per type (§6.1).
//
// Requests. Client signs every request with HMAC-SHA256 over the exact
// request target it sends — escaped path from the root plus raw query, with
// url.Values encoding (+ for spaces) on requests it builds and the server's
// own bytes on next links, which are re-based onto the configured scheme and
// host rather than string-replaced (§2.1) — or sends a TC-Token (§2.3).
// Each attempt waits on a token-bucket limiter (golang.org/x/time/rate).
// Timeouts, resets, truncated or corrupt bodies, 429 and 500/502/503/504 are
// retried with jittered exponential backoff that never undercuts
// Retry-After; 400/401/403/404 are final, except one retry of a 401 with a
// fresh timestamp. Every error names the request path and unwraps to a
// sentinel (ErrUnauthorized, ErrTQLParse, ErrRateLimited, …) through
// *APIError. Every call takes a context and stops promptly when it ends.
//
// Paging. List calls stream pages to a callback; a page is handed over only
// after its body was read completely and decoded, so no partial page is ever
// returned as complete. By default pages are keyed by id — each request asks
// for "(filter) AND id > last" sorted by id — because offsets drift when
// items change between pages (§5.4): deleting or re-dating an item before
// the offset silently skips another. With keyset paging every item that
// matches throughout is delivered exactly once, whatever changes meanwhile.
// Setting Query.Sort or Query.Start (as tc-get-indicators -offset does)
// selects the API's own offset paging through next links instead. While the
// caller works on one page the next is already being fetched.
//
// Filters. Filter builds the sync's TQL from the seed feed's settings
// (§12): owners, tags, indicator and group types, active-only (or, without
// it, an explicit "active or inactive" clause, since ThreatConnect returns
// active indicators only by default, §6.6), confidence and ThreatAssess
// minimums (GEQ, the seed's "minimal value") and a lastModified window at
// second precision, every string quoted and escaped per §11.1. A user's own
// indicator TQL replaces the indicator filters as in the seed, and a group
// TQL the group filters; neither reaches the other endpoint, whose keywords
// differ (§11.2, §11.3). Both keep the lastModified window so that
// incremental sync still works. OwnerScope resolves the configured owners
// (empty: the account's own organization, as the seed; "*": all), and
// CheckIndicatorTQL/CheckGroupTQL send a query once so a rejected one is
// reported before a sync. IndicatorsOfGroup, GroupsOfIndicator, GroupsOfGroup and
// CustomAssociations page associations with nested TQL (§9.3) for objects
// whose embedded expansions are capped.
package tcapi
