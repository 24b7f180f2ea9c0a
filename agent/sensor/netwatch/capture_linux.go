package netwatch

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cordon-edr/cordon/agent/sensor/bpfmap"
)

// ebpfCapture runs the eBPF program at sock:inet_sock_set_state and,
// where the kernel allows, the UDP one at sock:sock_send_length, both
// writing to one ring buffer.
type ebpfCapture struct {
	*bpfmap.Capture
	// udpErr says why UDP flows are not all reported as they start; nil
	// when they are.
	udpErr error
}

// openCapture loads and attaches the eBPF programs. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no BTF tracepoints); the
// UDP programs only degrade the capture when they cannot load or attach
// (a kernel before 6.3 has no sock:sock_send_length).
func openCapture() (capture, error) {
	objs := new(connStateObjects)
	if err := bpfmap.Load("connection", func() error { return loadConnStateObjects(objs, nil) }); err != nil {
		return nil, err
	}
	closers := closeAll{objs}
	attach := []bpfmap.Attachment{bpfmap.Tracing("inet_sock_set_state", objs.OnState)}
	var udpErrs []error
	udp := new(udpFlowObjects)
	// The UDP programs write to the TCP program's ring and lost counter.
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"events": objs.Events, "lost": objs.Lost}}
	if err := loadUdpFlowObjects(udp, opts); err != nil {
		udpErrs = append(udpErrs, fmt.Errorf("loading the UDP eBPF programs: %w", err))
	} else {
		closers = append(closers, udp)
		attach = append(attach, bpfmap.Optional(bpfmap.Tracing("sock_send_length", udp.OnSend)))
		// The cgroup sendmsg hooks (udp.OnSendmsg4/6) are not attached:
		// with several agents attaching and detaching them on one host,
		// other processes' UDP sends were seen failing with EPERM, which
		// a sensor must never cause. Unconnected sockets are left to the
		// dump.
	}
	c, err := bpfmap.Start("connection", closers, objs.Events, objs.Lost, attach...)
	if err != nil {
		return nil, err
	}
	udpErrs = append(udpErrs, c.Unattached())
	return ebpfCapture{Capture: c, udpErr: errors.Join(udpErrs...)}, nil
}

// closeAll closes each of its objects.
type closeAll []interface{ Close() error }

func (cs closeAll) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
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

func (c ebpfCapture) udpUnavailable() error { return c.udpErr }

func (c ebpfCapture) interrupt() { c.Interrupt() }

func (c ebpfCapture) close() error { return c.Close() }
