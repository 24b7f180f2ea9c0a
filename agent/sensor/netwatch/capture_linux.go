package netwatch

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cordon-edr/cordon/agent/sensor/bpfmap"
)

// ebpfCapture runs the eBPF program at sock:inet_sock_set_state.
type ebpfCapture struct {
	objs connStateObjects
	link link.Link
	rd   *ringbuf.Reader
	rec  ringbuf.Record
}

// openCapture loads and attaches the eBPF program. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no BTF tracepoints).
func openCapture() (capture, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("kernel BTF missing: %w", err)
	}
	_ = rlimit.RemoveMemlock() // needed before 5.11 only; best effort
	c := &ebpfCapture{}
	if err := loadConnStateObjects(&c.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the connection eBPF program: %w", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.OnState})
	if err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("attaching to the inet_sock_set_state tracepoint: %w", err)
	}
	c.link = l
	rd, err := ringbuf.NewReader(c.objs.Events)
	if err != nil {
		c.link.Close()
		c.objs.Close()
		return nil, fmt.Errorf("opening the connection ring buffer: %w", err)
	}
	c.rd = rd
	// Loading parsed the kernel's BTF to relocate the program; none of
	// it is needed any more.
	debug.FreeOSMemory()
	return c, nil
}

func (c *ebpfCapture) read(deadline time.Time) ([]byte, error) {
	c.rd.SetDeadline(deadline)
	err := c.rd.ReadInto(&c.rec)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errDeadline
	}
	if err != nil {
		return nil, err
	}
	return c.rec.RawSample, nil
}

func (c *ebpfCapture) lostRecords() (uint64, error) {
	n, err := bpfmap.SumPerCPU(c.objs.Lost, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the lost record count: %w", err)
	}
	return n, nil
}

// interrupt ends a read in progress (and all later ones).
func (c *ebpfCapture) interrupt() { c.rd.Close() }

func (c *ebpfCapture) close() error {
	return errors.Join(c.rd.Close(), c.link.Close(), c.objs.Close())
}
