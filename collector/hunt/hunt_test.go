package hunt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

func newStore(t *testing.T, clock *time.Time) *Store {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(Config{DB: db, Now: func() time.Time { return *clock }}, quiet)
}

func TestHuntLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	h, err := s.Create(ctx, Request{Query: `process.name == "xmrig"`, Selector: Selector{All: true}, TTL: time.Hour, CreatedBy: "alice"},
		[]Target{{ID: "a1"}, {ID: "a2"}, {ID: "a3"}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != HuntRunning || h.Counts.Pending != 3 || !h.Since.Equal(now.Add(-DefaultSince)) {
		t.Fatalf("created %+v", h)
	}
	reqs, err := s.Pending(ctx, "a1")
	if err != nil || len(reqs) != 1 || reqs[0].GetQuery() != h.Query || reqs[0].GetMaxMatches() != DefaultMaxMatches || reqs[0].GetBudgetMillis() != 30000 {
		t.Fatalf("pending %v %v", reqs, err)
	}
	if err := s.Delivered(ctx, "a1", h.ID); err != nil {
		t.Fatal(err)
	}
	answer := &protocol.HuntResult{Id: h.ID, Status: StatusAnswered, Scanned: 10, Matches: []*protocol.HuntMatch{
		{TimeUnixNano: now.Add(-time.Minute).UnixNano(), Source: "history", EventJson: []byte(`{"process":{"name":"xmrig"}}`)},
		{TimeUnixNano: 1, Source: "history", EventJson: []byte(`not json`)},
	}}
	if err := s.Answered(ctx, "a1", answer); err != nil {
		t.Fatal(err)
	}
	if err := s.Answered(ctx, "a1", answer); err != nil { // repeated: ignored
		t.Fatal(err)
	}
	if err := s.Answered(ctx, "a2", &protocol.HuntResult{Id: h.ID, Status: "partial", Reason: "time budget of 30s spent"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Answered(ctx, "a2", &protocol.HuntResult{Id: "nope", Status: "answered"}); err != nil {
		t.Fatalf("an unknown hunt's answer: %v", err)
	}
	if reqs, _ := s.Pending(ctx, "a1"); len(reqs) != 0 {
		t.Fatalf("answered hunt still pending: %v", reqs)
	}
	got, err := s.Get(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Counts
	if c.Answered != 1 || c.Partial != 1 || c.Pending != 1 || c.Matched != 1 || c.Matches != 1 || got.Status != HuntRunning {
		t.Fatalf("counts %+v status %s", c, got.Status)
	}
	if got.Agents[0].AgentID != "a1" || len(got.Agents[0].Matches) != 1 || got.Agents[0].DeliveredAt.IsZero() {
		t.Fatalf("agents %+v", got.Agents[0])
	}

	// a3 never answers: after the expiry it is expired and gets nothing.
	now = now.Add(2 * time.Hour)
	if reqs, _ := s.Pending(ctx, "a3"); len(reqs) != 0 {
		t.Fatalf("expired hunt delivered: %v", reqs)
	}
	got, _ = s.Get(ctx, h.ID)
	if got.Status != HuntExpired || got.Counts.Expired != 1 || got.Agents[2].Status != StatusExpired {
		t.Fatalf("after expiry: %s %+v", got.Status, got.Counts)
	}
	list, _, err := s.List(ctx, store.Page{})
	if err != nil || len(list) != 1 || list[0].Agents != nil {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	now := time.Now()
	s := newStore(t, &now)
	_, err := s.Create(context.Background(), Request{Query: `process.nme == "x"`}, []Target{{ID: "a"}})
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "query" || !strings.Contains(fe.Msg, "position 1") {
		t.Fatalf("bad query: %v", err)
	}
	if _, err := s.Create(context.Background(), Request{Query: `process.pid == 1`}, nil); err == nil {
		t.Fatal("a hunt without agents was created")
	}
	if list, _, _ := s.List(context.Background(), store.Page{}); len(list) != 0 {
		t.Fatalf("refused hunts stored: %v", list)
	}
}

func TestSelector(t *testing.T) {
	tests := []struct {
		in   string
		id   string
		tags map[string]string
		want bool
		err  string
	}{
		{"", "x", nil, true, ""},
		{"all", "x", nil, true, ""},
		{"a1,a2", "a2", nil, true, ""},
		{"a1,a2", "a3", nil, false, ""},
		{"criticality=high", "a3", map[string]string{"criticality": "high"}, true, ""},
		{"criticality=high,env=prod", "a3", map[string]string{"criticality": "high"}, false, ""},
		{"a1,criticality=high", "a1", nil, true, ""},
		{"a1,,a2", "", nil, false, "term 2 is empty"},
		{"all,a1", "", nil, false, "cannot be combined"},
		{"=x", "", nil, false, "no tag name"},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || sel.Match(tt.id, tt.tags) != tt.want {
			t.Errorf("%q matching %s %v: %v %v", tt.in, tt.id, tt.tags, !tt.want, err)
		}
	}
}

// A fleet answering one hunt at once: every answer is counted, none lost
// to conflicts on the hunt's counts.
func TestAnswersAtOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	const n = 300
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = Target{ID: fmt.Sprintf("a%03d", i)}
	}
	h, err := s.Create(ctx, Request{Query: `process.name == "xmrig"`, Selector: Selector{All: true}, TTL: time.Hour, CreatedBy: "alice"}, targets)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Answered(ctx, tg.ID, &protocol.HuntResult{Id: h.ID, Status: StatusAnswered, Scanned: 300})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != HuntDone || got.Counts.Answered != n || got.Counts.Pending != 0 {
		t.Errorf("after %d answers at once: %s, %+v", n, got.Status, got.Counts)
	}
}

// Answers committed in groups: two hunts delivered and answered at once,
// each answer sent twice, mixed with answers to a hunt that does not
// exist. Every answer is counted once, and is stored (with its delivery)
// when Answered returns.
func TestAnswersGrouped(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	const n = 100
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = Target{ID: fmt.Sprintf("a%03d", i)}
	}
	var ids []string
	for range 2 {
		h, err := s.Create(ctx, Request{Query: `process.name == "xmrig"`, Selector: Selector{All: true}, TTL: time.Hour, CreatedBy: "alice"}, targets)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 5*n)
	for i, tg := range targets {
		for _, id := range append(ids, ids[0], "no-such-hunt") {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Delivered(ctx, tg.ID, id); (err != nil) != (id == "no-such-hunt") {
					errs <- fmt.Errorf("delivering hunt %s to %s: %v", id, tg.ID, err)
				}
				res := &protocol.HuntResult{Id: id, Status: StatusAnswered, Scanned: 10}
				if i%2 == 0 {
					res.Matches = []*protocol.HuntMatch{{TimeUnixNano: now.UnixNano(), Source: "history", EventJson: []byte(`{"process":{"name":"xmrig"}}`)}}
				}
				if err := s.Answered(ctx, tg.ID, res); err != nil {
					errs <- err
					return
				}
				if id == "no-such-hunt" {
					return
				}
				err := s.db.View(func(txn *badger.Txn) error {
					var a Agent
					if err := store.Get(txn, agentKey(id, tg.ID), &a); err != nil {
						return err
					}
					if a.Status != StatusAnswered || a.DeliveredAt.IsZero() {
						return fmt.Errorf("agent %s of hunt %s is %s, delivered at %v, once its answer returned", tg.ID, id, a.Status, a.DeliveredAt)
					}
					return nil
				})
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := Counts{Agents: n, Answered: n, Matched: n / 2, Matches: n / 2}
		if got.Status != HuntDone || got.Counts != want {
			t.Errorf("hunt %s: %s, %+v, want %+v", id, got.Status, got.Counts, want)
		}
		if pending, err := s.Pending(ctx, targets[0].ID); err != nil || len(pending) != 0 {
			t.Errorf("agent %s still has %d hunts pending (%v)", targets[0].ID, len(pending), err)
		}
	}
}
