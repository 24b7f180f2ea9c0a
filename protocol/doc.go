// Package protocol is the wire contract between cordon-agent and
// cordon-collector: the protobuf schema (cordon.proto, with its generated
// code in cordon.pb.go), the length-prefixed framing used on every QUIC
// stream, the protocol version, and the TLS helpers both sides share
// (ALPN, CA pins).
//
// # Streams
//
// An agent holds one QUIC connection (TLS 1.3, ALPN "cordon/1", client
// certificate issued at enrollment) and opens two long-lived streams:
//
//   - the control stream: Hello → HelloAck, then Heartbeat up, Command
//     down, CommandResult up;
//   - the findings stream: FindingBatch up, BatchAck down once durable.
//
// A connection without a client certificate may only enroll: one stream,
// EnrollRequest → EnrollResponse (or Error).
//
// # Version history
//
//   - 1.0 (2026-11): hello, heartbeat, finding batches and acks, commands
//     and results, enrollment.
//   - 1.0, added (no version change: only a collector that hunts sends a
//     hunt, and an agent without hunts ignores the frame): hunt requests
//     down and hunt results up the control stream (Frame fields 40, 41).
package protocol
