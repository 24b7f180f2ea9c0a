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
// When the queue is full the most severe findings are kept: a new finding
// evicts the oldest pending finding of the lowest severity below its own
// (counted as dropped, like a refused one), and is refused only when
// nothing pending is less severe. An index "spool/s/<rank>/<id>" (rank 1
// low to 4 critical, also kept as the entry's user meta byte) finds that
// finding without reading the queue. Entries spooled before the index
// existed carry no rank and are never evicted.
//
// With Options.FreeSpace set (DiskFree reads it with statfs on Linux),
// the queue also keeps room on disk for badger, which writes through
// memory-mapped files and so dies of SIGBUS rather than failing on a full
// filesystem: under Reserve free bytes low and medium findings are
// dropped, under HardReserve all are, counted per severity. Once drained
// with the disk under the reserve, the queue makes badger compact away
// the delivered findings so their space comes back.
//
// The uplink reads with Peek, sends a batch, and calls Ack with the ids
// once the collector has acknowledged the batch as durable; a finding is
// deleted only then, so a crash at any point re-sends rather than loses.
// The collector deduplicates by finding id.
//
// OpenDB opens a badger database with small-footprint options suited to
// the agent.
package spool
