package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// Header names of taxii21.md S-6.1, S-6.2.
const (
	headerFirst = "X-TAXII-Date-Added-First"
	headerLast  = "X-TAXII-Date-Added-Last"
)

// objects serves GET {api-root}/collections/{id}/objects/ (S-2.7, S-8.7).
func (s *Server) objects(c echo.Context) error { return s.list(c, epObjects) }

// manifest serves GET {api-root}/collections/{id}/manifest/ (S-2.6, S-8.6).
func (s *Server) manifest(c echo.Context) error { return s.list(c, epManifest) }

// object serves GET {api-root}/collections/{id}/objects/{object-id}/ (S-2.8, S-8.9).
func (s *Server) object(c echo.Context) error { return s.list(c, epObject) }

// versions serves GET {api-root}/collections/{id}/objects/{object-id}/versions/ (S-2.9, S-8.11).
func (s *Server) versions(c echo.Context) error { return s.list(c, epVersions) }

// list is every listing endpoint: parse and verify the query, run one keyset
// query with every filter and the principal's TLP cap in SQL (D-7), and
// write the page with more/next (next iff more, D-8, C-4, C-5) and the
// X-TAXII-Date-Added headers (omitted on empty pages, A-2).
func (s *Server) list(c echo.Context, ep endpoint) error {
	col, err := s.readable(c)
	if err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	objectID := ""
	if ep == epObject || ep == epVersions {
		objectID = c.Param("object")
	}
	rawQuery := c.QueryString()
	if p.wire.nextInAddedAfter {
		rawQuery = rewriteNextInAddedAfter(rawQuery)
	}
	q, err := s.parseQuery(rawQuery, ep, col.ID, objectID)
	if err != nil {
		return err
	}
	// tagged sets the ETag and reports whether If-None-Match matches it.
	tagged := func(etag string) bool {
		if etag == "" {
			return false
		}
		c.Response().Header().Set("ETag", etag)
		return notModified(c.Request().Header.Get("If-None-Match"), etag)
	}
	// A single object without a cursor: its page and the reader's newest
	// date_added (the ETag's input) come from one statement, and the tag
	// is decided after it. Every other listing: conditional polling
	// (etag.go) answers an unchanged listing 304 before any query.
	_, canTag := s.store.(newestStore)
	oneShot := ep == epObject && q.next == "" && canTag
	var (
		etag   string
		newest int64
	)
	if !oneShot {
		if etag, newest, err = s.listETag(ctx, ep, col.ID, objectID, rawQuery, p); err != nil {
			return fmt.Errorf("query %s: %w", ep, err)
		}
		if tagged(etag) {
			s.poll(p, col.Alias, 0, 0, 0)
			return c.NoContent(http.StatusNotModified)
		}
	}
	sq := storage.Query{
		CollectionID: col.ID,
		AddedAfter:   q.filter.AddedAfter,
		After:        q.after,
		IDs:          q.filter.IDs,
		Types:        q.filter.Types,
		SpecVersions: q.filter.SpecVersions,
		Versions:     q.filter.versionFilter(),
		MaxTLP:       p.tlpCap(),
		Limit:        q.limit,
		WithNewest:   oneShot,
		// The envelope is the stored bytes (D-20); the objects endpoints
		// use nothing else of an item but its position.
		JSONOnly: ep == epObjects || ep == epObject,
	}
	if p.bootstrapCurrent && q.filter.AddedAfter == 0 && ep != epVersions {
		// The bootstrap view (User.BootstrapCurrent): a poll from zero
		// gets what is current; added_after polls get everything.
		sq.CurrentAt = s.now().UnixMicro()
	}
	fetch := func(ctx context.Context, sq storage.Query) (storage.Page, error) {
		switch ep {
		case epManifest:
			return s.store.Manifest(ctx, sq)
		case epVersions:
			return s.store.Versions(ctx, sq)
		}
		return s.store.Objects(ctx, sq)
	}
	var page storage.Page
	prefetched := false
	if q.next != "" {
		var pm mark
		page, pm, prefetched = s.prefetch.take(ctx, prefetchKey(q.next, sq), mark{newest, canTag})
		if prefetched && canTag && pm.v != newest {
			// A fresh page from before the collection changed carries
			// its own tag, so a revalidation cannot keep it alive.
			etag = s.listTag(ep, col.ID, objectID, rawQuery, p, pm.v)
			c.Response().Header().Set("ETag", etag)
		}
	}
	// The other idle poll (DESIGN.md §8): added_after at or past the
	// newest date_added this reader can see selects nothing; skip the query.
	nothingNew := etag != "" && q.filter.AddedAfter >= newest && (ep == epObjects || ep == epManifest)
	if !prefetched && !nothingNew {
		if page, err = fetch(ctx, sq); err != nil {
			return fmt.Errorf("query %s: %w", ep, err)
		}
	}
	if oneShot {
		if len(page.Items) > 0 {
			newest = page.Newest
			etag = s.listTag(ep, col.ID, objectID, rawQuery, p, newest)
		} else if etag, newest, err = s.listETag(ctx, ep, col.ID, objectID, rawQuery, p); err != nil {
			return fmt.Errorf("query %s: %w", ep, err)
		}
		if tagged(etag) {
			s.poll(p, col.Alias, 0, 0, 0)
			return c.NoContent(http.StatusNotModified)
		}
	}
	// The response-byte budget (D-10, C-20): stop before the page body
	// outgrows it, keeping at least one object, and let next resume there.
	budget := 0
	for i, it := range page.Items {
		budget += len(it.JSON)
		if budget > s.pageBytes && i > 0 {
			page.Items, page.More = page.Items[:i], true
			break
		}
	}
	if len(page.Items) == 0 && objectID != "" && q.after == nil {
		// Unknown (or invisible) object → 404; known but filtered away → {}.
		ok, err := s.exists(ctx, col.ID, objectID, p)
		if err != nil {
			return err
		}
		if !ok {
			return fail(http.StatusNotFound, "no such object in this collection")
		}
	}
	next := ""
	if page.More && len(page.Items) > 0 {
		last := page.Items[len(page.Items)-1].Key
		next = s.cursors.encode(cursor{
			Collection: col.ID, Endpoint: string(ep), Object: objectID,
			Filter: q.filter, Limit: q.askedLimit, DateAdded: last.DateAdded, RowID: last.RowID,
		})
		nq := sq
		nq.After = &last
		s.prefetch.start(prefetchKey(next, nq), mark{newest, canTag}, func(ctx context.Context) (storage.Page, error) { return fetch(ctx, nq) })
	}
	if n := len(page.Items); n > 0 {
		h := c.Response().Header()
		h.Set(headerFirst, taxiiTime(page.Items[0].DateAdded))
		h.Set(headerLast, taxiiTime(page.Items[n-1].DateAdded))
	} else if p.wire.echoAddedAfter && q.filter.AddedAfter > 0 {
		// Profile: keep a client that reads only this header at its position.
		c.Response().Header().Set(headerLast, taxiiTime(q.filter.AddedAfter))
	}
	s.audit(c, ep, col, q, page)
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	switch {
	case len(page.Items) == 0 && p.wire.emptyList && ep == epVersions:
		buf.WriteString(`{"more":false,"versions":[]}`)
	case len(page.Items) == 0 && p.wire.emptyList:
		buf.WriteString(`{"more":false,"objects":[]}`)
	default:
		listBody(buf, ep, page, next)
	}
	s.poll(p, col.Alias, len(page.Items), int64(buf.Len()), page.LastDateAdded())
	// Blob writes the body before it returns (the writers below copy or
	// send it), so the buffer is free for the next response afterwards.
	return c.Blob(http.StatusOK, MediaType, buf.Bytes())
}

