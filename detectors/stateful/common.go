package stateful

import (
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Common ATT&CK v19 ids.
const (
	tacticExecution      = "TA0002"
	tacticDiscovery      = "TA0007"
	tacticCommandControl = "TA0011"
	tacticImpact         = "TA0040"
)

const (
	ruleAuthor  = "Cordon"
	ruleLicense = "DRL-1.1"
	ruleVersion = "1"
)

// clock returns an event's time, or now() for events without one.
type clock func() time.Time

func (c clock) at(ev *ecs.Event) time.Time {
	if !ev.Timestamp.IsZero() {
		return ev.Timestamp
	}
	if c == nil {
		return time.Now()
	}
	return c()
}

// processKey names the process of an event: its entity id, else its pid.
func processKey(ev *ecs.Event) string {
	p := ev.Process
	if p == nil {
		return ""
	}
	if p.EntityID != "" {
		return p.EntityID
	}
	return p.Executable + "#" + itoa(p.PID)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// lru is a bounded map that forgets the least recently touched key.
type lru[V any] struct {
	max   int
	m     map[string]*lruEntry[V]
	head  *lruEntry[V] // most recent
	tail  *lruEntry[V]
	fresh func() V
}

type lruEntry[V any] struct {
	key        string
	v          V
	prev, next *lruEntry[V]
}

func newLRU[V any](max int, fresh func() V) *lru[V] {
	return &lru[V]{max: max, m: map[string]*lruEntry[V]{}, fresh: fresh}
}

// get returns the value for key, creating it (and evicting the oldest
// key when full) if needed.
func (l *lru[V]) get(key string) V {
	if e, ok := l.m[key]; ok {
		l.unlink(e)
		l.push(e)
		return e.v
	}
	if len(l.m) >= l.max && l.tail != nil {
		old := l.tail
		l.unlink(old)
		delete(l.m, old.key)
	}
	e := &lruEntry[V]{key: key, v: l.fresh()}
	l.m[key] = e
	l.push(e)
	return e.v
}

// peek returns the value for key without creating it or counting it as
// touched.
func (l *lru[V]) peek(key string) (V, bool) {
	if e, ok := l.m[key]; ok {
		return e.v, true
	}
	var zero V
	return zero, false
}

// remove forgets key.
func (l *lru[V]) remove(key string) {
	if e, ok := l.m[key]; ok {
		l.unlink(e)
		delete(l.m, key)
	}
}

func (l *lru[V]) len() int { return len(l.m) }

func (l *lru[V]) unlink(e *lruEntry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *lru[V]) push(e *lruEntry[V]) {
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

// burst counts distinct items per key in a sliding window.
type burst struct {
	q       []stamped      // in time order; q[head:] are in the window
	head    int            // the oldest occurrence still counted
	counts  map[string]int // item → occurrences in q[head:]
	quietTo time.Time      // no finding before this time
}

type stamped struct {
	t    time.Time
	item string
}

func newBurst() *burst { return &burst{counts: map[string]int{}} }

// add records item at t and returns how many distinct items were seen in
// the window ending at t. It keeps at most limit occurrences, forgetting
// the oldest.
func (b *burst) add(item string, t time.Time, window time.Duration, limit int) int {
	b.q = append(b.q, stamped{t, item})
	b.counts[item]++
	for b.head < len(b.q) && (t.Sub(b.q[b.head].t) > window || len(b.q)-b.head > limit) {
		old := b.q[b.head].item
		if b.counts[old]--; b.counts[old] <= 0 {
			delete(b.counts, old)
		}
		b.q[b.head] = stamped{} // let the item go
		b.head++
	}
	// Forgotten occurrences are dropped from the front once they are
	// half of q: a full window moved by one for every start (an exec
	// storm keeps it full) cost a copy of all of it each time.
	if b.head > 0 && b.head >= len(b.q)/2 {
		b.q = append(b.q[:0], b.q[b.head:]...)
		clear(b.q[len(b.q):cap(b.q)][:b.head]) // the copies beyond the new end
		b.head = 0
	}
	return len(b.counts)
}
