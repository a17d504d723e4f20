package stixmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBundleWriter(t *testing.T) {
	objs := []Object{
		{ID: "indicator--1", JSON: []byte(`{"id":"indicator--1","type":"indicator"}`)},
		{ID: "domain-name--2", JSON: []byte(`{"id":"domain-name--2","type":"domain-name","value":"a\nb"}`)},
	}
	for _, n := range []int{0, 1, 2} {
		var buf bytes.Buffer
		if err := WriteBundle(&buf, objs[:n]); err != nil {
			t.Fatalf("WriteBundle(%d objects): %v", n, err)
		}
		var got struct {
			Type    string
			ID      string
			Objects []json.RawMessage
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%d objects: not JSON: %v\n%s", n, err, buf.Bytes())
		}
		if got.Type != "bundle" || !strings.HasPrefix(got.ID, "bundle--") || len(got.Objects) != n {
			t.Fatalf("%d objects: got type %q id %q %d objects\n%s", n, got.Type, got.ID, len(got.Objects), buf.Bytes())
		}
		for i, o := range got.Objects {
			if !bytes.Equal(o, objs[i].JSON) {
				t.Errorf("object %d = %s; want the bytes given, %s", i, o, objs[i].JSON)
			}
		}
	}
}

func TestBundleID(t *testing.T) {
	a, b := BundleID([]string{"x--1", "y--2"}), BundleID([]string{"y--2", "x--1"})
	if a != b || !strings.HasPrefix(a, "bundle--") {
		t.Errorf("BundleID depends on the order: %s %s", a, b)
	}
	if c := BundleID([]string{"x--1"}); c == a {
		t.Errorf("BundleID of other objects is the same: %s", c)
	}
	if NewBundleID() == NewBundleID() {
		t.Error("NewBundleID repeated itself")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestBundleWriterErrors(t *testing.T) {
	w := NewBundleWriter(failingWriter{}, NewBundleID())
	for range 2 {
		if err := w.Write(bytes.Repeat([]byte("x"), 300<<10)); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Write to a failing writer = %v; want its error", err)
		}
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v; want the writer's error", err)
	}
	var buf bytes.Buffer
	if err := NewBundleWriter(&buf, "report--1").Close(); err == nil {
		t.Error("a bundle id without the bundle-- prefix was accepted")
	}
	w = NewBundleWriter(&buf, NewBundleID())
	if err := w.Write(nil); err == nil {
		t.Error("an empty object was accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("a second Close succeeded")
	}
	if err := w.Write([]byte(`{}`)); err == nil {
		t.Error("Write after Close succeeded")
	}
}