// bodyBuffers recycles listing bodies: a crawl writes a ~600 KB body a
// page, which otherwise is garbage as soon as it is sent.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the buffers kept, so one huge page does not pin
// its memory.
const maxPooledBody = 4 << 20

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBody {
		return
	}
	b.Reset()
	bodyBuffers.Put(b)
}

// listBody writes a page of an endpoint into b.
func listBody(b *bytes.Buffer, ep endpoint, page storage.Page, next string) {
	switch ep {
	case epObjects, epObject:
		envelope(b, page, next)
	case epManifest:
		manifestBody(b, page, next)
	case epVersions:
		versionsBody(b, page, next)
	}
}

// exists reports whether any version of id in the collection is visible
// under the principal's TLP cap.
func (s *Server) exists(ctx context.Context, collectionID, id string, p *principal) (bool, error) {
	pg, err := s.store.Manifest(ctx, storage.Query{
		CollectionID: collectionID, IDs: []string{id},
		Versions: storage.VersionFilter{All: true}, MaxTLP: p.tlpCap(), Limit: 1,
	})
	if err != nil {
		return false, fmt.Errorf("look up object: %w", err)
	}
	return len(pg.Items) > 0, nil
}

// writeHead writes the more/next members that open every listing body, or
// nothing for an empty page (whose body is {} — S-4.4, D-21).
func writeHead(b *bytes.Buffer, page storage.Page, next string) {
	b.WriteString(`{"more":`)
	if page.More {
		b.WriteString("true")
	} else {
		b.WriteString("false")
	}
	if next != "" {
		b.WriteString(`,"next":`)
		q, _ := json.Marshal(next)
		b.Write(q)
	}
}

// envelope writes the stored JSON of each object into the envelope byte for
// byte, without re-marshalling (D-20).
func envelope(b *bytes.Buffer, page storage.Page, next string) {
	if len(page.Items) == 0 {
		b.WriteString("{}")
		return
	}
	size := 64 + len(next)
	for _, it := range page.Items {
		size += len(it.JSON) + 1
	}
	b.Grow(size)
	writeHead(b, page, next)
	b.WriteString(`,"objects":[`)
	for i, it := range page.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it.JSON)
	}
	b.WriteString("]}")
}

