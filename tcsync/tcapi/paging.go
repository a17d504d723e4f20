package tcapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MaxPageSize is the largest resultLimit ThreatConnect accepts (threatconnect-v3.md §4.1).
const MaxPageSize = 10000

// DefaultPageSize is the page size used when Query.PageSize is zero.
const DefaultPageSize = 1000

// Query selects and pages a list endpoint.
//
// Paging order. Offsets drift when data changes between pages
// (threatconnect-v3.md §5.4): deleting, deactivating or re-dating an item
// that sorts before the current offset makes the next page skip one item.
// So by default the client pages by id (keyset): every request asks for
// "(TQL) AND id > <last id seen>" with sorting "id ASC" and resultStart 0,
// and the server's next link only says whether more data exists. Ids never
// change, so no mutation between pages can make a page skip or repeat an
// item that matches throughout; items added meanwhile get higher ids and are
// seen at the end. Each page is checked to be in strictly ascending id order
// above the previous one, and a server that ignores the sorting is an error,
// not a silent skip.
//
// Setting Sort or Start (or OffsetPaging) switches to plain offset paging:
// resultStart/resultLimit with the server's absolute next links followed
// (re-based onto the configured host and signed as received). That is what
// tc-get-indicators -offset needs, and it is exposed to mutation drift as the
// API documents.
type Query struct {
	// TQL filters the list (see Filter for a builder). Empty means everything.
	TQL string
	// Fields are the fields= expansions (tags, securityLabels, attributes,
	// associatedGroups, associatedIndicators, threatAssess, …), one parameter each.
	Fields []string
	// Owner restricts the list to one owner by name (the owner parameter, §4.6).
	Owner string
	// Sort is the sorting parameter, e.g. "lastModified ASC". Setting it selects offset paging.
	Sort string
	// PageSize is resultLimit, 1..MaxPageSize; 0 means DefaultPageSize.
	PageSize int
	// Start is the first resultStart. Setting it selects offset paging.
	Start int
	// Limit stops after this many items in total; 0 means no limit.
	Limit int
	// OffsetPaging forces offset paging with next links even without Sort or Start.
	OffsetPaging bool
}

func (q Query) pageSize() (int, error) {
	n := q.PageSize
	if n == 0 {
		n = DefaultPageSize
	}
	if n < 1 || n > MaxPageSize {
		return 0, fmt.Errorf("page size %d out of range 1..%d", q.PageSize, MaxPageSize)
	}
	if q.Limit > 0 && q.Limit < n {
		n = q.Limit
	}
	return n, nil
}

func (q Query) keyset() bool { return q.Sort == "" && q.Start == 0 && !q.OffsetPaging }

