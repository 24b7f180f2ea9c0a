package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/agent/localapi"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/ioc"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// iocsFile is where the state folder keeps the pushed indicator set, so
// that a restart matches it again before the collector is reachable.
const iocsFile = "iocs.json"

// Bounds of a retro-hunt: the time it may take and the findings it may
// raise. It reads the whole history, which is itself bounded by age.
const (
	retroBudget      = 2 * time.Minute
	retroMaxFindings = 1000
	// retroSettle lets the events queued for the history before the set
	// changed reach it (the history writes every 250 ms).
	retroSettle = time.Second
	// retroQueryBytes keeps each retro query under the query language's
	// 8,192-byte limit.
	retroQueryBytes = 7000
)

// storedIocs is the content of a pushed indicator set as the state
// folder keeps it.
type storedIocs struct {
	Indicators []ioc.Indicator `json:"indicators"`
}

var iocKind = pushKind[*protocol.IndicatorSet, storedIocs, *ioc.Matcher]{
	name:     "indicator set",
	file:     iocsFile,
	what:     "indicators",
	fallback: "matching none",
	content: func(set *protocol.IndicatorSet) storedIocs {
		inds := make([]ioc.Indicator, len(set.GetIndicators()))
		for i, w := range set.GetIndicators() {
			inds[i] = ioc.Indicator{Type: w.GetType(), Value: w.GetValue(), Severity: w.GetSeverity(), Note: w.GetNote()}
		}
		return storedIocs{Indicators: inds}
	},
	build: func(version string, st storedIocs) (*ioc.Matcher, error) {
		return ioc.NewMatcher(version, st.Indicators)
	},
	batch: func(m *ioc.Matcher) detectors.Batch { return m },
	size:  (*ioc.Matcher).Len,
}

// indicatorSets knows the indicator set matched (never nil: an empty
// set before any push), the last one refused and the retro-hunts waiting
// or running.
type indicatorSets struct {
	*pushedSets[*protocol.IndicatorSet, storedIocs, *ioc.Matcher]

	retroMu sync.Mutex // guards the fields below
	retro   *localapi.Retro
	pending []retroJob
	wake    chan struct{}
}

// retroJob is a retro-hunt for the indicators a set added.
type retroJob struct {
	m  *ioc.Matcher // the added indicators only
	at time.Time    // when the set was swapped in: later events were matched live
}

func newIndicatorSets(stateDir string, log *slog.Logger) *indicatorSets {
	empty, _ := ioc.NewMatcher("", nil)
	s := &indicatorSets{pushedSets: newPushedSets(iocKind, stateDir, empty, log), wake: make(chan struct{}, 1)}
	s.swapped = s.queueRetro
	return s
}

// queueRetro queues a retro-hunt for the indicators next added to prev.
func (s *indicatorSets) queueRetro(prev, next *ioc.Matcher, st storedIocs) {
	added := added(prev, st.Indicators)
	if len(added) == 0 {
		return
	}
	rm, err := ioc.NewMatcher(next.Version(), added)
	if err != nil { // cannot happen: the indicators come from next
		s.log.Error("building the retro-hunt", "version", next.Version(), "err", err)
		return
	}
	s.retroMu.Lock()
	defer s.retroMu.Unlock()
	s.pending = append(s.pending, retroJob{m: rm, at: time.Now()})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *indicatorSets) take() []retroJob {
	s.retroMu.Lock()
	defer s.retroMu.Unlock()
	jobs := s.pending
	s.pending = nil
	return jobs
}

func (s *indicatorSets) setRetro(r localapi.Retro) {
	s.retroMu.Lock()
	s.retro = &r
	s.retroMu.Unlock()
}

// state returns the version matched, its size, the last refusal and the
// last retro-hunt.
func (s *indicatorSets) state() (version string, n int, refused string, retro *localapi.Retro) {
	version, n, refused = s.pushedSets.state()
	s.retroMu.Lock()
	defer s.retroMu.Unlock()
	if s.retro != nil {
		r := *s.retro
		retro = &r
	}
	return version, n, refused, retro
}

// added returns the indicators of next that prev does not have.
func added(prev *ioc.Matcher, next []ioc.Indicator) []ioc.Indicator {
	var out []ioc.Indicator
	for _, i := range next {
		if !prev.Has(i) {
			out = append(out, i)
		}
	}
	return out
}

// applyIndicators matches a set pushed by the collector, whole or not at
// all, then has a retro-hunt look for the indicators it added in the
// history. On any error the set matched before stays.
func (a *Agent) applyIndicators(ctx context.Context, set *protocol.IndicatorSet) *protocol.IndicatorSetResult {
	n, err := applySet(ctx, a, a.iocs.pushedSets, a.iocBatch, set)
	if err != nil {
		return &protocol.IndicatorSetResult{Version: set.GetVersion(), Error: err.Error()}
	}
	return &protocol.IndicatorSetResult{Version: set.GetVersion(), Ok: true, Indicators: uint32(n)}
}

// runRetros runs the queued retro-hunts one after the other.
func (a *Agent) runRetros(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.iocs.wake:
		}
		for _, job := range a.iocs.take() {
			a.retroHunt(ctx, job)
		}
	}
}

