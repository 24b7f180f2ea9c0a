package watchdog

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fake is a clock and a usage source moved by hand.
type fake struct {
	now time.Time
	u   Usage
}

func (f *fake) advance(d time.Duration, cpuShare float64) {
	f.now = f.now.Add(d)
	f.u.CPU += time.Duration(float64(d) * cpuShare)
}

// recorder is a list of steps that records what they were told.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) step(name string) Step {
	return Step{Name: name, Shed: func(on bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if on {
			r.log = append(r.log, "shed "+name)
		} else {
			r.log = append(r.log, "restore "+name)
		}
	}}
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func newFake(t *testing.T, rec *recorder) (*Watchdog, *fake) {
	t.Helper()
	f := &fake{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), u: Usage{RSS: 20 << 20}}
	w := New(Options{
		CPU: 0.05, RSS: 100 << 20, Window: time.Minute,
		Steps: []Step{rec.step("hash"), rec.step("net")},
		Usage: func() (Usage, error) { return f.u, nil },
		Now:   func() time.Time { return f.now },
	})
	return w, f
}

// run samples every 5 s for d with the agent using cpuShare of a core.
func run(w *Watchdog, f *fake, d time.Duration, cpuShare float64) {
	for end := f.now.Add(d); f.now.Before(end); {
		f.advance(5*time.Second, cpuShare)
		w.Sample()
	}
}

func TestShedsStepByStepAndRestoresInReverse(t *testing.T) {
	rec := &recorder{}
	w, f := newFake(t, rec)
	w.Sample()

	// Start-up costs are not held against the budget before a full
	// window.
	run(w, f, 55*time.Second, 0.5)
	if st := w.Status(); st.Judged || len(rec.got()) != 0 || st.Over != "" {
		t.Fatalf("before a full window: status %+v, steps %v", st, rec.got())
	}
	// Half a core for a minute is over 5 %: the first step goes.
	run(w, f, 10*time.Second, 0.5)
	st := w.Status()
	if !slices.Equal(rec.got(), []string{"shed hash"}) || st.Over != "cpu" || !slices.Equal(st.Shed, []string{"hash"}) {
		t.Fatalf("after a minute at 50 %%: steps %v, status %+v", rec.got(), st)
	}
	if st.CPU < 0.45 || st.CPU > 0.55 {
		t.Errorf("cpu %.3f, want about 0.5", st.CPU)
	}
	// Still over: the next step waits a full window after the first
	// (taken at 60 s).
	run(w, f, 50*time.Second, 0.5)
	if len(rec.got()) != 1 {
		t.Fatalf("second step within a window of the first: %v", rec.got())
	}
	run(w, f, 5*time.Second, 0.5)
	if !slices.Equal(rec.got(), []string{"shed hash", "shed net"}) {
		t.Fatalf("steps %v, want both shed", rec.got())
	}
	// Nothing left to shed: nothing more happens.
	run(w, f, 3*time.Minute, 0.5)
	if len(rec.got()) != 2 || w.Status().Over != "cpu" {
		t.Fatalf("with all shed: steps %v status %+v", rec.got(), w.Status())
	}
	// Just under budget is not enough to restore (hysteresis) ...
	run(w, f, 3*time.Minute, 0.04)
	if len(rec.got()) != 2 || w.Status().Over != "" {
		t.Fatalf("at 4 %%: steps %v status %+v", rec.got(), w.Status())
	}
	// ... well under is, one step per window, the last shed first.
	run(w, f, time.Minute, 0.01)
	if !slices.Equal(rec.got(), []string{"shed hash", "shed net", "restore net"}) {
		t.Fatalf("steps %v, want net restored first", rec.got())
	}
	run(w, f, time.Minute, 0.01)
	if !slices.Equal(rec.got(), []string{"shed hash", "shed net", "restore net", "restore hash"}) || len(w.Status().Shed) != 0 {
		t.Fatalf("steps %v, status %+v", rec.got(), w.Status())
	}
}

