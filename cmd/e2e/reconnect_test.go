package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"
)

// The registry logs one line per accepted session (the gateway logs
// another, without the hostname key): count the registry's only.
var connectedAt = regexp.MustCompile(`time=(\S+) level=INFO msg="agent connected" agent=\S+ hostname=`)

// connectTimes returns when the collector logged each agent session.
func connectTimes(t *testing.T, log string) []time.Time {
	t.Helper()
	var ts []time.Time
	for _, m := range connectedAt.FindAllStringSubmatch(log, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("log time %q: %v", m[1], err)
		}
		ts = append(ts, at)
	}
	return ts
}

// A fleet whose collector restarts comes back spread out: the collector
// closes every connection with its shutdown code, each agent waits a
// random delay within its restart window (10 s, the default) before its
// first reconnection, and those that dial while the collector is still
// down retry on their own schedule. Every agent reconnects, over more than
// a second, and no 100 ms holds a quarter of the fleet. The bounds are far
// from what a uniform spread gives (200 agents over 10 s put about 2 in a
// 100 ms window), so a slow machine that delays the restart or the
// handshakes does not make them flaky: it spreads the fleet further.
func TestFleetReconnectSpread(t *testing.T) {
	c := newCollector(t)
	const agents = 200
	run := startLoadgen(t, c, "--agents", fmt.Sprint(agents), "--rate", "0", "--heartbeat", "2s",
		"--duration", "30s", "--drain", "10s")
	eventually(t, 60*time.Second, "the fleet connected", func() error {
		if n := len(connectTimes(t, c.Log())); n < agents {
			return fmt.Errorf("%d connected", n)
		}
		return nil
	})
	// A clean stop closes every connection at once: the worst case. The
	// collector stays away for a second, as a restart of a loaded one does,
	// so the agents' first retries fail and their backoff spreads them.
	c.stop()
	time.Sleep(time.Second)
	c = startCollector(t, c.data, c.listen, c.api)
	var ts []time.Time
	eventually(t, 30*time.Second, "the fleet reconnected", func() error {
		if ts = connectTimes(t, c.Log()); len(ts) < agents {
			return fmt.Errorf("%d reconnected", len(ts))
		}
		return nil
	})
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	spread := ts[len(ts)-1].Sub(ts[0])
	busiest := 0
	for i := range ts {
		j := i
		for j < len(ts) && ts[j].Sub(ts[i]) < 100*time.Millisecond {
			j++
		}
		busiest = max(busiest, j-i)
	}
	t.Logf("%d agents reconnected over %s; busiest 100 ms: %d", len(ts), spread.Round(time.Millisecond), busiest)
	if spread < time.Second {
		t.Errorf("all reconnections within %s, want them spread over at least 1s", spread)
	}
	if busiest >= agents/4 {
		t.Errorf("%d of %d agents reconnected within one 100 ms: a thundering herd", busiest, agents)
	}
	rep := run.wait(t, 60*time.Second)
	if rep.Reconnects < agents {
		t.Errorf("%d reconnects reported, want at least %d", rep.Reconnects, agents)
	}
}
