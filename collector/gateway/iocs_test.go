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

type fakeIndicators struct {
	mu      sync.Mutex
	cur     *protocol.IndicatorSet
	wake    chan struct{}
	results []*protocol.IndicatorSetResult
}

func (r *fakeIndicators) Current(context.Context) (*protocol.IndicatorSet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, nil
}

func (r *fakeIndicators) Wait() (<-chan struct{}, func()) { return r.wake, func() {} }

func (r *fakeIndicators) Result(_ context.Context, _ string, res *protocol.IndicatorSetResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	return nil
}

// An agent whose hello reports the current indicator set gets nothing at
// once, then every set pushed while it is connected; its answers are
// recorded.
func TestIndicatorSetsAreDelivered(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := newFake()
	iocs := &fakeIndicators{cur: &protocol.IndicatorSet{Version: "1-aaaa"}, wake: make(chan struct{}, 1)}
	srv, err := New(Config{Listen: "127.0.0.1:0", CA: ca, Registry: be, Enroller: be, Ingest: be, Commands: be, Indicators: iocs,
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
	h.GetHello().IocsVersion = "1-aaaa"
	protocol.WriteFrame(st, h)
	r := protocol.NewFrameReader(st, 0)
	if f, err := r.Read(); err != nil || f.GetHelloAck() == nil {
		t.Fatalf("hello: %v %v", f, err)
	}
	iocs.mu.Lock()
	iocs.cur = &protocol.IndicatorSet{Version: "2-bbbb", Indicators: []*protocol.Indicator{{Type: "ip", Value: "203.0.113.7", Severity: "high"}}}
	iocs.mu.Unlock()
	iocs.wake <- struct{}{}
	// The first frame after the ack is the pushed set: the version the
	// agent already matched was not sent again.
	f, err := r.Read()
	if err != nil || f.GetIndicatorSet().GetVersion() != "2-bbbb" || len(f.GetIndicatorSet().GetIndicators()) != 1 {
		t.Fatalf("want indicator set 2-bbbb after the push, got %v %v", f, err)
	}
	protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_IndicatorSetResult{IndicatorSetResult: &protocol.IndicatorSetResult{Version: "2-bbbb", Ok: true, Indicators: 1}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		iocs.mu.Lock()
		res := iocs.results
		iocs.mu.Unlock()
		if len(res) == 1 && res[0].GetOk() && res[0].GetVersion() == "2-bbbb" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results recorded: %v", res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
