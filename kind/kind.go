// Package kind names the kinds of TAXII collection taxii-bridge serves, as
// each is stored (storage.Collection.Kind). It is their one definition:
// config decides the kind of a configured collection, the sync creates and
// feeds collections by kind, and storage keeps the string without reading it.
package kind

const (
	// Owner is a ThreatConnect owner's collection (or the one collection
	// for all owners), made and fed by the sync.
	Owner = "owner"
	// Filter is a configured collection over the synced data, fed by the
	// sync.
	Filter = "filter"
	// Local is a configured writable collection that clients POST to and
	// ThreatConnect never feeds.
	Local = "local"
)
