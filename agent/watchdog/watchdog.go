// Package watchdog keeps cordon-agent within a CPU and memory budget. It
// samples the agent's own usage (its CPU time and resident memory), and
// when the agent goes over budget it sheds work one step at a time, the
// least valuable first, waiting a full window between steps so that each
// step's effect shows before the next; when usage falls well under budget
// again, it restores the steps in reverse order. It also tells the agent
// when it turns quiet and when it is busy again, for work worth doing
// only while it is quiet.
package watchdog

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults. The agent's cost follows the host's activity (every process,
// file change and connection is an event); 5 % of one core averaged over
// a minute lets bursts through and still catches a sustained cost the
// agent should not impose. 200 MiB is five times what the agent measured
// on a busy build host, room for the spool, the caches and the
// detectors' state under load. See docs/sensors.md.
const (
	DefaultCPU      = 0.05
	DefaultRSS      = 200 << 20
	DefaultWindow   = time.Minute
	DefaultInterval = 5 * time.Second
	// Quiet is the share of one core under which, over one interval,
	// the agent counts as quiet.
	Quiet = 0.01
)

// Usage is the agent's resource use at one moment.
type Usage struct {
	// CPU is the process's user and system time since it started.
	CPU time.Duration
	// RSS is the process's resident memory in bytes.
	RSS uint64
}

// Step is one way to shed work. Shed(true) turns the work down, Shed(false)
// restores it; both are called from the watchdog's goroutine.
type Step struct {
	// Name says what the step does, for status and logs: "file hashing
	// off".
	Name string
	Shed func(on bool)
}

// Options configures a Watchdog. Zero values take the defaults.
type Options struct {
	// CPU is the budget as a share of one core averaged over Window
	// (0.05 is 5 %).
	CPU float64
	// RSS is the resident memory budget in bytes.
	RSS uint64
	// Window is the averaging period of CPU, and the least time between
	// two steps.
	Window time.Duration
	// Interval is the sampling period of Run.
	Interval time.Duration
	// Steps are shed in order, the least valuable work first.
	Steps []Step
	// OnQuiet, when set, is told each time the agent turns quiet (true:
	// under Quiet over one interval) or busy again (false), from the
	// watchdog's goroutine; the agent starts busy.
	OnQuiet func(quiet bool)
	// Usage reads the process's usage; SelfUsage by default.
	Usage func() (Usage, error)
	// Now is the clock; time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger
}

// Status is what the watchdog last saw and did.
type Status struct {
	// CPU is the share of one core used over the last window, or over
	// what there is of it during the first window.
	CPU float64
	// Judged is false until a full window has been sampled: CPU is not
	// held against the budget before, as starting up costs more.
	Judged bool
	RSS    uint64
	// BudgetCPU and BudgetRSS are the budget.
	BudgetCPU float64
	BudgetRSS uint64
	Window    time.Duration
	// Over is set while usage is over budget, and says which.
	Over string
	// Shed lists the steps in force, in the order they were taken.
	Shed []string
	// Changed is when a step was last taken or restored.
	Changed time.Time
	// Err is the last failure to read usage, "" when reading works.
	Err string
}

type sample struct {
	at  time.Time
	cpu time.Duration
}

// Watchdog watches the agent's usage. Create it with New.
type Watchdog struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	samples []sample // oldest first, covering at least the window
	level   int      // steps in force
	changed time.Time
	status  Status
	// warned is set once the log said all steps are shed and usage is
	// still over budget.
	warned bool
	// quiet is what OnQuiet was last told.
	quiet bool
}

// New returns a watchdog configured by opts.
func New(opts Options) *Watchdog {
	if opts.CPU <= 0 {
		opts.CPU = DefaultCPU
	}
	if opts.RSS == 0 {
		opts.RSS = DefaultRSS
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Usage == nil {
		opts.Usage = SelfUsage
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watchdog{opts: opts, log: log}
	w.status = Status{BudgetCPU: opts.CPU, BudgetRSS: opts.RSS, Window: opts.Window}
	return w
}

// Run samples usage every interval until ctx is done, then restores what
// it shed and returns nil.
func (w *Watchdog) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	w.Sample()
	for {
		select {
		case <-ctx.Done():
			w.restoreAll()
			return nil
		case <-t.C:
			w.Sample()
		}
	}
}

// Status returns what the watchdog last saw and did.
func (w *Watchdog) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.status
	st.Shed = append([]string(nil), st.Shed...)
	return st
}

