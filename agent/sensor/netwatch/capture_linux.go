package netwatch

import (
	"errors"
	"os"
	"time"

	"github.com/cordon-edr/cordon/agent/sensor/bpfmap"
)

// ebpfCapture runs the eBPF program at sock:inet_sock_set_state.
type ebpfCapture struct{ *bpfmap.Capture }

// openCapture loads and attaches the eBPF program. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no BTF tracepoints).
func openCapture() (capture, error) {
	objs := new(connStateObjects)
	if err := bpfmap.Load("connection", func() error { return loadConnStateObjects(objs, nil) }); err != nil {
		return nil, err
	}
	c, err := bpfmap.Start("connection", objs, objs.Events, objs.Lost,
		bpfmap.Tracing("inet_sock_set_state", objs.OnState))
	if err != nil {
		return nil, err
	}
	return ebpfCapture{c}, nil
}

func (c ebpfCapture) read(deadline time.Time) ([]byte, error) {
	c.SetDeadline(deadline)
	b, err := c.Read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errDeadline
	}
	return b, err
}

func (c ebpfCapture) lostRecords() (uint64, error) { return c.Lost() }

func (c ebpfCapture) interrupt() { c.Interrupt() }

func (c ebpfCapture) close() error { return c.Close() }
