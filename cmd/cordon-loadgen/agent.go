package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/agent/uplink"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// simAgent is one simulated agent: an in-memory spool of findings and a
// connection loop that behaves like agent/uplink (one batch in flight,
// removed only on its acknowledgement, resent after a reconnect).
type simAgent struct {
	f    *fleet
	idx  int
	id   string
	host *protocol.HostFacts
	tls  *tls.Config

	mu      sync.Mutex
	queue   []*protocol.Finding
	made    int
	notify  chan struct{}
	samples map[string]bool
	seen    map[string]bool // command ids answered, executed once
	helloed bool            // owned by run's goroutine
	history []ecs.Event     // synthetic, built at the first hunt
}

var severities = []string{"low", "medium", "high", "critical"}

// generate adds findings at the configured rate until generation ends.
func (a *simAgent) generate(ctx context.Context) {
	cfg := a.f.cfg
	if cfg.Rate <= 0 {
		return
	}
	every := time.Duration(float64(time.Second) / cfg.Rate)
	tick := max(every, 10*time.Millisecond)
	// Start at a random phase so the fleet does not send in step.
	next := time.Now().Add(rand.N(tick))
	owed := 0.0
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.f.generateDone:
			return
		case now := <-t.C:
			owed += float64(now.Sub(last)) / float64(every)
			last = now
			n := int(owed)
			owed -= float64(n)
			if n > 0 && !a.add(n) {
				return
			}
			t.Reset(tick)
		}
	}
}

// add queues n new findings; false once the per-agent count is reached.
func (a *simAgent) add(n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Checked under the lock finished() reads the queue under: no finding
	// is queued after the sender has seen generation end with an empty
	// queue and left.
	select {
	case <-a.f.generateDone:
		return false
	default:
	}
	if lim := a.f.cfg.Findings; lim > 0 {
		n = min(n, lim-a.made)
	}
	now := time.Now().UnixNano()
	for range n {
		id, err := uuid.NewV7()
		if err != nil {
			a.f.fail("finding_id", err)
			return false
		}
		sev := severities[rand.N(len(severities))]
		a.queue = append(a.queue, &protocol.Finding{
			Id:               id.String(),
			Rule:             &protocol.Rule{Id: "loadgen.synthetic", Name: "Synthetic load finding", Version: "1"},
			Severity:         sev,
			Tactics:          []string{"TA0002"},
			Techniques:       []string{"T1059.004"},
			Summary:          "synthetic finding from cordon-loadgen",
			EvidenceJson:     []byte(`[{"event":{"category":["process"],"type":["start"]},"process":{"pid":4242,"executable":"/bin/sh"}}]`),
			ObservedUnixNano: now,
			DetectedUnixNano: now,
		})
		a.made++
		a.f.generated.Add(1)
	}
	select {
	case a.notify <- struct{}{}:
	default:
	}
	return a.f.cfg.Findings == 0 || a.made < a.f.cfg.Findings
}

// peek returns the oldest queued findings, up to the batch size.
func (a *simAgent) peek() []*protocol.Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.queue[:min(len(a.queue), a.f.cfg.Batch)]
}

func (a *simAgent) ackHead(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = a.queue[n:]
}

// finished reports whether the agent has nothing more to do.
func (a *simAgent) finished() bool {
	select {
	case <-a.f.generateDone:
	default:
		return false
	}
	select {
	case <-a.f.commandsDone:
	default:
		return false
	}
	if time.Now().Before(a.f.holdUntil) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue) == 0
}

var errFinished = errors.New("finished")

