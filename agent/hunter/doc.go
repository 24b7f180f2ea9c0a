// Package hunter answers hunts on the agent: it runs a query
// (protocol/query) over the event history and over the host's current
// state (running processes, open sockets, and the files under the paths
// the query names), within the hunt's time and result-size budgets, and
// marks an answer cut short by a budget as partial.
package hunter
