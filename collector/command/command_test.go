package command

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

type env struct {
	q     *Queue
	clock time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e.q = New(Config{DB: db, Now: func() time.Time { return e.clock }}, quiet)
	return e
}

func (e *env) pendingIDs(t *testing.T, agent string) []string {
	t.Helper()
	cmds, err := e.q.Pending(context.Background(), agent)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.GetId())
	}
	return ids
}

func (e *env) status(t *testing.T, id string) *Command {
	t.Helper()
	c, err := e.q.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wake := make(chan struct{}, 1)
	stop := e.q.Notify("a1", func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer stop()

	iso, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionIsolate, Reason: "beaconing", RequestedBy: "alice", IncidentID: "i1"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Error("Notify not called by Create")
	}
	e.clock = e.clock.Add(time.Second)
	kill, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionKill, Args: map[string]string{"pid": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.Create(ctx, Request{AgentID: "a2", Action: ActionCollect}); err != nil {
		t.Fatal(err)
	}
	if got := e.pendingIDs(t, "a1"); len(got) != 2 || got[0] != iso.ID || got[1] != kill.ID {
		t.Fatalf("pending %v, want [%s %s]", got, iso.ID, kill.ID)
	}
	pc, _ := e.q.Pending(ctx, "a1")
	if pc[0].GetReason() != "beaconing" || pc[0].GetRequestedBy() != "alice" || pc[0].GetExpiresUnixNano() != iso.ExpiresAt.UnixNano() || pc[1].GetArgs()["pid"] != "42" {
		t.Errorf("wire command %v", pc)
	}

	e.clock = e.clock.Add(time.Second)
	if err := e.q.Delivered(ctx, iso.ID); err != nil {
		t.Fatal(err)
	}
	if c := e.status(t, iso.ID); c.Status != StatusDelivered || c.DeliveredAt != e.clock {
		t.Errorf("after delivery: %+v", c)
	}
	if got := e.pendingIDs(t, "a1"); len(got) != 2 {
		t.Errorf("a delivered command left Pending: %v", got)
	}

	if err := e.q.Finished(ctx, "a2", &protocol.CommandResult{Id: iso.ID, Ok: true}); err == nil {
		t.Error("result from another agent accepted")
	}
	done := e.clock.Add(time.Second)
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: iso.ID, Ok: true, Result: "isolated", FinishedUnixNano: done.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: kill.ID, Ok: false, Result: "no such process"}); err != nil {
		t.Fatal(err)
	}
	if c := e.status(t, iso.ID); c.Status != StatusSucceeded || c.Result != "isolated" || c.FinishedAt != done {
		t.Errorf("after success: %+v", c)
	}
	if c := e.status(t, kill.ID); c.Status != StatusFailed || c.FinishedAt != e.clock || c.DeliveredAt.IsZero() {
		t.Errorf("after failure: %+v", c)
	}
	// A repeated result changes nothing; an unknown command is dropped.
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: iso.ID, Ok: false}); err != nil {
		t.Fatal(err)
	}
	if c := e.status(t, iso.ID); c.Status != StatusSucceeded {
		t.Errorf("repeated result changed status to %s", c.Status)
	}
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: "nope"}); err != nil {
		t.Errorf("unknown command: %v", err)
	}
	if got := e.pendingIDs(t, "a1"); len(got) != 0 {
		t.Errorf("finished commands pending: %v", got)
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	short, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionIsolate, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	long, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionRelease})
	if err != nil {
		t.Fatal(err)
	}
	if long.ExpiresAt != e.clock.Add(DefaultTTL) {
		t.Errorf("default expiry %v", long.ExpiresAt)
	}
	e.clock = e.clock.Add(2 * time.Minute)
	if c := e.status(t, short.ID); c.Status != StatusExpired || c.FinishedAt != short.ExpiresAt {
		t.Errorf("overdue command read as %+v", c)
	}
	expired, _, err := e.q.List(ctx, Query{Status: StatusExpired})
	if err != nil || len(expired) != 1 || expired[0].ID != short.ID {
		t.Errorf("expired listing %v, %v", expired, err)
	}
	if got := e.pendingIDs(t, "a1"); len(got) != 1 || got[0] != long.ID {
		t.Errorf("pending %v, want only %s", got, long.ID)
	}
	// A late result is still recorded: the agent ran the command.
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: short.ID, Ok: true}); err != nil {
		t.Fatal(err)
	}
	if c := e.status(t, short.ID); c.Status != StatusSucceeded {
		t.Errorf("late result: %s", c.Status)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		req   Request
		field string
	}{
		{Request{AgentID: "a", Action: ActionIsolate}, ""},
		{Request{AgentID: "a", Action: ActionKill, Args: map[string]string{"pid": "1"}}, ""},
		{Request{Action: ActionIsolate}, "agent_id"},
		{Request{AgentID: "a"}, "action"},
		{Request{AgentID: "a", Action: "reboot"}, "action"},
		{Request{AgentID: "a", Action: ActionKill}, "args.pid"},
		{Request{AgentID: "a", Action: ActionSuspend, Args: map[string]string{"pid": "-3"}}, "args.pid"},
		{Request{AgentID: "a", Action: ActionResume, Args: map[string]string{"pid": "x"}}, "args.pid"},
		{Request{AgentID: "a", Action: ActionDrill, TTL: 30 * 24 * time.Hour}, "ttl"},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		field := ""
		var fe *store.FieldError
		if errors.As(err, &fe) {
			field = fe.Field
		} else if err != nil {
			t.Fatalf("%+v: %v is not a FieldError", tt.req, err)
		}
		if field != tt.field {
			t.Errorf("%+v: error %v, want one on %q", tt.req, err, tt.field)
		}
	}
}

func TestListByAgent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, a := range []string{"a1", "a2", "a1"} {
		if _, err := e.q.Create(ctx, Request{AgentID: a, Action: ActionCollect}); err != nil {
			t.Fatal(err)
		}
	}
	got, next, err := e.q.List(ctx, Query{Agent: "a1", Page: store.Page{Limit: 1}})
	if err != nil || len(got) != 1 || next == "" {
		t.Fatalf("first page %v, next %q, err %v", got, next, err)
	}
	rest, next, err := e.q.List(ctx, Query{Agent: "a1", Page: store.Page{Limit: 1, Cursor: next}})
	if err != nil || len(rest) != 1 || next != "" || rest[0].ID >= got[0].ID {
		t.Fatalf("second page %v, next %q, err %v", rest, next, err)
	}
	if _, _, err := e.q.List(ctx, Query{Status: "done"}); err == nil {
		t.Error("unknown status accepted")
	}
}
