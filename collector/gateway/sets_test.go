package gateway

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cordon-edr/cordon/collector/wake"
	"github.com/cordon-edr/cordon/protocol"
)

// fakeSets is an in-memory store of one kind of pushed set; R is the
// agent's answer to a set.
type fakeSets[S, R any] struct {
	mu      sync.Mutex
	cur     S
	wake    wake.Waiters
	results []R
}

func (f *fakeSets[S, R]) Current(context.Context) (S, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur, nil
}

func (f *fakeSets[S, R]) Notify(fn func()) (stop func()) { return f.wake.Notify("", fn) }

func (f *fakeSets[S, R]) Result(_ context.Context, _ string, res R) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, res)
	return nil
}

func (f *fakeSets[S, R]) push(set S) {
	f.mu.Lock()
	f.cur = set
	f.mu.Unlock()
	f.wake.Wake("")
}

// setKindCase is how a test drives one kind of pushed set.
type setKindCase[S interface {
	versioned
	proto.Message
}, R any] struct {
	use    func(*Config, *fakeSets[S, R]) // puts the store in the config
	hello  func(h *protocol.Hello, running string)
	set    func(version string) S  // a set of that version
	got    func(*protocol.Frame) S // the set a frame carries
	answer func(version string) *protocol.Frame
	// recorded describes a recorded answer, as want lists them.
	recorded func(R) string
	want     func(version string) string
}

func TestPushedSetsAreDelivered(t *testing.T) {
	t.Run("rules", func(t *testing.T) {
		testSetDelivery(t, setKindCase[*protocol.RuleSet, *protocol.RuleSetResult]{
			use:   func(c *Config, f *fakeSets[*protocol.RuleSet, *protocol.RuleSetResult]) { c.Rules = f },
			hello: func(h *protocol.Hello, running string) { h.RulesVersion = running },
			set: func(v string) *protocol.RuleSet {
				return &protocol.RuleSet{Version: v, Files: []*protocol.RuleFile{{Name: "x.yml", Content: []byte(v)}}}
			},
			got: (*protocol.Frame).GetRuleSet,
			answer: func(v string) *protocol.Frame {
				return &protocol.Frame{Body: &protocol.Frame_RuleSetResult{RuleSetResult: &protocol.RuleSetResult{Version: v, Error: "x.yml:3: bad"}}}
			},
			recorded: func(r *protocol.RuleSetResult) string { return r.GetVersion() + " " + r.GetError() },
			want:     func(v string) string { return v + " x.yml:3: bad" },
		})
	})
	t.Run("indicators", func(t *testing.T) {
		testSetDelivery(t, setKindCase[*protocol.IndicatorSet, *protocol.IndicatorSetResult]{
			use:   func(c *Config, f *fakeSets[*protocol.IndicatorSet, *protocol.IndicatorSetResult]) { c.Indicators = f },
			hello: func(h *protocol.Hello, running string) { h.IocsVersion = running },
			set: func(v string) *protocol.IndicatorSet {
				return &protocol.IndicatorSet{Version: v, Indicators: []*protocol.Indicator{{Type: "ip", Value: "203.0.113.7", Severity: "high"}}}
			},
			got: (*protocol.Frame).GetIndicatorSet,
			answer: func(v string) *protocol.Frame {
				return &protocol.Frame{Body: &protocol.Frame_IndicatorSetResult{IndicatorSetResult: &protocol.IndicatorSetResult{Version: v, Ok: true, Indicators: 1}}}
			},
			recorded: func(r *protocol.IndicatorSetResult) string {
				if !r.GetOk() {
					return r.GetVersion() + " refused"
				}
				return r.GetVersion() + " ok"
			},
			want: func(v string) string { return v + " ok" },
		})
	})
}

// testSetDelivery checks that an agent whose hello reports another
// version gets the current set at once, that one whose hello reports the
// current version does not get it again, that both get every set pushed
// while they are connected, and that their answers are recorded.
func testSetDelivery[S interface {
	versioned
	proto.Message
}, R any](t *testing.T, k setKindCase[S, R]) {
	for _, tc := range []struct {
		name    string
		running string
		atOnce  bool
	}{
		{"hello reports another version", "0-old", true},
		{"hello reports the current version", "1-aaaa", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sets := &fakeSets[S, R]{cur: k.set("1-aaaa")}
			e := start(t, func(c *Config) { k.use(c, sets) })
			cert, _ := e.enroll("good")
			h := hello(protocol.CurrentVersion())
			k.hello(h.GetHello(), tc.running)
			st, r := e.control(cert, h)
			var want []string
			if tc.atOnce {
				if f, err := r.Read(); err != nil || !proto.Equal(k.got(f), k.set("1-aaaa")) {
					t.Fatalf("want set 1-aaaa after the hello, got %v %v", f, err)
				}
				protocol.WriteFrame(st, k.answer("1-aaaa"))
				want = append(want, k.want("1-aaaa"))
			}
			sets.push(k.set("2-bbbb"))
			// The next frame is the pushed set: a version the agent
			// already runs is not sent again.
			if f, err := r.Read(); err != nil || !proto.Equal(k.got(f), k.set("2-bbbb")) {
				t.Fatalf("want set 2-bbbb after the push, got %v %v", f, err)
			}
			protocol.WriteFrame(st, k.answer("2-bbbb"))
			want = append(want, k.want("2-bbbb"))
			deadline := time.Now().Add(10 * time.Second)
			for {
				sets.mu.Lock()
				var got []string
				for _, res := range sets.results {
					got = append(got, k.recorded(res))
				}
				sets.mu.Unlock()
				if slices.Equal(got, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("answers recorded: %q, want %q", got, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
