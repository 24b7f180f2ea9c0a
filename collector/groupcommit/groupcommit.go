// Package groupcommit commits concurrent writes in groups. Callers queue
// a write and wait; one writer takes everything waiting (up to a bound),
// commits it with one call, and releases each caller once its group is
// committed. Under load a store then pays one synced commit per group
// instead of one per write, and writes that touch the same keys no longer
// conflict with each other.
package groupcommit

import (
	"slices"
	"sync"
)

// Limits bound one group. Items is the most writes in a group (at least
// one is always taken); Size, when set, is the size of a write and Bytes
// the most a group holds of it, a write larger than Bytes going alone.
type Limits[T any] struct {
	Items int
	Size  func(T) int
	Bytes int
}

// Queue hands queued writes to commit in groups. The zero value is not
// usable: use New.
type Queue[T any] struct {
	commit func(group []T)
	lim    Limits[T]

	mu      sync.Mutex
	waiting []entry[T]
	writing bool // a writer is draining waiting
}

type entry[T any] struct {
	item T
	size int
	done chan struct{}
}

// New returns a Queue whose writer calls commit with each group. commit
// stores the group and records each write's outcome in the write itself
// (T is usually a pointer); the callers read it after Do returns.
func New[T any](commit func(group []T), lim Limits[T]) *Queue[T] {
	if lim.Items <= 0 {
		lim.Items = 1
	}
	return &Queue[T]{commit: commit, lim: lim}
}

// Do queues item, starting the writer when none runs, and returns once
// the group holding item is committed. It never returns earlier: a caller
// that left before the commit could not tell a stored write from a lost
// one.
func (q *Queue[T]) Do(item T) {
	e := entry[T]{item: item, done: make(chan struct{})}
	if q.lim.Size != nil {
		e.size = q.lim.Size(item)
	}
	q.mu.Lock()
	q.waiting = append(q.waiting, e)
	if !q.writing {
		q.writing = true
		go q.drain()
	}
	q.mu.Unlock()
	<-e.done
}

// drain commits the waiting writes, a group at a time, until none waits.
func (q *Queue[T]) drain() {
	for {
		q.mu.Lock()
		n := q.groupLen()
		if n == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		group := slices.Clone(q.waiting[:n])
		q.waiting = slices.Delete(q.waiting, 0, n)
		q.mu.Unlock()

		items := make([]T, len(group))
		for i, e := range group {
			items[i] = e.item
		}
		q.commit(items)
		for _, e := range group {
			close(e.done)
		}
	}
}

// groupLen is how many of the waiting writes the next group takes. q.mu
// is held.
func (q *Queue[T]) groupLen() int {
	n, size := 0, 0
	for n < len(q.waiting) && n < q.lim.Items {
		s := q.waiting[n].size
		if n > 0 && q.lim.Bytes > 0 && size+s > q.lim.Bytes {
			break
		}
		size += s
		n++
	}
	return n
}

// Waiting returns how many writes wait for the writer, not counting the
// group being committed.
func (q *Queue[T]) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}
