// Package registry knows the collector's agents: who enrolled (with an
// enrollment token), who is revoked, who is connected and what their last
// heartbeat said. Registry implements the gateway's Registry and Enroller.
//
// Facts that change rarely (host facts, tags, revocation, isolation) are
// stored on every change; heartbeat counters live in memory and are
// stored at most every few minutes and when the agent disconnects, so
// that thousands of heartbeats do not each cost a disk sync.
package registry
