package command

import (
	"sync"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the command latency
// histogram: from a command's creation to its agent's result.
var LatencyBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Latency is a histogram of command latencies by action, in the shape
// Prometheus expects: cumulative counts per bucket, a count and a sum.
type Latency struct {
	Action string
	// Buckets[i] counts latencies at most LatencyBuckets[i].
	Buckets []uint64
	Count   uint64
	Sum     float64
}

type latencies struct {
	mu       sync.Mutex
	byAction map[string]*Latency
}

func (l *latencies) observe(action string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAction == nil {
		l.byAction = make(map[string]*Latency)
	}
	h := l.byAction[action]
	if h == nil {
		h = &Latency{Action: action, Buckets: make([]uint64, len(LatencyBuckets))}
		l.byAction[action] = h
	}
	for i, b := range LatencyBuckets {
		if s <= b {
			h.Buckets[i]++
		}
	}
	h.Count++
	h.Sum += s
}

// Latencies returns the latency histogram of every action that finished
// at least once since the queue was created, in the order of Actions.
func (q *Queue) Latencies() []Latency {
	q.lat.mu.Lock()
	defer q.lat.mu.Unlock()
	var out []Latency
	for _, a := range Actions {
		if h := q.lat.byAction[a]; h != nil {
			c := *h
			c.Buckets = append([]uint64(nil), h.Buckets...)
			out = append(out, c)
		}
	}
	return out
}
