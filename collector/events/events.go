// Package events tells live views (the web console's server-sent event
// stream) that something changed: an incident, a command, an agent. An
// event carries a kind and, when known, an id; subscribers fetch the
// current state from the API themselves, so a missed event costs only
// freshness, never data.
package events

import "sync"

// Kinds of event.
const (
	KindIncident = "incident"
	KindCommand  = "command"
	KindAgent    = "agent"
	KindFinding  = "finding"
)

// Event says that an object of Kind (with ID, when known) changed.
type Event struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// buffer is how many events a subscriber may lag behind before further
// events to it are dropped.
const buffer = 64

// Hub fans events out to subscribers. The zero value is ready to use; a
// nil *Hub drops every event.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Publish sends e to every subscriber without blocking: a subscriber
// whose buffer is full misses it.
func (h *Hub) Publish(kind, id string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- Event{Kind: kind, ID: id}:
		default:
		}
	}
}

// Subscribe returns a channel of events and the function that ends the
// subscription.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan Event]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// Subscribers returns the number of current subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