// run generates and sends until everything is acknowledged or ctx ends,
// reconnecting with jittered backoff as the agent does.
func (a *simAgent) run(ctx context.Context) {
	a.notify = make(chan struct{}, 1)
	a.seen = map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() { defer wg.Done(); a.generate(genCtx) }()

	if r := a.f.cfg.Ramp; r > 0 && a.f.cfg.Agents > 1 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(r * time.Duration(a.idx) / time.Duration(a.f.cfg.Agents)):
		}
	}
	// The agent's schedule (agent/uplink).
	sched := uplink.Schedule{Min: 500 * time.Millisecond, Max: 30 * time.Second, RestartWindow: a.f.cfg.RestartWindow}
	for {
		helloed, err := a.session(ctx)
		if errors.Is(err, errFinished) || ctx.Err() != nil {
			return
		}
		a.f.fail("session", fmt.Errorf("agent %s: %w", a.id, err))
		a.f.reconnects.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sched.Next(helloed, err)):
		}
	}
}

func (a *simAgent) session(ctx context.Context) (helloed bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := quic.DialAddr(dctx, a.f.cfg.Collector, a.tls.Clone(), uplink.QUICConfig(0, 0))
	cancel()
	if err != nil {
		return false, fmt.Errorf("dialing: %w", err)
	}
	defer conn.CloseWithError(protocol.CodeShutdown, "loadgen closing")
	ctrl, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return false, fmt.Errorf("opening control stream: %w", err)
	}
	w := protocol.NewFrameWriter(ctrl, 0)
	if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Hello{Hello: &protocol.Hello{
		Version: protocol.CurrentVersion(), Host: a.host, SensorModes: []string{"loadgen"},
	}}}); err != nil {
		return false, fmt.Errorf("sending hello: %w", err)
	}
	r := protocol.NewFrameReader(ctrl, 0)
	ctrl.SetReadDeadline(time.Now().Add(15 * time.Second))
	f, err := r.Read()
	ctrl.SetReadDeadline(time.Time{})
	if err != nil {
		return false, fmt.Errorf("reading hello acknowledgement: %w", err)
	}
	if f.GetHelloAck() == nil {
		return false, fmt.Errorf("collector answered hello with %v", f)
	}
	if n := a.f.connected.Add(1); n > a.f.peak.Load() {
		// Racy max, good enough for a peak gauge: retry until stored.
		for p := a.f.peak.Load(); n > p && !a.f.peak.CompareAndSwap(p, n); p = a.f.peak.Load() {
		}
	}
	defer a.f.connected.Add(-1)
	if !a.helloed {
		a.helloed = true
		a.f.ever.Add(1)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.control(gctx, r, w) })
	g.Go(func() error { return a.heartbeat(gctx, w) })
	g.Go(func() error { return a.send(gctx, conn) })
	g.Go(func() error {
		<-gctx.Done()
		ctrl.CancelRead(protocol.CodeShutdown)
		return nil
	})
	err = g.Wait()
	if errors.Is(err, errFinished) || ctx.Err() != nil {
		// A clean stop, as the agent's: no health finding for the silence.
		uplink.SayGoodbye(conn, ctrl, w, "loadgen finished")
		return true, err
	}
	return true, uplink.WithCloseCause(conn, err)
}

// control answers commands and hunts: each command id is executed once;
// a redelivered one gets its result again, as the agent's executor does.
func (a *simAgent) control(ctx context.Context, r *protocol.FrameReader, w *protocol.FrameWriter) error {
	for {
		f, err := r.Read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading control stream: %w", err)
		}
		if hr := f.GetHuntRequest(); hr != nil {
			// Answered in turn: a synthetic history takes microseconds.
			res := a.answerHunt(ctx, hr)
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_HuntResult{HuntResult: res}}); err != nil {
				return fmt.Errorf("sending hunt result: %w", err)
			}
			a.f.huntsAnswered.Add(1)
			continue
		}
		c := f.GetCommand()
		if c == nil {
			if e := f.GetError(); e != nil {
				return fmt.Errorf("collector closed the control stream: %s: %s", e.GetCode(), e.GetMessage())
			}
			continue
		}
		a.mu.Lock()
		first := !a.seen[c.GetId()]
		a.seen[c.GetId()] = true
		a.mu.Unlock()
		if first {
			a.f.commandsAnswered.Add(1)
		}
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_CommandResult{CommandResult: &protocol.CommandResult{
			Id: c.GetId(), Ok: true, Result: "simulated " + c.GetAction(), FinishedUnixNano: time.Now().UnixNano(),
		}}}); err != nil {
			return fmt.Errorf("sending command result: %w", err)
		}
	}
}

