// Package history is the agent's local telemetry history: a rolling store
// of the normalized events the detectors saw, kept in files of its own
// under the state folder so that hunts can ask what happened on the host
// in the last days, not only what is true now.
//
// Events are written in blocks to segment files in time order, each with
// an index by executable, file hash, file path and the source and
// destination addresses, written when the segment is full (segment.go).
// The store is bounded by age and size: whole segments are deleted, the
// oldest first, so nothing is ever rewritten and an idle store does no
// work. Writes go through a bounded queue: a full queue drops the event
// and counts it, and the sensors and detectors never wait for the disk.
// The badger database of older agents is read until it ages out
// (legacy.go).
package history
