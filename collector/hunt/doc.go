// Package hunt is the collector's store of hunts: a query (protocol/query)
// sent to a set of agents, each answering from its event history and its
// current state. A hunt keeps, per agent, whether it answered, answered in
// part (stopped at its budget), failed or is still pending, with the
// matching events. Agents that are offline get the hunt when they
// reconnect, until it expires.
package hunt