func TestMemoryOverBudgetShedsAtOnce(t *testing.T) {
	rec := &recorder{}
	w, f := newFake(t, rec)
	f.u.RSS = 150 << 20
	w.Sample()
	st := w.Status()
	if st.Over != "memory" || !slices.Equal(rec.got(), []string{"shed hash"}) || st.RSS != 150<<20 {
		t.Fatalf("status %+v, steps %v", st, rec.got())
	}
	// Back at 85 MiB: under the budget but not under 80 % of it.
	f.u.RSS = 85 << 20
	run(w, f, 2*time.Minute, 0)
	if len(rec.got()) != 1 {
		t.Fatalf("restored at 85 %% of the memory budget: %v", rec.got())
	}
	f.u.RSS = 30 << 20
	run(w, f, time.Minute, 0)
	if !slices.Equal(rec.got(), []string{"shed hash", "restore hash"}) {
		t.Fatalf("steps %v", rec.got())
	}
}

func TestUsageErrorIsReported(t *testing.T) {
	calls := 0
	w := New(Options{Usage: func() (Usage, error) {
		calls++
		if calls == 1 {
			return Usage{}, context.DeadlineExceeded
		}
		return Usage{RSS: 1}, nil
	}})
	w.Sample()
	if st := w.Status(); st.Err == "" {
		t.Fatalf("status %+v, want the error", st)
	}
	w.Sample()
	if st := w.Status(); st.Err != "" || st.RSS != 1 {
		t.Fatalf("status %+v after a good read", st)
	}
}

// Run restores what was shed when it stops.
func TestRunRestoresOnStop(t *testing.T) {
	rec := &recorder{}
	w := New(Options{RSS: 1, Interval: time.Hour, Steps: []Step{rec.step("hash")}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); len(rec.got()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no step shed with a 1-byte memory budget")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.got(), []string{"shed hash", "restore hash"}) {
		t.Fatalf("steps %v", rec.got())
	}
}

// With the real usage source, burning CPU over a small budget sheds a
// step, and going quiet restores it. The kernel counts CPU time in ticks
// of 10 ms: the window is long enough for half the budget to be a few
// ticks.
func TestRealUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs for seconds")
	}
	u0, err := SelfUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u0.RSS == 0 {
		t.Fatalf("usage %+v: no resident memory", u0)
	}
	rec := &recorder{}
	// 6% of a core: a burning loop is over it even on a crowded machine,
	// and a quiet test binary under the race detector is under half of it.
	w := New(Options{CPU: 0.06, Window: 2 * time.Second, Interval: 100 * time.Millisecond, Steps: []Step{rec.step("hash")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	burn, stopBurn := context.WithCancel(ctx)
	go func() {
		for burn.Err() == nil {
			for i := 0; i < 1e6; i++ {
				_ = i * i
			}
		}
	}()
	eventually(t, "a step shed while burning cpu", func() bool { return len(rec.got()) == 1 })
	if st := w.Status(); st.CPU <= 0.06 || st.Over == "" {
		t.Errorf("status %+v while burning", st)
	}
	stopBurn()
	eventually(t, "the step restored once quiet", func() bool { return len(rec.got()) == 2 })
	cancel()
	<-done
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestTellsWhenQuietAndBusyAgain(t *testing.T) {
	f := &fake{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), u: Usage{RSS: 20 << 20}}
	var told []bool
	w := New(Options{
		OnQuiet: func(quiet bool) { told = append(told, quiet) },
		Usage:   func() (Usage, error) { return f.u, nil },
		Now:     func() time.Time { return f.now },
	})
	w.Sample()
	for _, tc := range []struct {
		cpuShare float64
		want     []bool
	}{
		{0.002, []bool{true}},                     // quiet
		{0.003, []bool{true}},                     // still quiet: told once
		{0.30, []bool{true, false}},               // a storm
		{0.05, []bool{true, false}},               // still busy
		{0.009, []bool{true, false, true}},        // under Quiet
		{0.011, []bool{true, false, true, false}}, // over it
		{0.0, []bool{true, false, true, false, true}},
	} {
		f.advance(DefaultInterval, tc.cpuShare)
		w.Sample()
		if !slices.Equal(told, tc.want) {
			t.Fatalf("after an interval at %.1f %% of a core: told %v, want %v", 100*tc.cpuShare, told, tc.want)
		}
	}
	// Stopping leaves the agent as it found it: busy.
	w.restoreAll()
	if want := []bool{true, false, true, false, true, false}; !slices.Equal(told, want) {
		t.Errorf("after stopping: told %v, want %v", told, want)
	}
}
