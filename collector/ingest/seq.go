package ingest

import (
	"slices"
	"sync"
)

// seqs hands out log sequence numbers to concurrent appends and tells
// readers how far the log is complete. A transaction reserves its numbers
// before it commits and releases them after; readers only look below the
// oldest reservation still in flight, so a later number committed first
// is never read before an earlier one that is still being written (which
// the reader would otherwise skip for good). Numbers of a transaction
// that failed, or of duplicates, are simply never written: the log has
// gaps, which readers step over.
type seqs struct {
	mu      sync.Mutex
	next    uint64
	pending []uint64 // starts of reservations in flight, ascending
}

func (s *seqs) reserve(n int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.next
	s.next += uint64(n)
	s.pending = append(s.pending, start)
	return start
}

func (s *seqs) release(start uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.pending, start); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
}

// complete returns the number below which every reserved number has been
// committed or abandoned.
func (s *seqs) complete() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		return s.pending[0]
	}
	return s.next
}
