package stixmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// BundleID returns a bundle id determined by the ids of the objects it
// holds, in any order: the same objects give the same id.
func BundleID(objectIDs []string) string {
	ids := slices.Sorted(slices.Values(objectIDs))
	return "bundle--" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("taxii-bridge:bundle:"+strings.Join(ids, ","))).String()
}

// NewBundleID returns a random bundle id, for a bundle whose objects are
// not known before it is written.
func NewBundleID() string { return "bundle--" + uuid.NewString() }

// BundleWriter writes one STIX 2.1 bundle, object by object, so that a
// bundle of any size streams without being held:
//
//	{"id":"bundle--…","objects":[
//	{…},
//	{…}
//	],"type":"bundle"}
//
// Each object's JSON is written as given, on a line of its own. The writer
// buffers; Close writes the end of the bundle and flushes. The first error
// of the underlying writer is kept and returned by every later call.
type BundleWriter struct {
	w      *bufio.Writer
	n      int
	err    error
	closed bool
}

var errBundleClosed = errors.New("bundle: already closed")

// NewBundleWriter starts a bundle with the given id ("bundle--<uuid>") on w.
func NewBundleWriter(w io.Writer, id string) *BundleWriter {
	b := &BundleWriter{w: bufio.NewWriterSize(w, 256<<10)}
	if !strings.HasPrefix(id, "bundle--") {
		b.err = fmt.Errorf("bundle id %q does not start with bundle--", id)
		return b
	}
	b.write(`{"id":"`, id, `","objects":[`)
	return b
}

func (b *BundleWriter) write(parts ...string) {
	for _, p := range parts {
		if b.err != nil {
			return
		}
		_, b.err = b.w.WriteString(p)
	}
}

// Write adds one object, given as its JSON, to the bundle.
func (b *BundleWriter) Write(objectJSON []byte) error {
	if b.err != nil {
		return b.err
	}
	if b.closed {
		return errBundleClosed
	}
	if len(objectJSON) == 0 {
		return errors.New("bundle: empty object")
	}
	if b.n > 0 {
		b.write(",")
	}
	b.write("\n")
	if b.err == nil {
		_, b.err = b.w.Write(objectJSON)
	}
	if b.err == nil {
		b.n++
	}
	return b.err
}

// Count is the number of objects written so far.
func (b *BundleWriter) Count() int { return b.n }

// Close ends the bundle and flushes it. It does not close the underlying
// writer.
func (b *BundleWriter) Close() error {
	if b.closed {
		return errBundleClosed
	}
	b.closed = true
	if b.n > 0 {
		b.write("\n")
	}
	b.write(`],"type":"bundle"}`, "\n")
	if b.err == nil {
		b.err = b.w.Flush()
	}
	return b.err
}

// WriteBundle writes objs as one bundle whose id is their BundleID.
func WriteBundle(w io.Writer, objs []Object) error {
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = o.ID
	}
	bw := NewBundleWriter(w, BundleID(ids))
	for _, o := range objs {
		if err := bw.Write(o.JSON); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
	}
	if err := bw.Close(); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}
