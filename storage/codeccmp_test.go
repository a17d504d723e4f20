package storage

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// codecSample returns the distinct stored versions of the store named by
// STORAGE_CODEC_DB (a store the sync filled from the simulator), decoded.
func codecSample(b *testing.B) [][]byte {
	path := os.Getenv("STORAGE_CODEC_DB")
	if path == "" {
		b.Skip("STORAGE_CODEC_DB names a store to sample")
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), "SELECT codec, json FROM versions ORDER BY vid")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var codec int
		var body []byte
		if err := rows.Scan(&codec, &body); err != nil {
			b.Fatal(err)
		}
		doc, err := appendJSON(nil, codec, body)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, doc)
	}
	return out
}

// BenchmarkCodecCompare compares the token codec with zstd and a raw-content
// dictionary (the newest training objects concatenated, the layout zstd
// recommends: most useful content last) on the versions of a real store:
// bytes per object and encode/decode CPU per object, trained on every
// tenth object and measured on the others. It logs one line a codec:
//
//	STORAGE_CODEC_DB=/path/to/store.db go test -run '^$' -bench CodecCompare -benchtime 1x ./storage/
//
// Measured 2026-11-29 on a demo store (20k indicators, 2k groups, 86k
// versions, 599.5 bytes of JSON a version on average):
//
//	token, greedy parse        362.1 B (60.4%)  encode  2.9 µs  decode 0.6 µs
//	token, lazy parse (now)    308.0 B (51.4%)  encode  3.8 µs  decode 0.5 µs
//	zstd fastest, 4 KiB dict   224.2 B (37.4%)  encode 12.1 µs  decode 2.9 µs
//	zstd fastest, 16 KiB dict  215.6 B (36.0%)  encode 11.8 µs  decode 2.9 µs
//	zstd better, 16 KiB dict   200.8 B (33.5%)  encode 28.1 µs  decode 2.8 µs
//	zstd fastest, 64 KiB dict  199.1 B (33.2%)  encode 13.1 µs  decode 2.7 µs
//
// zstd wins on size, the token codec on CPU (3-4x on encode, 5x on decode),
// so the token codec stays (codec.go). zstd's decode alone (2.7-2.9 µs a
// version) would take the crawl past DESIGN.md §8's 5 µs per object.
func BenchmarkCodecCompare(b *testing.B) {
	docs := codecSample(b)
	// Train on every 10th object, evaluate on the others.
	var train, test [][]byte
	for i, d := range docs {
		if i%10 == 0 {
			train = append(train, d)
		} else {
			test = append(test, d)
		}
	}
	raw := 0
	for _, d := range test {
		raw += len(d)
	}
	report := func(name string, enc func([]byte) []byte, dec func([]byte) []byte) {
		encs := make([][]byte, len(test))
		t0 := time.Now()
		size := 0
		for i, d := range test {
			encs[i] = enc(d)
			size += len(encs[i])
		}
		et := time.Since(t0)
		t0 = time.Now()
		for i := range encs {
			if got := dec(encs[i]); !bytes.Equal(got, test[i]) {
				b.Fatalf("%s: object %d does not round-trip", name, i)
			}
		}
		dt := time.Since(t0)
		n := float64(len(test))
		b.Logf("%-28s %6.1f B/object (%4.1f%% of %5.1f)  encode %5.2f µs  decode %5.2f µs", name, float64(size)/n,
			100*float64(size)/float64(raw), float64(raw)/n, float64(et.Microseconds())/n, float64(dt.Microseconds())/n)
	}
	buf := make([]byte, 0, 64<<10)
	report("token", func(d []byte) []byte { _, e := encodeJSON(d); return e }, func(e []byte) []byte {
		buf, _ = appendJSON(buf[:0], codecUUIDs, e)
		return buf
	})
	for _, dictSize := range []int{4 << 10, 16 << 10, 64 << 10} {
		var hist []byte
		for i := len(train) - 1; i >= 0 && len(hist) < dictSize; i-- {
			hist = append(hist, train[i]...)
		}
		for _, lvl := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedBetterCompression} {
			for _, built := range []bool{false, true} {
				var eo []zstd.EOption
				var do []zstd.DOption
				if built {
					d, err := zstd.BuildDict(zstd.BuildDictOptions{ID: 1, Contents: train, History: hist, Offsets: [3]int{1, 4, 8}, Level: lvl})
					if err != nil {
						b.Fatal(err)
					}
					eo, do = []zstd.EOption{zstd.WithEncoderDict(d)}, []zstd.DOption{zstd.WithDecoderDicts(d)}
				} else {
					eo, do = []zstd.EOption{zstd.WithEncoderDictRaw(1, hist)}, []zstd.DOption{zstd.WithDecoderDictRaw(1, hist)}
				}
				e, err := zstd.NewWriter(nil, append(eo, zstd.WithEncoderLevel(lvl), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))...)
				if err != nil {
					b.Fatal(err)
				}
				d, err := zstd.NewReader(nil, append(do, zstd.WithDecoderConcurrency(1))...)
				if err != nil {
					b.Fatal(err)
				}
				name := fmt.Sprintf("zstd %s dict %dK built=%t", lvl, dictSize>>10, built)
				report(name, func(s []byte) []byte { return e.EncodeAll(s, nil) }, func(s []byte) []byte {
					out, err := d.DecodeAll(s, buf[:0])
					if err != nil {
						b.Fatal(err)
					}
					buf = out
					return out
				})
				d.Close()
			}
		}
	}
}
