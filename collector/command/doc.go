// Package command is the collector's durable command queue: response
// actions (isolate, kill, ...) requested through the API and carried to
// agents by the gateway. Queue implements the gateway's Commands.
//
// A command is pending until the gateway writes it to the agent's control
// stream (delivered), then succeeded or failed by the agent's result, or
// expired when its time to live runs out first. Delivery is at least
// once: a delivered command stays in Pending until it finishes or
// expires, and the agent remembers command ids so it runs each once.
// Expiry is checked lazily: reads show an overdue command as expired, and
// Pending stores it so.
package command
