package gateway

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/pki"
	"github.com/cordon-edr/cordon/protocol"
)

type fakeRules struct {
	mu      sync.Mutex
	cur     *protocol.RuleSet
	wake    chan struct{}
	results []*protocol.RuleSetResult
}

func (r *fakeRules) Current(context.Context) (*protocol.RuleSet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, nil
}

func (r *fakeRules) Wait() (<-chan struct{}, func()) { return r.wake, func() {} }

func (r *fakeRules) Result(_ context.Context, _ string, res *protocol.RuleSetResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	return nil
}

// An agent whose hello reports another version gets the current set at
// once, and every set pushed while it is connected.
func TestRuleSetsAreDelivered(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := newFake()
	rules := &fakeRules{cur: &protocol.RuleSet{Version: "1-aaaa"}, wake: make(chan struct{}, 1)}
	srv, err := New(Config{Listen: "127.0.0.1:0", CA: ca, Registry: be, Enroller: be, Ingest: be, Commands: be, Rules: rules,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e := &env{t: t, be: be, ca: ca, addr: srv.Addr().String()}

	cert, _ := e.enroll("good")
	conn, err := e.dial(cert)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	st, err := conn.OpenStreamSync(sctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	h := hello(protocol.CurrentVersion())
	h.GetHello().RulesVersion = "0-old"
	protocol.WriteFrame(st, h)
	r := protocol.NewFrameReader(st, 0)
	if f, err := r.Read(); err != nil || f.GetHelloAck() == nil {
		t.Fatalf("hello: %v %v", f, err)
	}
	if f, err := r.Read(); err != nil || f.GetRuleSet().GetVersion() != "1-aaaa" {
		t.Fatalf("want rule set 1-aaaa after the hello, got %v %v", f, err)
	}
	protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_RuleSetResult{RuleSetResult: &protocol.RuleSetResult{Version: "1-aaaa", Error: "x.yml:3: bad"}}})

	rules.mu.Lock()
	rules.cur = &protocol.RuleSet{Version: "2-bbbb"}
	rules.mu.Unlock()
	rules.wake <- struct{}{}
	if f, err := r.Read(); err != nil || f.GetRuleSet().GetVersion() != "2-bbbb" {
		t.Fatalf("want rule set 2-bbbb after the push, got %v %v", f, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rules.mu.Lock()
		res := rules.results
		rules.mu.Unlock()
		if len(res) == 1 && res[0].GetError() == "x.yml:3: bad" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results recorded: %v", res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
