package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cordon-edr/cordon/protocol/ecs"

	"github.com/cordon-edr/cordon/agent/sensor/bpfmap"
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
type execCapture struct {
	objs  execArgsObjects
	links []link.Link
	rd    *ringbuf.Reader
	rec   ringbuf.Record
}

// openExecCapture loads and attaches the eBPF programs. It fails where
// the kernel refuses eBPF (no privilege, no BTF, no raw tracepoints).
func openExecCapture() (*execCapture, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("kernel BTF missing: %w", err)
	}
	_ = rlimit.RemoveMemlock() // needed before 5.11 only; best effort
	c := &execCapture{}
	if err := loadExecArgsObjects(&c.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the process eBPF programs: %w", err)
	}
	for _, tp := range []struct {
		name string
		prog *ebpf.Program
	}{{"sched_process_fork", c.objs.OnFork}, {"sched_process_exec", c.objs.OnExec}, {"sched_process_exit", c.objs.OnExit}} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			c.closeLinks()
			c.objs.Close()
			return nil, fmt.Errorf("attaching to the %s raw tracepoint: %w", tp.name, err)
		}
		c.links = append(c.links, l)
	}
	rd, err := ringbuf.NewReader(c.objs.Events)
	if err != nil {
		c.closeLinks()
		c.objs.Close()
		return nil, fmt.Errorf("opening the process event ring buffer: %w", err)
	}
	c.rd = rd
	// Loading parsed the kernel's BTF (megabytes, mapped and decoded) to
	// relocate the programs; none of it is needed any more.
	debug.FreeOSMemory()
	return c, nil
}

// read returns the next record, waiting at most until the deadline last
// set. The record is valid until the next read.
func (c *execCapture) read() ([]byte, error) {
	if err := c.rd.ReadInto(&c.rec); err != nil {
		return nil, err
	}
	return c.rec.RawSample, nil
}

// lostRecords returns how many records the ring had no room for.
func (c *execCapture) lostRecords() (uint64, error) {
	n, err := bpfmap.SumPerCPU(c.objs.Lost, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the lost record count: %w", err)
	}
	return n, nil
}

func (c *execCapture) closeLinks() error {
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	c.links = nil
	return errors.Join(errs...)
}

func (c *execCapture) close() error {
	return errors.Join(c.rd.Close(), c.closeLinks(), c.objs.Close())
}

// runCapture emits the events of the eBPF capture on out until ctx is
// done (returning nil) or reading fails (returning the error). It closes
// c.
func (p *Process) runCapture(ctx context.Context, c *execCapture, out chan<- ecs.Event) error {
	defer func() {
		if err := c.close(); err != nil {
			p.log.Debug("process sensor: closing eBPF capture", logError, err)
		}
	}()
	// Closing the reader ends a wait for records.
	stop := context.AfterFunc(ctx, func() { c.rd.Close() })
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
		c.rd.SetDeadline(time.Now().Add(captureTick))
		for {
			b, err := c.read()
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
			n, err := c.lostRecords()
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
