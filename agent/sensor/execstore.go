package sensor

import (
	"sync"
	"time"
)

// maxExecRecords bounds the exec records waiting for their connector
// event; the oldest go first.
const maxExecRecords = 8192

// execStore holds the kernel's exec records until the connector's exec
// event for the same process takes them. A pid may exec several times in
// a row, so each pid keeps its records in order.
type execStore struct {
	mu     sync.Mutex
	cond   *sync.Cond
	byPID  map[int][]execRecord
	order  []int // pids in arrival order, one entry per record
	closed bool
}

func newExecStore() *execStore {
	s := &execStore{byPID: make(map[int][]execRecord)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *execStore) put(r execRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) >= maxExecRecords {
		old := s.order[0]
		s.order = s.order[1:]
		if rs := s.byPID[old]; len(rs) > 1 {
			s.byPID[old] = rs[1:]
		} else {
			delete(s.byPID, old)
		}
	}
	s.byPID[r.pid] = append(s.byPID[r.pid], r)
	s.order = append(s.order, r.pid)
	s.cond.Broadcast()
}

// take removes and returns the oldest record of pid, waiting up to wait
// for one to arrive.
func (s *execStore) take(pid int, wait time.Duration) (execRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byPID[pid]) == 0 && wait > 0 && !s.closed {
		timer := time.AfterFunc(wait, func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
		deadline := time.Now().Add(wait)
		for len(s.byPID[pid]) == 0 && !s.closed && time.Now().Before(deadline) {
			s.cond.Wait()
		}
		timer.Stop()
	}
	rs := s.byPID[pid]
	if len(rs) == 0 {
		return execRecord{}, false
	}
	r := rs[0]
	if len(rs) > 1 {
		s.byPID[pid] = rs[1:]
	} else {
		delete(s.byPID, pid)
	}
	// Records are taken soon after they arrive, so the pid is near the
	// front of order.
	if i := indexOf(s.order, pid); i >= 0 {
		s.order = append(s.order[:i], s.order[i+1:]...)
	}
	return r, true
}

func indexOf(xs []int, x int) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func (s *execStore) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
}