// Sample reads usage once and sheds or restores a step if it is time.
func (w *Watchdog) Sample() {
	now := w.opts.Now()
	u, err := w.opts.Usage()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.status.Err == "" {
			w.log.Warn("watchdog: cannot read the agent's own usage", "error", err)
		}
		w.status.Err = err.Error()
		return
	}
	w.status.Err = ""
	w.observe(now, u)
}

// observe records a sample and acts on it; w.mu is held.
func (w *Watchdog) observe(now time.Time, u Usage) {
	if n := len(w.samples); n > 0 && w.opts.OnQuiet != nil {
		last := w.samples[n-1]
		if d := now.Sub(last.at); d > 0 {
			if quiet := float64(u.CPU-last.cpu)/float64(d) < Quiet; quiet != w.quiet {
				w.quiet = quiet
				w.opts.OnQuiet(quiet)
			}
		}
	}
	w.samples = append(w.samples, sample{at: now, cpu: u.CPU})
	// Keep the newest sample at least a window old as the base.
	start := now.Add(-w.opts.Window)
	drop := 0
	for drop+1 < len(w.samples) && !w.samples[drop+1].at.After(start) {
		drop++
	}
	w.samples = w.samples[drop:]
	base := w.samples[0]
	span := now.Sub(base.at)
	st := &w.status
	st.RSS = u.RSS
	st.Judged = span >= w.opts.Window
	if span > 0 {
		st.CPU = float64(u.CPU-base.cpu) / float64(span)
	}

	cpuOver := st.Judged && st.CPU > w.opts.CPU
	rssOver := u.RSS > w.opts.RSS
	switch {
	case cpuOver && rssOver:
		st.Over = "cpu and memory"
	case cpuOver:
		st.Over = "cpu"
	case rssOver:
		st.Over = "memory"
	default:
		st.Over = ""
	}
	if rssOver && (w.changed.IsZero() || now.Sub(w.changed) >= w.opts.Window) {
		// Memory the Go heap no longer uses goes back to the system
		// first; it costs a collection, at most once a window.
		debug.FreeOSMemory()
	}
	settled := w.changed.IsZero() || now.Sub(w.changed) >= w.opts.Window
	under := st.Judged && st.CPU < w.opts.CPU/2 && u.RSS < w.opts.RSS/10*8
	switch {
	case st.Over != "" && settled && w.level < len(w.opts.Steps):
		step := w.opts.Steps[w.level]
		w.level++
		w.changed = now
		st.Changed = now
		st.Shed = append(st.Shed, step.Name)
		w.log.Warn("watchdog: the agent is over its resource budget, shedding work",
			"over", st.Over, "step", step.Name, "cpu_percent", pct(st.CPU), "budget_cpu_percent", pct(w.opts.CPU),
			"rss_mib", mib(u.RSS), "budget_rss_mib", mib(w.opts.RSS))
		step.Shed(true)
	case st.Over != "" && w.level == len(w.opts.Steps) && !w.warned:
		w.warned = true
		w.log.Warn("watchdog: the agent is over its resource budget with nothing left to shed",
			"over", st.Over, "cpu_percent", pct(st.CPU), "budget_cpu_percent", pct(w.opts.CPU),
			"rss_mib", mib(u.RSS), "budget_rss_mib", mib(w.opts.RSS))
	case under && settled && w.level > 0:
		w.level--
		step := w.opts.Steps[w.level]
		w.changed = now
		st.Changed = now
		st.Shed = st.Shed[:w.level]
		w.warned = false
		w.log.Info("watchdog: the agent is back under its resource budget, restoring work",
			"step", step.Name, "cpu_percent", pct(st.CPU), "rss_mib", mib(u.RSS))
		step.Shed(false)
	}
}

// restoreAll restores every step in force, and tells OnQuiet the agent
// is busy again if it was told it was quiet.
func (w *Watchdog) restoreAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.level > 0 {
		w.level--
		w.opts.Steps[w.level].Shed(false)
	}
	w.status.Shed = nil
	if w.quiet {
		w.quiet = false
		w.opts.OnQuiet(false)
	}
}

func pct(share float64) string { return fmt.Sprintf("%.2f", 100*share) }

func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
