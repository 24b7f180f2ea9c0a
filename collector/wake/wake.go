// Package wake tells interested parties about news for a key (an agent, a
// store) instead of having them poll: Wake calls every function waiting on
// the key, never blocking on a slow one. A caller waits with a function,
// not a goroutine, so that thousands of idle agent connections do not each
// keep a goroutine parked on a channel.
package wake

import "sync"

// Waiters are the functions waiting for news, by key. The zero value is
// ready to use.
type Waiters struct {
	mu sync.Mutex
	m  map[string][]*waiter
}

type waiter struct{ f func() }

// Notify has f called on every Wake of key until stop is called. f runs on
// the goroutine that calls Wake, outside any lock of the Waiters: it must
// not block (note the news and return, or start work elsewhere), and it
// may still be called once while stop runs, so it must tolerate a call
// after stop.
func (w *Waiters) Notify(key string, f func()) (stop func()) {
	wt := &waiter{f: f}
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string][]*waiter{}
	}
	w.m[key] = append(w.m[key], wt)
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		ws := w.m[key]
		for i, x := range ws {
			if x == wt {
				last := len(ws) - 1
				ws[i], ws[last] = ws[last], nil
				ws = ws[:last]
				break
			}
		}
		if len(ws) == 0 {
			delete(w.m, key)
		} else {
			w.m[key] = ws
		}
	}
}

// Wake calls the functions waiting on key.
func (w *Waiters) Wake(key string) {
	w.mu.Lock()
	fs := make([]func(), len(w.m[key]))
	for i, wt := range w.m[key] {
		fs[i] = wt.f
	}
	w.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (w *Waiters) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