// versionOf is the TAXII version string of an item: its modified, else its
// created for unversioned objects, else its date_added (S-7.13, §4.3.1).
func versionOf(it storage.Item) string {
	switch {
	case !it.Modified.IsZero():
		return stixTime(it.Modified)
	case !it.Created.IsZero():
		return stixTime(it.Created)
	}
	return taxiiTime(it.DateAdded)
}

type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

func manifestBody(b *bytes.Buffer, page storage.Page, next string) {
	if len(page.Items) == 0 {
		b.WriteString("{}")
		return
	}
	b.Grow(128*len(page.Items) + 64)
	writeHead(b, page, next)
	b.WriteString(`,"objects":[`)
	for i, it := range page.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		rec, _ := json.Marshal(manifestRecord{ID: it.ID, DateAdded: taxiiTime(it.DateAdded), Version: versionOf(it), MediaType: stixMediaType})
		b.Write(rec)
	}
	b.WriteString("]}")
}

func versionsBody(b *bytes.Buffer, page storage.Page, next string) {
	if len(page.Items) == 0 {
		b.WriteString("{}")
		return
	}
	b.Grow(32*len(page.Items) + 64)
	writeHead(b, page, next)
	b.WriteString(`,"versions":[`)
	for i, it := range page.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		v, _ := json.Marshal(versionOf(it))
		b.Write(v)
	}
	b.WriteString("]}")
}

// deleteObject serves DELETE {api-root}/collections/{id}/objects/{object-id}/
// (S-8.10): needs both read and write access (invisible → 404, otherwise
// missing either → 403); removes from this collection only every version of
// the object the caller can see. An object hidden by the caller's TLP
// ceiling (its latest version is above it) is a 404 like an absent one and
// nothing is removed (issue 9). Deleting single versions (match[version]
// other than all) is not supported and is a 400.
func (s *Server) deleteObject(c echo.Context) error {
	col, err := s.lookup(c)
	if err != nil {
		return err
	}
	p := principalOf(c)
	if !p.canRead(col) || !p.canWrite(col) {
		return fail(http.StatusForbidden, "deleting needs read and write access to this collection")
	}
	id := c.Param("object")
	vals, err := parseQueryString(c.QueryString())
	if err != nil {
		return err
	}
	if _, ok := vals["match[version]"]; ok {
		var f filter
		vs, _, err := matchValues(vals, "match[version]")
		if err != nil {
			return err
		}
		if err := f.setVersions(vs); err != nil {
			return err
		}
		if !f.All {
			return fail(http.StatusBadRequest, "match[version]: only all is supported when deleting; omit it to delete every version")
		}
	}
	ctx := c.Request().Context()
	ok, err := s.exists(ctx, col.ID, id, p)
	if err != nil {
		return err
	}
	if !ok {
		return fail(http.StatusNotFound, "no such object in this collection")
	}
	removed := false
	err = s.store.Update(ctx, func(tx *storage.Tx) error {
		var err error
		removed, err = tx.Remove(col.ID, id, p.tlpCap())
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	s.prefetch.drop()
	if !removed {
		return fail(http.StatusNotFound, "no such object in this collection")
	}
	c.Response().Header().Set(echo.HeaderContentType, MediaType)
	return c.NoContent(http.StatusOK)
}

// audit logs one line per poll (taxii21.md B-7): who asked which collection
// what, and exactly what was served, so an operator can prove what a SIEM
// received. Collection polls (objects, manifest) log at Info, single-object
// reads at Debug.
func (s *Server) audit(c echo.Context, ep endpoint, col storage.Collection, q listQuery, page storage.Page) {
	level := slog.LevelInfo
	if ep == epObject || ep == epVersions {
		level = slog.LevelDebug
	}
	ctx := c.Request().Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("principal", principalOf(c).name),
		slog.String("collection", col.ID),
		slog.String("endpoint", string(ep)),
		slog.Bool("next_used", q.after != nil),
		slog.Int("objects", len(page.Items)),
		slog.Bool("more", page.More),
	}
	if q.filter.AddedAfter > 0 {
		attrs = append(attrs, slog.String("added_after", taxiiTime(q.filter.AddedAfter)))
	}
	if n := len(page.Items); n > 0 {
		attrs = append(attrs, slog.String("last_date_added", taxiiTime(page.Items[n-1].DateAdded)))
	}
	attrs = append(attrs, slog.String("user_agent", c.Request().UserAgent()))
	s.log.LogAttrs(ctx, level, "taxii poll", attrs...)
}

// prefetchKey names the page a request with this next value and query will
// ask for: the cursor, the page size and the TLP cap (see prefetcher).
func prefetchKey(next string, q storage.Query) string {
	return fmt.Sprintf("%s\x00%d\x00%d\x00%t", next, q.Limit, q.MaxTLP, q.CurrentAt != 0)
}
