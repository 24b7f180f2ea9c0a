package sensor

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// execCapture runs the eBPF program that records argv at every exec.
//
// Its ring buffer is read by the connector's reader itself, at each exec
// event, rather than by a goroutine of its own: the kernel writes the
// record at the sched_process_exec tracepoint, before the connector's
// event of the same exec is sent, so the record is always in the ring
// when its event is read. Reading on demand costs no wakeup, no system
// call (the ring is shared memory) and no hand-over between goroutines.
type execCapture struct {
	objs  execArgsObjects
	link  link.Link
	rd    *ringbuf.Reader
	rec   ringbuf.Record
	store *execStore
	// bad receives records that do not parse.
	bad func(error)
}

// openExecCapture loads and attaches the eBPF program. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no raw tracepoints).
func openExecCapture() (*execCapture, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("kernel BTF missing: %w", err)
	}
	_ = rlimit.RemoveMemlock() // needed before 5.11 only; best effort
	c := &execCapture{store: newExecStore(), bad: func(error) {}}
	if err := loadExecArgsObjects(&c.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the exec eBPF program: %w", err)
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: c.objs.OnExec})
	if err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("attaching to the sched_process_exec raw tracepoint: %w", err)
	}
	c.link = l
	rd, err := ringbuf.NewReader(c.objs.Events)
	if err != nil {
		l.Close()
		c.objs.Close()
		return nil, fmt.Errorf("opening the exec ring buffer: %w", err)
	}
	// Never block: a deadline in the past makes a read with nothing to
	// read return at once.
	rd.SetDeadline(time.Unix(1, 0))
	c.rd = rd
	// Loading parsed the kernel's BTF (megabytes, mapped and decoded) to
	// relocate the program; none of it is needed any more.
	debug.FreeOSMemory()
	return c, nil
}

// take returns the kernel's record of pid's exec, reading what the ring
// holds first.
func (c *execCapture) take(pid int) (execRecord, bool) {
	c.drain()
	return c.store.take(pid)
}

// drain moves the records in the ring buffer to the store.
func (c *execCapture) drain() {
	// AvailableBytes reads the ring's positions from shared memory; the
	// reader makes a system call only when it is asked to read from an
	// empty ring.
	// A read may report the deadline left over from an earlier read of
	// an empty ring before it reads again: try once more then.
	for empty := 0; empty < 2 && c.rd.AvailableBytes() > 0; {
		if err := c.rd.ReadInto(&c.rec); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				c.bad(err)
				return
			}
			empty++
			continue
		}
		empty = 0
		r, err := parseExecRecord(c.rec.RawSample)
		if err != nil {
			c.bad(err)
			continue
		}
		c.store.put(r)
	}
}

func (c *execCapture) close() error {
	return errors.Join(c.rd.Close(), c.link.Close(), c.objs.Close())
}
