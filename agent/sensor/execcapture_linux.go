package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cordon-edr/cordon/agent/sensor/bpfmap"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// While records keep coming, the reader pauses between passes over the
// ring, so that a burst of execs costs one pass rather than a wakeup per
// record. A pass costs the agent far more than its records alone (every
// consumer of events wakes, and the Go runtime's monitor polls at its
// shortest interval for a millisecond after), so the pause grows while a
// burst lasts: from captureTick, doubling after each pass, up to
// captureTickMax, but never longer than lets pauseBytes gather at the
// rate the last pause saw. The kernel wakes the reader when a record is
// committed and the reader had caught up with it (or the ring fills up);
// with no records the reader waits for that, so an idle host costs a
// wakeup per idleCheck at most, and a lone exec is read at once.
const (
	captureTick    = 25 * time.Millisecond
	captureTickMax = 200 * time.Millisecond
	// pauseBytes is an eighth of the ring (execargs.c): a burst eight
	// times faster than the last pause's still fits in it.
	pauseBytes = 128 << 10
)

// idleCheck bounds a wait for the kernel's wakeup: should one ever be
// missed, the records in the ring are read this late, not never.
const idleCheck = time.Second

// lostCheckEvery is how often, while records come, the count of records
// the ring had no room for is read (a system call); it is read too
// whenever the reader goes back to waiting.
const lostCheckEvery = time.Second

// execCapture runs the eBPF programs at sched_process_fork, exec and
// exit, whose records carry everything the sensor reports of a process.
type execCapture = bpfmap.Capture

// openExecCapture loads and attaches the eBPF programs. It fails where
// the kernel refuses eBPF (no privilege, no BTF, no raw tracepoints).
func openExecCapture() (*execCapture, error) {
	objs := new(execArgsObjects)
	if err := bpfmap.Load("process", func() error { return loadExecArgsObjects(objs, nil) }); err != nil {
		return nil, err
	}
	return bpfmap.Start("process", objs, objs.Events, objs.Lost,
		bpfmap.RawTracepoint("sched_process_fork", objs.OnFork),
		bpfmap.RawTracepoint("sched_process_exec", objs.OnExec),
		bpfmap.RawTracepoint("sched_process_exit", objs.OnExit))
}

// runCapture emits the events of the eBPF capture on out until ctx is
// done (returning nil) or reading fails (returning the error). It closes
// c.
func (p *Process) runCapture(ctx context.Context, c *execCapture, out chan<- ecs.Event) error {
	defer func() {
		if err := c.Close(); err != nil {
			p.log.Debug("process sensor: closing eBPF capture", logError, err)
		}
	}()
	// Closing the reader ends a wait for records.
	stop := context.AfterFunc(ctx, func() { c.Interrupt() })
	defer stop()

	id, err := p.fs.bootID()
	if err != nil {
		p.log.Warn("process sensor: entity ids will lack the boot id", logError, err)
	}
	p.bootID = id
	if t, ok := bootTimeNow(); ok {
		p.boot = t
	} else if p.boot, err = p.fs.bootTime(); err != nil {
		p.log.Warn("process sensor: process start times will be wrong", logError, err)
	}
	// The programs run already: what starts while procfs is read is in
	// the ring.
	p.seed()
	p.setMode(ModeEBPF, "fork, exec and exit from eBPF at the sched_process_* raw tracepoints, with argv, executable and working directory captured in the kernel")

	var r kernelRecord
	var lostSeen uint64
	var lastCheck, lastResync time.Time
	pause := time.NewTimer(captureTick)
	pause.Stop()
	// pass takes the records in the ring, waiting for the first (up to
	// idleCheck) when wait is set. It returns how many it took and their
	// bytes; stop is set when the sensor is to stop.
	var passBytes int
	var clock wallClock
	wall := clock.wall
	pass := func(wait bool) (n int, stop bool, err error) {
		passBytes = 0
		if wait {
			c.SetDeadline(time.Now().Add(idleCheck))
		} else {
			c.SetDeadline(time.Unix(0, 1))
		}
		for {
			b, err := c.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return n, false, nil
			}
			if err != nil {
				if ctx.Err() != nil {
					return n, true, nil
				}
				return n, true, fmt.Errorf("read the process event ring buffer: %w", err)
			}
			n++
			passBytes += len(b)
			if wait {
				// The first record is in: take the rest without waiting.
				c.SetDeadline(time.Unix(0, 1))
				wait = false
			}
			if err := parseRecord(b, &r); err != nil {
				p.log.Debug("process sensor: bad eBPF record", logError, err)
				continue
			}
			e, ok := p.handleRecord(&r, wall)
			if !ok {
				continue
			}
			select {
			case out <- e:
				p.events.Add(1)
			case <-ctx.Done():
				return n, true, nil
			}
		}
	}
	var tick time.Duration // the last pause, 0 after a wait
	var paused time.Time   // when it began
	for wait := true; ; {
		n, stop, err := pass(wait)
		p.busy.Store(n > 0 && !stop)
		if stop {
			return err
		}
		// Before waiting, so that the count is right while nothing comes.
		if now := time.Now(); n == 0 || now.Sub(lastCheck) >= lostCheckEvery {
			lastCheck = now
			if lost, err := c.Lost(); err != nil {
				p.log.Debug("process sensor: lost record count unreadable", logError, err)
			} else if lost > lostSeen {
				p.lost.Add(lost - lostSeen)
				lostSeen = lost
				if now.Sub(lastResync) >= resyncEvery {
					p.log.Warn("process sensor: the eBPF ring buffer was full, records were dropped; rescanning /proc", logLost, p.lost.Load())
					p.seed()
					lastResync = now
				}
			}
		}
		// Records came: let more gather before the next pass. A pass that
		// finds none goes back to waiting for the program's wakeup.
		wait = n == 0
		if wait {
			tick = 0
			continue
		}
		tick = nextPause(tick, passBytes, time.Since(paused))
		paused = time.Now()
		pause.Reset(tick)
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil
		case <-pause.C:
		}
	}
}

// nextPause is the pause after a pass that took bytes of records, which
// gathered over since (the last pause, last, and the pass before it);
// last is 0 when the pass followed a wait, whose length says nothing of
// the rate.
func nextPause(last time.Duration, bytes int, since time.Duration) time.Duration {
	if last == 0 {
		return captureTick
	}
	next := min(2*last, captureTickMax)
	if bytes > 0 && since > 0 {
		// The time pauseBytes take to gather at the rate just seen.
		fill := time.Duration(float64(since) * pauseBytes / float64(bytes))
		next = min(next, fill)
	}
	return max(next, captureTick)
}