// retroHunt reads the history for the events before job.at that match
// the indicators job adds, and reports each as a finding marked retro,
// within retroBudget and retroMaxFindings.
func (a *Agent) retroHunt(ctx context.Context, job retroJob) {
	st := localapi.Retro{Version: job.m.Version(), Indicators: job.m.Len(), Started: time.Now().UTC()}
	if a.hist == nil {
		st.Finished, st.Error = time.Now().UTC(), "the history is off"
		a.iocs.setRetro(st)
		return
	}
	a.iocs.setRetro(st)
	select {
	case <-ctx.Done():
		return
	case <-time.After(retroSettle):
	}
	ctx, cancel := context.WithTimeout(ctx, retroBudget)
	defer cancel()
	seen := map[string]bool{}
	for _, q := range retroQueries(job.m.Indicators()) {
		parsed, err := query.Parse(q)
		if err != nil {
			st.Error = fmt.Sprintf("building the retro-hunt query: %v", err)
			break
		}
		stats, err := a.hist.Search(ctx, parsed, time.Time{}, func(ev ecs.Event) bool {
			if !ev.Timestamp.IsZero() && !ev.Timestamp.Before(job.at) {
				return true // matched live
			}
			hits := job.m.Match(&ev)
			if len(hits) == 0 {
				return true
			}
			key := eventKey(&ev)
			if seen[key] {
				return true
			}
			seen[key] = true
			f := job.m.Finding(&ev, hits, true)
			f.Rule = ioc.Rule
			f.Evidence = []ecs.Event{ev}
			f.ObservedAt, f.DetectedAt = ev.Timestamp, time.Now()
			a.report(f)
			st.Findings++
			return st.Findings < retroMaxFindings
		})
		st.Scanned += stats.Scanned
		if errors.Is(err, context.DeadlineExceeded) {
			st.Stopped = fmt.Sprintf("time budget of %s spent", retroBudget)
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				st.Error = err.Error()
			}
			break
		}
		if st.Findings >= retroMaxFindings {
			st.Stopped = fmt.Sprintf("%d findings raised", retroMaxFindings)
			break
		}
	}
	st.Finished = time.Now().UTC()
	a.iocs.setRetro(st)
	a.log.Info("retro-hunt done", "version", st.Version, "indicators", st.Indicators, "scanned", st.Scanned, "findings", st.Findings, "stopped", st.Stopped, "err", st.Error)
}

// eventKey says which matched events a retro-hunt reports once: a file at
// its path with its content, and any other event at its time with its
// process and addresses.
func eventKey(ev *ecs.Event) string {
	var b strings.Builder
	if ev.File != nil && (ev.Process == nil || ev.Event.Category == ecs.CategoryFile) {
		// A file event: one write often reports both a creation and a
		// change of the same content, each naming the writer when
		// fanotify runs. The file at its path with its hash is what the
		// responder needs to hear about, once.
		b.WriteString("f" + ev.File.Path)
		if h := ev.File.Hash; h != nil {
			b.WriteString("|" + h.SHA256)
		}
		return b.String()
	}
	b.WriteString(strconv.FormatInt(ev.Timestamp.UnixNano(), 10))
	if ev.File != nil {
		b.WriteString("|f" + ev.File.Path)
	}
	if ev.Process != nil {
		b.WriteString("|p" + strconv.Itoa(ev.Process.PID))
	}
	if ev.Destination != nil {
		b.WriteString("|d" + ev.Destination.IP + ":" + strconv.Itoa(ev.Destination.Port))
	}
	if ev.Source != nil {
		b.WriteString("|s" + ev.Source.IP + ":" + strconv.Itoa(ev.Source.Port))
	}
	return b.String()
}

// retroQueries returns the history queries that find the events inds may
// match: lookups through the history's indexes for hashes, paths and
// addresses, and one scan for CIDRs and file names, each query within
// the query language's size limit.
func retroQueries(inds []ioc.Indicator) []string {
	byType := map[string][]string{}
	for _, i := range inds {
		v := i.Value
		if i.Type == ioc.TypeSHA256 || i.Type == ioc.TypePath || i.Type == ioc.TypeFilename {
			v = strconv.Quote(v)
		}
		byType[i.Type] = append(byType[i.Type], v)
	}
	var out []string
	lists := func(field string, vals []string) {
		for len(vals) > 0 {
			n, size := 0, len(field)+8
			for n < len(vals) && n < query.MaxListValues && size+len(vals[n])+2 < retroQueryBytes {
				size += len(vals[n]) + 2
				n++
			}
			if n == 0 { // one value too long for a query: cannot be looked up
				vals = vals[1:]
				continue
			}
			out = append(out, fmt.Sprintf("%s in [%s]", field, strings.Join(vals[:n], ", ")))
			vals = vals[n:]
		}
	}
	lists("file.hash.sha256", byType[ioc.TypeSHA256])
	lists("file.path", byType[ioc.TypePath])
	lists("process.executable", byType[ioc.TypePath])
	lists("destination.ip", byType[ioc.TypeIP])
	lists("source.ip", byType[ioc.TypeIP])
	// CIDRs and names are not indexed: each list is a scan of the
	// history, so they go in as few queries as the size limit allows.
	indexed := len(out)
	lists("destination.ip", byType[ioc.TypeCIDR])
	lists("source.ip", byType[ioc.TypeCIDR])
	lists("file.name", byType[ioc.TypeFilename])
	lists("process.name", byType[ioc.TypeFilename])
	scans := out[indexed:]
	out = out[:indexed:indexed]
	for len(scans) > 0 {
		q := scans[0]
		scans = scans[1:]
		for len(scans) > 0 && len(q)+len(scans[0])+4 < retroQueryBytes {
			q += " or " + scans[0]
			scans = scans[1:]
		}
		out = append(out, q)
	}
	return out
}
