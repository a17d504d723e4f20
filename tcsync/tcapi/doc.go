// Package tcapi is a read-only client for the ThreatConnect REST API v3 and
// the wire types it decodes (reference/threatconnect-v3.md).
package tcapi
