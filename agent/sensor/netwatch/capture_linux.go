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
// where the kernel allows, the UDP ones at sock:sock_send_length and at
// the cgroup sendmsg hooks, all writing to one ring buffer.
type ebpfCapture struct {
	*bpfmap.Capture
	// udpErr says why UDP flows are not all reported as they start; nil
	// when they are.
	udpErr error
}

// openCapture loads and attaches the eBPF programs. It fails where the
// kernel refuses eBPF (no privilege, no BTF, no BTF tracepoints); the
// UDP programs only degrade the capture when they cannot load or attach
// (a kernel before 6.3 has no sock:sock_send_length, a host without
// cgroup v2 no sendmsg hooks).
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
		mounts, err := os.ReadFile("/proc/self/mounts")
		if err != nil {
			err = fmt.Errorf("finding the cgroup v2 hierarchy: %w", err)
		}
		var root string
		if err == nil {
			root, err = bpfmap.CgroupRoot(mounts)
		}
		if err != nil {
			udpErrs = append(udpErrs, fmt.Errorf("unconnected UDP sockets: %w", err))
		} else {
			attach = append(attach,
				bpfmap.Optional(bpfmap.Cgroup("sendmsg4", root, ebpf.AttachCGroupUDP4Sendmsg, udp.OnSendmsg4)),
				bpfmap.Optional(bpfmap.Cgroup("sendmsg6", root, ebpf.AttachCGroupUDP6Sendmsg, udp.OnSendmsg6)))
		}
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
