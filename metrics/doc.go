// Package metrics is taxii-bridge's Prometheus instrumentation
// (github.com/prometheus/client_golang), served on its own listen address
// (config metrics.listen) so that scraping needs no TAXII credentials and
// the TAXII port exposes nothing extra. Every name starts with
// taxii_bridge_ and follows the Prometheus conventions (_total counters,
// _seconds, _bytes, _timestamp_seconds for Unix times).
//
// HTTP, by route template (never the raw path, so cardinality stays bounded):
//
//	taxii_bridge_http_requests_total{route,method,code}
//	taxii_bridge_http_request_duration_seconds{route,method}        histogram
//
// Delivery telemetry per principal × collection (taxii21.md B-6: "which
// client last polled what", the question Sentinel's "calls succeed, nothing
// imported" leaves open):
//
//	taxii_bridge_client_polls_total{principal,collection}
//	taxii_bridge_client_objects_served_total{principal,collection}
//	taxii_bridge_client_bytes_served_total{principal,collection}
//	taxii_bridge_client_last_poll_timestamp_seconds{principal,collection}
//	taxii_bridge_client_newest_date_added_timestamp_seconds{principal,collection}
//	taxii_bridge_rate_limited_total{principal}
//	taxii_bridge_auth_failures_total{outcome="rejected"|"throttled"}
//
// Sync (fed by cmd from tcsync.Summary after every run):
//
//	taxii_bridge_sync_runs_total{result="success"|"failure"}
//	taxii_bridge_sync_duration_seconds                               histogram
//	taxii_bridge_sync_items_fetched_total
//	taxii_bridge_sync_versions_written_total
//	taxii_bridge_sync_unchanged_total
//	taxii_bridge_sync_skipped_total{reason}
//	taxii_bridge_sync_revocations_total
//	taxii_bridge_sync_last_success_timestamp_seconds
//	taxii_bridge_sync_threatconnect_newest_modified_timestamp_seconds
//	taxii_bridge_sync_lag_seconds
//	taxii_bridge_sync_leader{replica}
//
// sync_lag_seconds is the time since the start of the last successful run:
// everything ThreatConnect modified before that instant is in the store, so
// it bounds how far the store is behind ThreatConnect. The newest
// lastModified received is reported beside it. sync_leader is 1 on the
// replica that runs the sync and 0 on the others (scale-out on PostgreSQL);
// replica is the process's name, as /readyz shows it.
//
// ThreatConnect client (fed through tcapi.Options.Observe, so tcapi does
// not import Prometheus):
//
//	taxii_bridge_threatconnect_requests_total{outcome="2xx"|"429"|"4xx"|"5xx"|"timeout"|"error"}
//	taxii_bridge_threatconnect_request_duration_seconds              histogram
//
// Storage, read at scrape time at most every 30 s:
//
//	taxii_bridge_storage_database_bytes
//	taxii_bridge_storage_objects{collection}
//	taxii_bridge_storage_versions{collection}
//	taxii_bridge_storage_newest_date_added_timestamp_seconds{collection}
//	taxii_bridge_storage_stats_up
//	taxii_bridge_storage_faults_total
//
// Collections are labelled by alias, principals by their configured name
// prefixed with "user:" or "key:". A nil *Metrics records nothing.
package metrics
