// Package wake lets goroutines wait for news about a key (an agent, a
// store) instead of polling: Wake signals every waiter of the key without
// ever blocking, and a waiter busy when it came finds the signal on its
// next look.
package wake

import "sync"

// Waiters are the goroutines waiting, by key. The zero value is ready to
// use.
type Waiters struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

// Wait returns a channel that gets a value when key is woken, and a
// function to stop waiting.
func (w *Waiters) Wait(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]map[chan struct{}]struct{}{}
	}
	if w.m[key] == nil {
		w.m[key] = map[chan struct{}]struct{}{}
	}
	w.m[key][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.m[key], ch)
		if len(w.m[key]) == 0 {
			delete(w.m, key)
		}
	}
}

// Wake signals every waiter of key.
func (w *Waiters) Wake(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// waiting returns how many keys have waiters, for tests.
func (w *Waiters) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
