package incident

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cordon-edr/cordon/collector/store"
)

func TestAddHost(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t, spec{agent: "a2", severity: "high"})
	e.process(t)
	inc := e.incidents(t)[0]

	got, err := e.engine.AddHost(ctx, inc.ID, "a3", "alice", "hunt 42 found the hash")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.AffectedHosts, []string{"a2", "a3"}) || got.AssetCriticality != "critical" || got.Impact >= inc.Impact {
		t.Fatalf("after adding a3: hosts %v, criticality %s, impact %d (was %d)", got.AffectedHosts, got.AssetCriticality, got.Impact, inc.Impact)
	}
	last := got.Timeline[len(got.Timeline)-1]
	if !slices.ContainsFunc(got.Timeline, func(en Entry) bool {
		return en.Action == ActionHostAdded && en.Actor == "alice" && en.Detail == "host a3 added: hunt 42 found the hash"
	}) {
		t.Fatalf("timeline ends with %+v", last)
	}
	again, err := e.engine.AddHost(ctx, inc.ID, "a3", "alice", "")
	if err != nil || len(again.AffectedHosts) != 2 || len(again.Timeline) != len(got.Timeline) {
		t.Fatalf("adding twice: %v %v", again.AffectedHosts, err)
	}
	if _, err := e.engine.AddHost(ctx, inc.ID, "nobody", "alice", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
	st := StatusFalsePositive
	if _, err := e.engine.Update(ctx, inc.ID, Change{Status: &st}, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.AddHost(ctx, inc.ID, "a4", "alice", ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("closed incident: %v", err)
	}
}
