package sensor

// maxExecRecords bounds the exec records waiting for their connector
// event; the oldest go first.
const maxExecRecords = 8192

// execStore holds the kernel's exec records until the connector's exec
// event for the same process takes them. A pid may exec several times in
// a row, so each pid keeps its records in order. It is used by the
// connector's reader only and is not safe for concurrent use.
type execStore struct {
	byPID map[int][]execRecord
	order []int // pids in arrival order, one entry per record
}

func newExecStore() *execStore {
	return &execStore{byPID: make(map[int][]execRecord)}
}

func (s *execStore) put(r execRecord) {
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
}

// take removes and returns the oldest record of pid.
func (s *execStore) take(pid int) (execRecord, bool) {
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

func (s *execStore) len() int { return len(s.order) }

func indexOf(xs []int, x int) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
