package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// stormEvent is event i of an exec storm as the process sensor reports
// it: a start and an end for each short-lived /usr/bin/true with a unique
// argument, spawned by one of two shells, 8,000 events a second.
func stormEvent(i int) ecs.Event {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 125 * time.Microsecond)
	n := i / 2
	shell := fmt.Sprintf("/bin/sh -c i=0; while :; do /bin/true storm-%d-$i; done", n%2)
	p := &ecs.Process{
		PID: 100000 + n%30000, EntityID: fmt.Sprintf("%016x", n), Executable: "/usr/bin/true", Name: "true",
		CommandLine: fmt.Sprintf("/bin/true storm-%d-%d", n%2, n), Args: []string{"/bin/true", fmt.Sprintf("storm-%d-%d", n%2, n)},
		WorkingDirectory: "/root", User: ecs.User{ID: "0", Name: "root"},
		Parent: &ecs.Parent{PID: 4000 + n%2, Executable: "/usr/bin/dash", Name: "sh", CommandLine: shell},
	}
	typ := "start"
	if i%2 == 1 {
		typ = "end"
	}
	return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "process", Type: typ}, Process: p}
}

// BenchmarkAddStorm is the writer's cost per event in an exec storm:
// events 125 µs apart, written in batches of flushMax as Run does.
func BenchmarkAddStorm(b *testing.B) { benchAdd(b, flushMax, stormEvent) }
