// Package ingest is the collector's findings log and the findings read
// model.
//
// Findings arrive in batches from the gateway. Store.Append validates
// them, drops the ones already stored (the finding id, minted by the
// agent, is the idempotency key end to end) and writes the rest into
// the log, in synchronous badger transactions: when Append returns, the
// batch is on disk and may be acknowledged. Concurrent Appends share
// transactions (group commit), so a fleet of agents each sending a few
// findings pays one disk sync per group rather than one per batch. A
// group's findings are written in blocks of many, which badger keeps in
// its value log, and indexed by postings, one key per index and group;
// the log is append-only, an incident being recorded beside a finding,
// not in it. record.go, block.go and posting.go describe the stored
// layout and the older ones still read.
//
// Consumers (the incident engine) read the log from an offset through the
// small Log interface, so a replicated log (NATS JetStream) can replace
// the badger one without touching them.
//
// # Invalid findings
//
// A finding whose id is not a UUID, whose severity is not one of low,
// medium, high, critical, or whose evidence is not a JSON array is
// skipped: it is logged (agent, finding id, field), counted in
// Stats.Rejected, and the rest of the batch is stored and acknowledged.
// Refusing the whole batch instead would leave it at the head of the
// agent's spool, resent forever, and block every later finding of that
// host behind one malformed one.
package ingest
