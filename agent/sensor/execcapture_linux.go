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

// captureTick is how long records may wait in the ring before the reader
// takes them. The eBPF program wakes the reader only when the ring holds
// a batch worth reading; otherwise the reader reads on this timer, so
// that a burst of execs costs one wakeup per batch rather than one per
// record, and an idle host a few wakeups a second.
const captureTick = 25 * time.Millisecond

// lostCheckEvery is how often the count of records the ring had no room
// for is read (a system call).
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
	for {
		c.SetDeadline(time.Now().Add(captureTick))
		for {
			b, err := c.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("read the process event ring buffer: %w", err)
			}
			if err := parseRecord(b, &r); err != nil {
				p.log.Debug("process sensor: bad eBPF record", logError, err)
				continue
			}
			e, ok := p.handleRecord(&r, monoToWall)
			if !ok {
				continue
			}
			select {
			case out <- e:
				p.events.Add(1)
			case <-ctx.Done():
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if now := time.Now(); now.Sub(lastCheck) >= lostCheckEvery {
			lastCheck = now
			n, err := c.Lost()
			if err != nil {
				p.log.Debug("process sensor: lost record count unreadable", logError, err)
				continue
			}
			if n > lostSeen {
				p.lost.Add(n - lostSeen)
				lostSeen = n
				if now.Sub(lastResync) >= resyncEvery {
					p.log.Warn("process sensor: the eBPF ring buffer was full, records were dropped; rescanning /proc", logLost, p.lost.Load())
					p.seed()
					lastResync = now
				}
			}
		}
	}
}
