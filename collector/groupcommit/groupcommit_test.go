package groupcommit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type write struct {
	n         int
	size      int
	committed bool
}

// waitQueued polls until n writes wait for the writer.
func waitQueued[T any](t *testing.T, q *Queue[T], n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q.mu.Lock()
		got := len(q.waiting)
		q.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes waiting, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroups holds the first commit until every other write waits, and
// checks that they are committed together and that no caller returns
// before its write is committed.
func TestGroups(t *testing.T) {
	const writers = 50
	release := make(chan struct{})
	var (
		mu     sync.Mutex
		groups [][]*write
	)
	q := New(func(group []*write) {
		mu.Lock()
		first := len(groups) == 0
		groups = append(groups, group)
		mu.Unlock()
		if first {
			<-release
		}
		for _, w := range group {
			w.committed = true
		}
	}, Limits[*write]{Items: 100})

	first := &write{n: 0}
	firstDone := make(chan bool)
	go func() {
		q.Do(first)
		firstDone <- first.committed
	}()
	// The first write is taken alone and its commit holds the writer.
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(groups) == 1 })

	var wg sync.WaitGroup
	ws := make([]*write, writers)
	for i := range ws {
		ws[i] = &write{n: i + 1}
		wg.Go(func() {
			q.Do(ws[i])
			if !ws[i].committed {
				t.Errorf("write %d returned before its commit", ws[i].n)
			}
		})
	}
	waitQueued(t, q, writers)
	select {
	case <-firstDone:
		t.Fatal("the first write returned before its commit")
	default:
	}
	close(release)
	if !<-firstDone {
		t.Fatal("the first write returned before its commit")
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(groups) != 2 || len(groups[1]) != writers {
		sizes := []int{}
		for _, g := range groups {
			sizes = append(sizes, len(g))
		}
		t.Fatalf("groups of %v, want [1 %d]", sizes, writers)
	}
	seen := map[int]bool{}
	for _, g := range groups {
		for _, w := range g {
			if seen[w.n] {
				t.Errorf("write %d committed twice", w.n)
			}
			seen[w.n] = true
		}
	}
	if len(seen) != writers+1 {
		t.Errorf("%d writes committed, want %d", len(seen), writers+1)
	}
}

// TestLimits checks that groups respect the item and size bounds, and
// that a write larger than the size bound still goes, alone.
func TestLimits(t *testing.T) {
	release := make(chan struct{})
	var got [][]int
	q := New(func(group []*write) {
		if got == nil {
			got = [][]int{}
			<-release
		}
		var ns []int
		for _, w := range group {
			ns = append(ns, w.n)
		}
		got = append(got, ns)
	}, Limits[*write]{Items: 3, Size: func(w *write) int { return w.size }, Bytes: 10})

	done := make(chan struct{})
	go func() { q.Do(&write{n: 0}); close(done) }()
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.waiting) == 0 && q.writing })

	// Queued in this order, they form the groups [1 2 3] (item bound),
	// [4 5] (6 would pass 10 bytes), [6] (too large alone) and [7].
	sizes := []int{1, 1, 1, 4, 5, 20, 1}
	var wg sync.WaitGroup
	for i, s := range sizes {
		w := &write{n: i + 1, size: s}
		wg.Go(func() { q.Do(w) })
		waitQueued(t, q, i+1) // keep the queue's order
	}
	close(release)
	wg.Wait()
	<-done
	want := "[[1 2 3] [4 5] [6] [7]]"
	if g := fmt.Sprint(got[1:]); g != want {
		t.Fatalf("groups %s, want %s", g, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(time.Millisecond)
	}
}
