// Package audit keeps the collector's audit trail: one entry for every
// mutating API call (who, with which role, did what to which object, from
// where, when, and with what outcome).
//
// The trail is append-only and hash-chained. Entries are stored under
// audit/<seq> (big-endian, from 1) and each holds the SHA-256 of the
// entry before it; meta/audit-head holds the sequence number and hash of
// the last entry. Verify walks the chain and names the first entry that
// was edited, removed or reordered, including entries cut off the end.
package audit
