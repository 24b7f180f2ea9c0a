package localapi

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func ev(pid int) ecs.Event {
	return ecs.Event{Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart}, Process: &ecs.Process{PID: pid}}
}

func pids(evs []ecs.Event) []int {
	var out []int
	for _, e := range evs {
		out = append(out, e.Process.PID)
	}
	return out
}

func TestHubKeepsTheMostRecentInOrder(t *testing.T) {
	tests := []struct {
		published int
		want      []int
	}{
		{0, nil},
		{2, []int{1, 2}},
		{3, []int{1, 2, 3}},
		{5, []int{3, 4, 5}},
	}
	for _, tt := range tests {
		h := NewHub(3)
		for i := 1; i <= tt.published; i++ {
			h.Publish(ev(i))
		}
		recent, _, _ := h.Subscribe(false)
		if got := pids(recent); !equal(got, tt.want) {
			t.Errorf("after %d: got %v, want %v", tt.published, got, tt.want)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSocketStatusAndEvents(t *testing.T) {
	hub := NewHub(10)
	hub.Publish(ev(1))
	path := filepath.Join(t.TempDir(), SocketName)
	srv := NewServer(path, func() Status { return Status{AgentID: "a1", Rules: 3} }, hub, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var st Status
	var err error
	for i := 0; i < 50; i++ {
		if st, err = GetStatus(ctx, path); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || st.AgentID != "a1" || st.Rules != 3 {
		t.Fatalf("status: %+v, %v", st, err)
	}

	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	var got []int
	go func() {
		// Until the reader has subscribed, a publish may precede it.
		for fctx.Err() == nil {
			hub.Publish(ev(2))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err = Events(fctx, path, true, func(e ecs.Event, _ []byte) error {
		got = append(got, e.Process.PID)
		if len(got) == 2 {
			fcancel()
		}
		return nil
	})
	if len(got) < 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("followed events %v (%v), want [1 2]", got, err)
	}
}
