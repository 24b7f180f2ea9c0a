package command

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol"
)

func TestLatencies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionIsolate})
	if err != nil {
		t.Fatal(err)
	}
	e.clock = e.clock.Add(3 * time.Second)
	for range 2 { // a repeated result is not counted again
		if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: c.ID, Ok: true}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.q.Latencies()
	if len(got) != 1 || got[0].Action != ActionIsolate || got[0].Count != 1 || got[0].Sum != 3 {
		t.Fatalf("latencies %+v", got)
	}
	// 3 s falls in the buckets from 5 s up.
	want := []uint64{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}
	if !slices.Equal(got[0].Buckets, want) {
		t.Errorf("buckets %v, want %v", got[0].Buckets, want)
	}
}
