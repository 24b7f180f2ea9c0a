// Package store opens the collector's badger database and holds the small
// helpers its domain packages share: JSON values by key, newest-first
// listings with opaque cursors, retried read-write transactions, and the
// error types the REST API turns into status codes.
//
// # Keys
//
// Every package owns its key prefixes; nothing else reads or writes them:
//
//	ingest     log/<seq>, finding/<id>, fidx/{agent,sev,inc}/<...>/<seq> (see ingest/record.go)
//	incident   incident/<id>, iagent/<agent>/<id>, icorr/<agent>/<drill>, meta/incident-offset
//	registry   agent/<id>, etoken/<id>, etoken-hash/<sha256>
//	command    command/<id>, cmd-agent/<agent>/<id>, cmd-open/<agent>/<id>
//	auth       apikey/<id>, apikey-hash/<sha256>, meta/admin-key
//	audit      audit/<seq>, meta/audit-head
//	ruleset    ruleset/<seq>, meta/ruleset-current
//
// <seq> is a big-endian uint64, so byte order is numeric order; ids are
// UUIDv7, so byte order is creation order.
package store