func (a *simAgent) heartbeat(ctx context.Context, w *protocol.FrameWriter) error {
	// The first heartbeat at a random point of the interval spreads the
	// fleet's heartbeats evenly.
	t := time.NewTimer(rand.N(a.f.cfg.Heartbeat))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		a.mu.Lock()
		pending := len(a.queue)
		a.mu.Unlock()
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Heartbeat{Heartbeat: &protocol.Heartbeat{
			SentUnixNano: time.Now().UnixNano(), SpoolPending: uint64(pending),
		}}}); err != nil {
			return fmt.Errorf("sending heartbeat: %w", err)
		}
		a.f.heartbeats.Add(1)
		t.Reset(a.f.cfg.Heartbeat)
	}
}

// send drains the queue one batch at a time; it returns errFinished when
// the agent is done.
func (a *simAgent) send(ctx context.Context, conn *quic.Conn) error {
	var (
		st  *quic.Stream
		r   *protocol.FrameReader
		w   *protocol.FrameWriter
		seq uint64
	)
	defer func() {
		if st != nil {
			st.CancelRead(protocol.CodeShutdown)
			st.Close()
		}
	}()
	for {
		batch := a.peek()
		if len(batch) == 0 {
			if a.finished() {
				return errFinished
			}
			genDone := a.f.generateDone
			select {
			case <-genDone:
				genDone = nil // already closed: do not spin on it while holding
			default:
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-a.notify:
			case <-genDone:
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		if st == nil {
			var err error
			if st, err = conn.OpenStreamSync(ctx); err != nil {
				return fmt.Errorf("opening findings stream: %w", err)
			}
			r = protocol.NewFrameReader(st, 0)
			w = protocol.NewFrameWriter(st, 0)
		}
		seq++
		sent := time.Now()
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: seq, Findings: batch}}}); err != nil {
			return fmt.Errorf("sending batch %d: %w", seq, err)
		}
		a.sample(batch[0], sent)
		st.SetReadDeadline(time.Now().Add(30 * time.Second))
		f, err := r.Read()
		st.SetReadDeadline(time.Time{})
		if err != nil {
			return fmt.Errorf("waiting for acknowledgement of batch %d: %w", seq, err)
		}
		ack := f.GetBatchAck()
		if ack == nil || ack.GetSeq() != seq {
			return fmt.Errorf("collector answered batch %d with %v", seq, f)
		}
		a.f.ackLat.add(time.Since(sent))
		ids := make([]string, len(batch))
		for i, fd := range batch {
			ids[i] = fd.GetId()
		}
		a.f.recordAcked(ids)
		a.ackHead(len(batch))
		a.f.acked.Add(uint64(len(batch)))
		a.f.stored.Add(uint64(ack.GetStored()))
		a.f.dups.Add(uint64(ack.GetDuplicates()))
		a.f.batches.Add(1)
		a.f.lastAck.Store(time.Now().UnixNano())
	}
}

// sample offers a finding for the event → incident measurement, once
// per finding id.
func (a *simAgent) sample(fd *protocol.Finding, sent time.Time) {
	if a.f.sampleLeft.Load() <= 0 {
		return
	}
	a.mu.Lock()
	if a.samples == nil {
		a.samples = map[string]bool{}
	}
	done := a.samples[fd.GetId()]
	a.samples[fd.GetId()] = true
	a.mu.Unlock()
	if done || a.f.sampleLeft.Add(-1) < 0 {
		return
	}
	select {
	case a.f.samples <- sample{id: fd.GetId(), sent: sent}:
	default:
	}
}
