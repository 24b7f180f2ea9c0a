// Package history is the agent's local telemetry history: a rolling store
// of the normalized events the detectors saw, kept in its own badger
// database under the state folder so that hunts can ask what happened on
// the host in the last days, not only what is true now.
//
// Events are keyed by time, and indexed by executable, file hash, file
// path and the source and destination addresses. The store is bounded by
// age and size: a sweeper deletes the oldest events first, and every entry
// also carries a badger TTL a little past the age bound, so events of an
// agent that was stopped for days expire without a sweep. Writes go
// through a bounded queue: a full queue drops the event and counts it,
// and the sensors and detectors never wait for the disk.
package history
