package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// execCapture runs the eBPF program that records argv at every exec.
type execCapture struct {
	objs  execArgsObjects
	link  link.Link
	rd    *ringbuf.Reader
	store *execStore
}

// openExecCapture loads and attaches the eBPF program. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no raw tracepoints).
func openExecCapture() (*execCapture, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("kernel BTF missing: %w", err)
	}
	_ = rlimit.RemoveMemlock() // needed before 5.11 only; best effort
	c := &execCapture{store: newExecStore()}
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
	c.rd = rd
	// Loading parsed the kernel's BTF (megabytes, mapped and decoded) to
	// relocate the program; none of it is needed any more.
	debug.FreeOSMemory()
	return c, nil
}

// run moves records from the ring buffer to the store until ctx is done
// or the reader is closed.
func (c *execCapture) run(ctx context.Context, bad func(error)) {
	stop := context.AfterFunc(ctx, func() { c.rd.Close() })
	defer stop()
	var rec ringbuf.Record
	for {
		if err := c.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || ctx.Err() != nil {
				return
			}
			bad(err)
			continue
		}
		r, err := parseExecRecord(rec.RawSample)
		if err != nil {
			bad(err)
			continue
		}
		c.store.put(r)
	}
}

func (c *execCapture) close() error {
	c.store.close()
	return errors.Join(c.rd.Close(), c.link.Close(), c.objs.Close())
}
