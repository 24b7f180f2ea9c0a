package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// stored reads an agent's stored record and the version of its key.
func (e *env) stored(t *testing.T, id string) (*agentRecord, uint64) {
	t.Helper()
	var (
		a   *agentRecord
		ver uint64
	)
	err := e.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(agentKey(id))
		if err != nil {
			return err
		}
		ver = item.Version()
		a, err = e.reg.load(txn, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, ver
}

// TestConcurrentHellos holds the writer while a fleet says hello, then
// checks that every hello is committed in one transaction, that no
// caller returns before its hello is stored, and that an unknown or
// revoked agent in the group is refused alone.
func TestConcurrentHellos(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const n = 100
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.enroll(t, nil)
	}
	revoked := e.enroll(t, nil)
	if _, err := e.reg.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}

	// Hold the writer with a change of its own.
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = e.reg.write(ids[0], func(*agentRecord) (bool, error) {
			select {
			case <-held:
			default:
				close(held)
			}
			<-release
			return false, nil
		})
	}()
	<-held

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		returned int
	)
	for i, id := range ids {
		wg.Go(func() {
			if err := e.reg.Connected(ctx, id, helloFrom(fmt.Sprintf("host-%d", i)), "127.0.0.1:1"); err != nil {
				t.Errorf("hello of %s: %v", id, err)
				return
			}
			mu.Lock()
			returned++
			mu.Unlock()
			if a, _ := e.stored(t, id); a.Hostname != fmt.Sprintf("host-%d", i) {
				t.Errorf("agent %s returned from its hello with hostname %q stored", id, a.Hostname)
			}
		})
	}
	refusals := make(chan error, 2)
	for _, id := range []string{"no-such-agent", revoked} {
		wg.Go(func() { refusals <- e.reg.Connected(ctx, id, helloFrom("x"), "127.0.0.1:1") })
	}

	deadline := time.Now().Add(30 * time.Second)
	for e.reg.writes.Waiting() < n+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d hellos waiting, want %d", e.reg.writes.Waiting(), n+2)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	early := returned
	mu.Unlock()
	if early != 0 {
		t.Fatalf("%d hellos returned before any was committed", early)
	}
	close(release)
	wg.Wait()

	if err := <-refusals; !errors.Is(err, ErrUnknownAgent) && !errors.Is(err, ErrRevoked) {
		t.Errorf("hello of an unknown or revoked agent: %v", err)
	}
	if err := <-refusals; !errors.Is(err, ErrUnknownAgent) && !errors.Is(err, ErrRevoked) {
		t.Errorf("hello of an unknown or revoked agent: %v", err)
	}
	// One transaction: every record carries the same commit version.
	versions := map[uint64]int{}
	for i, id := range ids {
		a, ver := e.stored(t, id)
		versions[ver]++
		if a.Hostname != fmt.Sprintf("host-%d", i) || !a.LastSeen.Equal(e.clock) || len(a.SensorModes) != 1 {
			t.Errorf("agent %s stored as %+v", id, a.Agent)
		}
	}
	if len(versions) != 1 {
		t.Errorf("hellos committed in %d transactions, want 1: %v", len(versions), versions)
	}
	if got := e.reg.Online(); got != n {
		t.Errorf("%d agents online, want %d", got, n)
	}
}

// TestHelloUnchanged checks that a hello that changes nothing but the
// time last seen is not written, that the API still shows that time, and
// that the disconnection stores it.
func TestHelloUnchanged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.enroll(t, nil)
	if err := e.reg.Connected(ctx, id, helloFrom("web-1"), "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	first, ver := e.stored(t, id)
	e.reg.Disconnected(id)
	_, ver = e.stored(t, id)

	e.clock = e.clock.Add(time.Minute)
	if err := e.reg.Connected(ctx, id, helloFrom("web-1"), "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	a, again := e.stored(t, id)
	if again != ver || !a.LastSeen.Equal(first.LastSeen) {
		t.Errorf("an unchanged hello was written (version %d → %d, last seen %s → %s)", ver, again, first.LastSeen, a.LastSeen)
	}
	got, err := e.reg.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Online || !got.LastSeen.Equal(e.clock) {
		t.Errorf("after an unchanged hello: online %v, last seen %s, want true, %s", got.Online, got.LastSeen, e.clock)
	}

	e.reg.Disconnected(id)
	if a, _ := e.stored(t, id); !a.LastSeen.Equal(e.clock) {
		t.Errorf("after the disconnection, last seen %s stored, want %s", a.LastSeen, e.clock)
	}

	// A changed fact is written at once.
	e.clock = e.clock.Add(time.Minute)
	if err := e.reg.Connected(ctx, id, helloFrom("web-2"), "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.stored(t, id); a.Hostname != "web-2" || !a.LastSeen.Equal(e.clock) {
		t.Errorf("a changed hello stored hostname %q, last seen %s; want web-2, %s", a.Hostname, a.LastSeen, e.clock)
	}
}
