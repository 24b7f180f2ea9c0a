package events

import "testing"

func TestHub(t *testing.T) {
	var nilHub *Hub
	nilHub.Publish(KindAgent, "a") // no panic

	var h Hub
	a, stopA := h.Subscribe()
	b, stopB := h.Subscribe()
	h.Publish(KindIncident, "i1")
	if e := <-a; e != (Event{KindIncident, "i1"}) {
		t.Errorf("a got %+v", e)
	}
	if e := <-b; e != (Event{KindIncident, "i1"}) {
		t.Errorf("b got %+v", e)
	}
	stopB()
	if h.Subscribers() != 1 {
		t.Errorf("%d subscribers", h.Subscribers())
	}
	// A slow subscriber never blocks the publisher.
	for range buffer + 10 {
		h.Publish(KindCommand, "")
	}
	if len(a) != buffer {
		t.Errorf("a holds %d events, want %d", len(a), buffer)
	}
	stopA()
}
