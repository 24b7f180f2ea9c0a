package detectors

import (
	"fmt"
	"time"
)

// maxNoiseKeys bounds the (rule, process tree) pairs the noise control
// remembers; past it the oldest window is closed early.
const maxNoiseKeys = 10000

// noise folds repeats of a rule on one process tree within a window.
type noise struct {
	window  time.Duration
	open    map[string]*noiseWindow
	pruneAt time.Time
}

type noiseWindow struct {
	until   time.Time
	repeats int
	last    Finding // the latest folded finding
}

// SetNoiseWindow makes the Engine report a rule at most once per window
// for one process tree (the processes that share a parent). Repeats
// within the window are counted and reported as one finding, with the
// count in its summary and the latest repeat as evidence, when the window
// closes: at the first Process call after it, or at Flush. Zero turns
// noise control off. Call it before the first Process.
func (e *Engine) SetNoiseWindow(d time.Duration) {
	if d <= 0 {
		e.noise = nil
		return
	}
	e.noise = &noise{window: d, open: map[string]*noiseWindow{}}
}

// Flush returns the findings that summarize repeats in windows still
// open, closing them; call it before stopping.
func (e *Engine) Flush() []Finding {
	if e.noise == nil {
		return nil
	}
	return e.noise.close(e.now(), true)
}

// treeKey names the process tree of a finding's first evidence event: its
// parent, else itself.
func treeKey(f *Finding) string {
	if len(f.Evidence) == 0 || f.Evidence[0].Process == nil {
		return ""
	}
	p := f.Evidence[0].Process
	if p.Parent != nil {
		if p.Parent.EntityID != "" {
			return p.Parent.EntityID
		}
		return fmt.Sprintf("pid:%d", p.Parent.PID)
	}
	if p.EntityID != "" {
		return p.EntityID
	}
	return fmt.Sprintf("pid:%d", p.PID)
}

// filter passes the first finding of each (rule, tree) window, folds the
// rest, and appends the summaries of windows that closed by now.
func (n *noise) filter(fs []Finding, now time.Time) []Finding {
	var out []Finding
	for _, f := range fs {
		key := f.Rule.ID + "\x00" + treeKey(&f)
		if w, ok := n.open[key]; ok {
			if now.Before(w.until) {
				w.repeats++
				w.last = f
				continue
			}
			delete(n.open, key)
			if s, ok := w.summary(n.window, now); ok {
				out = append(out, s)
			}
		}
		if len(n.open) >= maxNoiseKeys {
			out = append(out, n.closeOldest()...)
		}
		n.open[key] = &noiseWindow{until: now.Add(n.window)}
		out = append(out, f)
	}
	if !now.Before(n.pruneAt) {
		out = append(out, n.close(now, false)...)
		n.pruneAt = now.Add(time.Second)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// close ends the windows that are over by now (all of them when all is
// set) and returns a summary finding for each that folded repeats.
func (n *noise) close(now time.Time, all bool) []Finding {
	var out []Finding
	for key, w := range n.open {
		if !all && now.Before(w.until) {
			continue
		}
		delete(n.open, key)
		if s, ok := w.summary(n.window, now); ok {
			out = append(out, s)
		}
	}
	return out
}

func (n *noise) closeOldest() []Finding {
	var oldest string
	var at time.Time
	for key, w := range n.open {
		if oldest == "" || w.until.Before(at) {
			oldest, at = key, w.until
		}
	}
	w := n.open[oldest]
	delete(n.open, oldest)
	if s, ok := w.summary(0, at); ok {
		return []Finding{s}
	}
	return nil
}

func (w *noiseWindow) summary(window time.Duration, now time.Time) (Finding, bool) {
	if w.repeats == 0 {
		return Finding{}, false
	}
	f := w.last
	times := "times"
	if w.repeats == 1 {
		times = "time"
	}
	f.Summary = fmt.Sprintf("%s Repeated %d more %s on this process tree", f.Summary, w.repeats, times)
	if window > 0 {
		f.Summary += " within " + window.String()
	}
	f.Summary += "."
	f.DetectedAt = now
	return f, true
}
