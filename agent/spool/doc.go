// Package spool is the agent's durable queue of findings waiting for the
// collector.
//
// A Queue lives in the agent's badger database under the key prefix
// "spool/" and nothing else, so it shares the database with other agent
// state. Findings are stored under "spool/f/<id>": finding ids are
// UUIDv7, whose text form sorts by creation time, so key order is the
// order findings were minted in and Peek returns the oldest first. The
// count of findings dropped because the queue was full is kept under
// "spool/m/dropped" and survives restarts.
//
// The uplink reads with Peek, sends a batch, and calls Ack with the ids
// once the collector has acknowledged the batch as durable; a finding is
// deleted only then, so a crash at any point re-sends rather than loses.
// The collector deduplicates by finding id.
//
// OpenDB opens a badger database with small-footprint options suited to
// the agent.
package spool