// Owners lists the owners the credentials can read (GET /v3/security/owners).
func (c *Client) Owners(ctx context.Context) ([]Owner, error) {
	var all []Owner
	q := Query{PageSize: 500, OffsetPaging: true}
	err := pages(ctx, c, "/v3/security/owners", q, func(o Owner) int64 { return o.ID }, func(p []Owner) error {
		all = append(all, p...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list owners: %w", err)
	}
	return all, nil
}

// Indicators streams the indicators matching q to fn, one page at a time.
// fn sees only complete, fully decoded pages; an error from fn stops paging
// and is returned wrapped.
func (c *Client) Indicators(ctx context.Context, q Query, fn func(page []Indicator) error) error {
	if err := pages(ctx, c, "/v3/indicators", q, func(i Indicator) int64 { return i.ID }, fn); err != nil {
		return fmt.Errorf("list indicators: %w", err)
	}
	return nil
}

// Groups streams the groups matching q to fn, one page at a time (see Indicators).
func (c *Client) Groups(ctx context.Context, q Query, fn func(page []Group) error) error {
	if err := pages(ctx, c, "/v3/groups", q, func(g Group) int64 { return g.ID }, fn); err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	return nil
}

// Indicator fetches one indicator by id with the given fields expansions.
func (c *Client) Indicator(ctx context.Context, id int64, fields ...string) (*Indicator, error) {
	v := url.Values{}
	for _, f := range fields {
		v.Add("fields", f)
	}
	env, err := get[*Indicator](ctx, c, c.endpoint("/v3/indicators/"+strconv.FormatInt(id, 10), v))
	if err != nil {
		return nil, fmt.Errorf("get indicator %d: %w", id, err)
	}
	if env.Data == nil {
		return nil, fmt.Errorf("get indicator %d: response has no data", id)
	}
	return env.Data, nil
}

// Group fetches one group by id with the given fields expansions.
func (c *Client) Group(ctx context.Context, id int64, fields ...string) (*Group, error) {
	v := url.Values{}
	for _, f := range fields {
		v.Add("fields", f)
	}
	env, err := get[*Group](ctx, c, c.endpoint("/v3/groups/"+strconv.FormatInt(id, 10), v))
	if err != nil {
		return nil, fmt.Errorf("get group %d: %w", id, err)
	}
	if env.Data == nil {
		return nil, fmt.Errorf("get group %d: response has no data", id)
	}
	return env.Data, nil
}

// DeletedIndicators streams the indicators deleted since the given time
// (GET /v3/indicators/deleted, threatconnect-v3.md §6.5), optionally for one
// owner. deletedSince is sent with second precision in UTC.
func (c *Client) DeletedIndicators(ctx context.Context, since time.Time, owner string, fn func(page []DeletedIndicator) error) error {
	v := url.Values{}
	if !since.IsZero() {
		v.Set("deletedSince", since.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if owner != "" {
		v.Set("owner", owner)
	}
	v.Set("resultStart", "0")
	v.Set("resultLimit", strconv.Itoa(MaxPageSize))
	u := c.endpoint("/v3/indicators/deleted", v)
	for page := 1; ; page++ {
		env, err := get[[]DeletedIndicator](ctx, c, u)
		if err != nil {
			return fmt.Errorf("list deleted indicators page %d: %w", page, err)
		}
		if len(env.Data) > 0 {
			if err := fn(env.Data); err != nil {
				return fmt.Errorf("list deleted indicators page %d: %w", page, err)
			}
		}
		if env.Next == "" || len(env.Data) == 0 {
			return nil
		}
		if u, err = c.rebase(env.Next); err != nil {
			return fmt.Errorf("list deleted indicators page %d: %w", page, err)
		}
	}
}

// IndicatorsOfGroup pages the indicators associated with a group with a
// nested TQL filter, GET /v3/indicators?tql=hasGroup(id = X) — the way to
// read associations of groups with more indicators than an embedded
// expansion carries (threatconnect-v3.md §9.3). q.TQL, if any, is ANDed.
func (c *Client) IndicatorsOfGroup(ctx context.Context, groupID int64, q Query, fn func([]Indicator) error) error {
	q.TQL = And(q.TQL, "hasGroup(id = "+strconv.FormatInt(groupID, 10)+")")
	if err := c.Indicators(ctx, q, fn); err != nil {
		return fmt.Errorf("indicators of group %d: %w", groupID, err)
	}
	return nil
}

// GroupsOfIndicator pages the groups associated with an indicator
// (GET /v3/groups?tql=hasIndicator(id = X), §9.3).
func (c *Client) GroupsOfIndicator(ctx context.Context, indicatorID int64, q Query, fn func([]Group) error) error {
	q.TQL = And(q.TQL, "hasIndicator(id = "+strconv.FormatInt(indicatorID, 10)+")")
	if err := c.Groups(ctx, q, fn); err != nil {
		return fmt.Errorf("groups of indicator %d: %w", indicatorID, err)
	}
	return nil
}

// GroupsOfGroup pages the groups associated with a group
// (GET /v3/groups?tql=hasGroup(id = X), §9.3).
func (c *Client) GroupsOfGroup(ctx context.Context, groupID int64, q Query, fn func([]Group) error) error {
	q.TQL = And(q.TQL, "hasGroup(id = "+strconv.FormatInt(groupID, 10)+")")
	if err := c.Groups(ctx, q, fn); err != nil {
		return fmt.Errorf("groups of group %d: %w", groupID, err)
	}
	return nil
}

// CustomAssociations pages the indicators linked to an indicator by custom
// indicator-to-indicator associations, with AssociationName set, using the
// hidden association-group query of threatconnect-v3.md §9.3.
func (c *Client) CustomAssociations(ctx context.Context, indicatorID int64, q Query, fn func([]Indicator) error) error {
	id := strconv.FormatInt(indicatorID, 10)
	q.TQL = And(q.TQL, "id != "+id+` AND hasGroup(typeName = "all" AND isGroup = false AND hasIndicator(id = `+id+"))")
	q.Fields = append(append([]string(nil), q.Fields...), "associationName")
	if err := c.Indicators(ctx, q, fn); err != nil {
		return fmt.Errorf("custom associations of indicator %d: %w", indicatorID, err)
	}
	return nil
}

// errNoProgress is returned when keyset paging would loop or skip.
var errNoProgress = errors.New("server ignored sorting=id ASC or the id filter; refusing to page on")

// fetched is one list page read and decoded, or the error that ended its retries.
type fetched[T any] struct {
	env *envelope[[]T]
	err error
}

// fetchPage GETs and decodes one list page. Decoding is part of accepting
// the body, so a truncated or corrupt page is retried, never handed over.
func fetchPage[T any](ctx context.Context, c *Client, u *url.URL) fetched[T] {
	env, err := get[[]T](ctx, c, u)
	return fetched[T]{env: env, err: err}
}

// pages runs the paging loop shared by every list endpoint (see Query).
//
// While fn works on page n, page n+1 is already being fetched and decoded
// (its address is known from page n's ids or next link), so the server, the
// network and decoding overlap with the caller's work. At most one request
// is in flight; it is cancelled and waited for when pages returns.
func pages[T any](ctx context.Context, c *Client, path string, q Query, idOf func(T) int64, fn func([]T) error) error {
	size, err := q.pageSize()
	if err != nil {
		return err
	}
	if q.Start < 0 || q.Limit < 0 {
		return fmt.Errorf("negative start %d or limit %d", q.Start, q.Limit)
	}
	keyset := q.keyset()
	params := func(tql string) url.Values {
		v := url.Values{}
		if tql != "" {
			v.Set("tql", tql)
		}
		for _, f := range q.Fields {
			v.Add("fields", f)
		}
		if q.Owner != "" {
			v.Set("owner", q.Owner)
		}
		if keyset {
			v.Set("sorting", "id ASC")
		} else if q.Sort != "" {
			v.Set("sorting", q.Sort)
		}
		v.Set("resultStart", strconv.Itoa(q.Start))
		v.Set("resultLimit", strconv.Itoa(size))
		return v
	}

	ctx, cancel := context.WithCancel(ctx)
	var pending chan fetched[T]
	defer func() {
		cancel()
		if pending != nil {
			<-pending
		}
	}()

	cur := fetchPage[T](ctx, c, c.endpoint(path, params(q.TQL)))
	var (
		seen    int
		last    int64
		started bool
	)
	for page := 1; ; page++ {
		if cur.err != nil {
			return fmt.Errorf("page %d: %w", page, cur.err)
		}
		env := cur.env
		if keyset {
			for i, item := range env.Data {
				id := idOf(item)
				if (started || i > 0) && id <= last {
					return fmt.Errorf("page %d: id %d after %d: %w", page, id, last, errNoProgress)
				}
				last, started = id, true
			}
		}
		more := env.Next != "" && len(env.Data) > 0 && (q.Limit == 0 || seen+len(env.Data) < q.Limit)
		if more {
			var next *url.URL
			if keyset {
				next = c.endpoint(path, params(And(q.TQL, "id > "+strconv.FormatInt(last, 10))))
			} else if next, err = c.rebase(env.Next); err != nil {
				return fmt.Errorf("page %d: %w", page, err)
			}
			ch := make(chan fetched[T], 1)
			pending = ch
			go func() { ch <- fetchPage[T](ctx, c, next) }()
		}
		data := env.Data
		if q.Limit > 0 && seen+len(data) > q.Limit {
			data = data[:q.Limit-seen]
		}
		seen += len(data)
		if len(data) > 0 {
			if err := fn(data); err != nil {
				return fmt.Errorf("page %d: %w", page, err)
			}
		}
		if !more {
			return nil
		}
		cur = <-pending
		pending = nil
	}
}
