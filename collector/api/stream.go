package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/store"
)

// Tickets let a browser open the event stream: EventSource cannot send
// an Authorization header, so the console trades its key for a ticket
// (POST /api/v1/events/ticket) and puts the ticket in the stream's URL.
// A ticket is good for one connection within ticketTTL and never appears
// anywhere else than that one URL.
const (
	ticketTTL    = 30 * time.Second
	ticketPrefix = "cet_"
	maxTickets   = 10000
)

type ticket struct {
	key     *auth.Key
	expires time.Time
}

// createTicket answers {ticket, expires_at}.
func (s *server) createTicket(w http.ResponseWriter, r *http.Request) error {
	secret, hash := store.NewSecret(ticketPrefix)
	now := time.Now()
	s.mu.Lock()
	for h, t := range s.tickets {
		if now.After(t.expires) {
			delete(s.tickets, h)
		}
	}
	if len(s.tickets) >= maxTickets {
		s.mu.Unlock()
		return store.Conflict("", "too many unused event tickets; try again in %s", ticketTTL)
	}
	s.tickets[hash] = ticket{key: caller(r), expires: now.Add(ticketTTL)}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expires_at"`
	}{secret, now.Add(ticketTTL).UTC()})
	return nil
}

// redeemTicket consumes a ticket and returns the key it was issued to.
func (s *server) redeemTicket(secret string) (*auth.Key, bool) {
	if !store.WellFormedSecret(ticketPrefix, secret) {
		return nil, false
	}
	hash := store.HashSecret(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[hash]
	delete(s.tickets, hash)
	if !ok || time.Now().After(t.expires) {
		return nil, false
	}
	return t.key, true
}

// keepalive is how often an idle stream sends a comment, so that proxies
// and the browser see the connection alive.
const keepalive = 15 * time.Second

// stream serves server-sent events: one "change" event, with data
// {"kind","id"}, for every change of an incident, command or agent, until
// the client goes away, the server shuts down, or the key the ticket was
// issued to is revoked (checked at every keepalive).
func (s *server) stream(w http.ResponseWriter, r *http.Request) error {
	if s.Events == nil {
		return fmt.Errorf("the collector has no event hub configured")
	}
	rc := http.NewResponseController(w)
	ch, stop := s.Events.Subscribe()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\nevent: ready\ndata: {}\n\n")
	if err := rc.Flush(); err != nil {
		return nil // the client is gone
	}
	key := caller(r)
	tick := time.NewTicker(s.keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			if ok, err := s.Keys.Active(r.Context(), key.ID); err != nil || !ok {
				return nil // the key was revoked, or cannot be checked
			}
			fmt.Fprint(w, ": keepalive\n\n")
		case e := <-ch:
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: change\ndata: %s\n\n", b)
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// me answers the caller's key: the console shows its name and offers only
// what its role allows.
func (s *server) me(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, caller(r))
	return nil
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Keys.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("API key revoked through the API", "key", k.ID, "by", caller(r).Name)
	writeJSON(w, http.StatusOK, k)
	return nil
}
