package gateway

import (
	"maps"
	"sync"
)

// Reasons a connection, stream or enrollment is refused, as counted by
// Refusals.
const (
	RefusedCertificate = "certificate" // a client certificate not issued by our CA
	RefusedAgent       = "agent"       // our certificate, but a revoked or unknown agent
	RefusedEnrollment  = "enrollment"  // bad token, no request, or a bad request
)

// refusals counts refusals by reason.
type refusals struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]uint64{}
	}
	r.n[reason]++
}

// Refusals returns how many times each kind of refusal happened since
// the server started: the reasons above, and the Error frame codes of
// refused streams (frame, protocol, version, ...).
func (s *Server) Refusals() map[string]uint64 {
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	m := maps.Clone(s.refused.n)
	if m == nil {
		m = map[string]uint64{}
	}
	return m
}
