package storage

import "fmt"

// Codecs of versions.json.
const (
	codecRaw = 0 // the canonical JSON bytes as given
)

// encodeJSON chooses how a version's bytes are kept on disk.
func encodeJSON(doc []byte) (int, []byte) { return codecRaw, doc }

// appendJSON appends the canonical JSON bytes of a stored version to dst.
func appendJSON(dst []byte, codec int, body []byte) ([]byte, error) {
	switch codec {
	case codecRaw:
		return append(dst, body...), nil
	}
	return dst, fmt.Errorf("unknown json codec %d", codec)
}

// decodeJSON returns the canonical JSON bytes of a stored version.
func decodeJSON(codec int, body []byte) ([]byte, error) {
	switch codec {
	case codecRaw:
		return body, nil
	}
	return nil, fmt.Errorf("unknown json codec %d", codec)
}
