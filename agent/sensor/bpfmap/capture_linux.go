package bpfmap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Load loads a sensor's eBPF programs and maps with load (a bpf2go
// loader bound to the sensor's objects) once the kernel is known to have
// BTF, which the programs are relocated against. what names the programs
// in errors ("process", "connection").
func Load(what string, load func() error) error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("kernel BTF missing: %w", err)
	}
	_ = rlimit.RemoveMemlock() // needed before 5.11 only; best effort
	if err := load(); err != nil {
		return fmt.Errorf("loading the %s eBPF programs: %w", what, err)
	}
	return nil
}

// Attachment attaches one loaded program to its hook.
type Attachment struct {
	hook     string
	attach   func() (link.Link, error)
	optional bool
}

// Optional marks an attachment the capture can do without: when it
// fails, Start goes on without it and Unattached says why.
func Optional(a Attachment) Attachment {
	a.optional = true
	return a
}

// RawTracepoint attaches prog to the raw tracepoint name.
func RawTracepoint(name string, prog *ebpf.Program) Attachment {
	return Attachment{hook: name + " raw tracepoint", attach: func() (link.Link, error) {
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
	}}
}

// Tracing attaches prog, a BTF tracepoint (tp_btf) program, to the hook
// its section names; name is for errors.
func Tracing(name string, prog *ebpf.Program) Attachment {
	return Attachment{hook: name + " tracepoint", attach: func() (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: prog})
	}}
}

// Cgroup attaches prog, a cgroup program, at the hook typ of the cgroup
// v2 folder path (every socket of the cgroup and the ones below it);
// name is for errors. It joins the programs others attached there: it
// replaces none of them.
func Cgroup(name, path string, typ ebpf.AttachType, prog *ebpf.Program) Attachment {
	return Attachment{hook: name + " hook of " + path, attach: func() (link.Link, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: path, Attach: typ, Program: prog})
	}}
}

// Capture is a sensor's loaded eBPF programs, attached, with a reader
// of the ring buffer they write records to.
type Capture struct {
	objs  io.Closer
	lost  *ebpf.Map
	links []link.Link
	rd    *ringbuf.Reader
	rec   ringbuf.Record
	// unattached holds why optional attachments failed.
	unattached []error
}

// Start attaches the programs that Load loaded into objs and opens a
// reader on their ring buffer events; lost is the per-CPU array counting
// at key 0 the records the ring had no room for. When it fails it closes
// what it attached and objs.
func Start(what string, objs io.Closer, events, lost *ebpf.Map, attach ...Attachment) (*Capture, error) {
	c := &Capture{objs: objs, lost: lost}
	for _, a := range attach {
		l, err := a.attach()
		if err != nil && a.optional {
			c.unattached = append(c.unattached, fmt.Errorf("attaching the %s eBPF program to the %s: %w", what, a.hook, err))
			continue
		}
		if err != nil {
			c.closeLinks()
			objs.Close()
			return nil, fmt.Errorf("attaching the %s eBPF program to the %s: %w", what, a.hook, err)
		}
		c.links = append(c.links, l)
	}
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		c.closeLinks()
		objs.Close()
		return nil, fmt.Errorf("opening the %s ring buffer: %w", what, err)
	}
	c.rd = rd
	// Loading parsed the kernel's BTF (megabytes, mapped and decoded) to
	// relocate the programs; none of it is needed any more.
	debug.FreeOSMemory()
	return c, nil
}

// Unattached returns why the optional attachments that failed did, nil
// when every one is attached.
func (c *Capture) Unattached() error { return errors.Join(c.unattached...) }

// SetDeadline sets when reads stop waiting for records: after it, Read
// returns the records already in the ring, then os.ErrDeadlineExceeded.
func (c *Capture) SetDeadline(t time.Time) { c.rd.SetDeadline(t) }

// Read returns the next record. It is valid until the next Read.
func (c *Capture) Read() ([]byte, error) {
	if err := c.rd.ReadInto(&c.rec); err != nil {
		return nil, err
	}
	return c.rec.RawSample, nil
}

// Lost returns how many records the ring has had no room for.
func (c *Capture) Lost() (uint64, error) {
	n, err := SumPerCPU(c.lost, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the lost record count: %w", err)
	}
	return n, nil
}

// Interrupt ends a Read in progress, and makes later ones fail.
func (c *Capture) Interrupt() { c.rd.Close() }

// Close detaches the programs and closes the reader and the objects.
func (c *Capture) Close() error {
	return errors.Join(c.rd.Close(), c.closeLinks(), c.objs.Close())
}

func (c *Capture) closeLinks() error {
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	c.links = nil
	return errors.Join(errs...)
}
