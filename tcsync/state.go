package tcsync

import (
	"encoding/json"
	"fmt"
	"time"
)

// streamState is the resumable position of one stream ("indicators",
// "groups", "deleted"), stored as JSON under stateKey(stream) in the same
// transaction as the batch it describes.
type streamState struct {
	// Scope fingerprints the filters the data was fetched with; when the
	// configuration changes scope, the stream starts over from first_fetch.
	Scope string `json:"scope"`
	// Watermark is the end of the last completed window: everything modified
	// before it (less the overlap) has been synced. Zero means never.
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress, nil between runs.
	Window *window `json:"window,omitempty"`
	// Origin is where the stream's first window started (zero: the
	// beginning); a reconciliation reads again from there.
	Origin time.Time `json:"origin,omitzero"`
	// Reconciling marks a window that re-reads everything from Origin.
	Reconciling bool `json:"reconciling,omitempty"`
}

// window is one bounded run over lastModified: [Since, Until), keyset-paged
// by id. AfterID is the last id whose batch committed.
type window struct {
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until"`
	AfterID int64     `json:"after_id"`
}

func stateKey(stream string) string { return "tcsync/" + stream }

func decodeState(b []byte) (streamState, error) {
	var s streamState
	if err := json.Unmarshal(b, &s); err != nil {
		return streamState{}, fmt.Errorf("decode sync state: %w", err)
	}
	return s, nil
}

func (s streamState) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil { // a struct of strings, times and ints always marshals
		panic(fmt.Sprintf("tcsync: marshal state: %v", err))
	}
	return b
}
