package sensor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

const (
	// resyncEvery bounds how often an overrun triggers a rescan of procfs.
	resyncEvery = 10 * time.Second
	// readBufLen is the size of the datagram buffer; a process connector
	// datagram is under 100 bytes.
	readBufLen = 4096
)

// connector is the kernel's feed of process events: the netlink process
// connector on Linux (netlink_linux.go).
type connector interface {
	// read blocks until the next datagram is in b and returns its length.
	// It returns errOverrun when the kernel dropped events for lack of
	// buffer space, and an error once Close has been called.
	read(b []byte) (int, error)
	// wallTime converts an event's kernel timestamp to wall-clock time.
	wallTime(ns uint64) time.Time
	// bootTime returns the boot time with sub-second precision, if known.
	bootTime() (time.Time, bool)
	// describe says how the connector is set up, for Mode.
	describe() string
	// startReader is called once, on the goroutine that will call read,
	// before the first read. It may tie the goroutine to its thread and
	// raise the thread's priority. It returns a note for Mode.
	startReader() string
	// Close unsubscribes and closes the socket, unblocking read. It may be
	// called more than once and concurrently with read.
	Close() error
}

// errOverrun reports that the kernel dropped events because the socket's
// receive buffer was full.
var errOverrun = errors.New("process connector receive buffer overrun")

// runConnector emits the events of c on out until ctx is done (returning
// nil) or reading fails (returning the error). It closes c. note is added
// to the reason Mode gives.
func (p *Process) runConnector(ctx context.Context, c connector, out chan<- ecs.Event, note string) error {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	p.loadBoot(c)
	p.seed()

	// The reader delivers on out itself: a hand-over to another goroutine
	// per event would cost a wakeup each.
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		ready <- c.startReader()
		done <- p.receive(ctx, c, out)
	}()
	p.setMode(ModeNetlink, c.describe()+<-ready+note)
	return <-done
}

// loadBoot reads the boot id and boot time that entity ids and start
// times are built from.
func (p *Process) loadBoot(c connector) {
	id, err := p.fs.bootID()
	if err != nil {
		p.log.Warn("process sensor: entity ids will lack the boot id", logError, err)
	}
	p.bootID = id
	if t, ok := c.bootTime(); ok {
		p.boot = t
		return
	}
	t, err := p.fs.bootTime()
	if err != nil {
		p.log.Warn("process sensor: process start times will be wrong", logError, err)
	}
	p.boot = t
}

// seed records every process in procfs and forgets the ones that are gone.
// Records that still describe the same process are kept.
func (p *Process) seed() {
	pids, err := p.fs.pids()
	if err != nil {
		p.log.Warn("process sensor: cannot list running processes", logError, err)
		return
	}
	live := make(map[int]bool, len(pids))
	for _, pid := range pids {
		live[pid] = true
		if old, ok := p.cache.get(pid); ok && old.image && old.entityID != "" {
			if st, err := p.fs.stat(pid); err == nil && st.startTicks == old.startTicks {
				continue
			}
		}
		info, _ := p.fs.read(pid)
		if !info.statOK {
			continue
		}
		pr := p.newProc(info)
		pr.image = true
		p.cache.put(pr)
	}
	p.cache.retain(live)
}

// receive reads c until it fails, handling each event at once: an exec's
// /proc details must be read before the process exits.
func (p *Process) receive(ctx context.Context, c connector, out chan<- ecs.Event) error {
	buf := make([]byte, readBufLen)
	var lastResync time.Time
	for {
		n, err := c.read(buf)
		if errors.Is(err, errOverrun) {
			p.lost.Add(1)
			if time.Since(lastResync) >= resyncEvery {
				p.log.Warn("process sensor: the kernel dropped process events, rescanning /proc", logLost, p.lost.Load())
				p.seed()
				lastResync = time.Now()
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read netlink process connector: %w", err)
		}
		ev, err := parseProcEvent(buf[:n])
		if err != nil {
			p.log.Debug("process sensor: skipping connector message", logError, err)
			continue
		}
		e, ok := p.handle(ev, c.wallTime)
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
}

// handle updates the cache with ev and returns the event to emit, if any.
func (p *Process) handle(ev procEvent, wall func(uint64) time.Time) (ecs.Event, bool) {
	switch ev.kind {
	case procEventNone:
		if ev.ackErr != 0 {
			p.log.Debug("process sensor: connector request refused", logError, fmt.Sprintf("errno %d", ev.ackErr))
		}
	case procEventFork:
		// A thread shares its process's pid (tgid); only new processes
		// matter.
		if ev.pid == ev.tgid && ev.tgid > 0 {
			p.cache.fork(ev.tgid, ev.ptgid)
		}
	case procEventExec:
		if ev.tgid > 0 {
			return p.execEvent(ev, wall(ev.ts)), true
		}
	case procEventExit:
		if ev.pid == ev.tgid && ev.tgid > 0 {
			return p.exitEvent(ModeNetlink, ev.tgid, ev.exitCode, wall(ev.ts))
		}
	}
	return ecs.Event{}, false
}

// execEvent reads the new program of the process that exec'd and returns
// its start event. A process that exited first is still reported, with
// what the cache knows, and counted as lost.
func (p *Process) execEvent(ev procEvent, ts time.Time) ecs.Event {
	pid := ev.tgid
	info, err := p.fs.read(pid)
	if err != nil {
		if errors.Is(err, errGone) {
			p.lost.Add(1)
		}
		p.log.Debug("process sensor: incomplete exec details", logPID, pid, logError, err)
	}
	pr := p.newProc(info)
	if prev, ok := p.cache.get(pid); ok && !info.statOK {
		pr.ppid, pr.startTicks, pr.entityID, pr.start = prev.ppid, prev.startTicks, prev.entityID, prev.start
	}
	pr.image = true
	p.cache.put(pr)
	return p.processEvent(ModeNetlink, ecs.TypeStart, ts, pr, p.lineage(pr.ppid, p.fetchProc))
}

// handleRecord updates the cache with the kernel's record r of a fork,
// exec or exit and returns the event to emit, if any. wall converts the
// record's kernel time to wall-clock time.
func (p *Process) handleRecord(r *kernelRecord, wall func(uint64) time.Time) (ecs.Event, bool) {
	switch r.kind {
	case recordFork:
		p.cache.fork(r.pid, r.ppid)
	case recordExec:
		pr := p.newProc(p.recordInfo(r))
		pr.image = true
		p.cache.put(pr)
		return p.processEvent(ModeEBPF, ecs.TypeStart, wall(r.ts), pr, p.lineage(pr.ppid, p.fetchProc)), true
	case recordExit:
		return p.exitEvent(ModeEBPF, r.pid, r.exitCode, wall(r.ts))
	}
	return ecs.Event{}, false
}

// recordInfo returns what the kernel's record of an exec says of the
// process, completed from /proc where the record had to cut a path or
// the arguments short.
func (p *Process) recordInfo(r *kernelRecord) procInfo {
	info := procInfo{
		pid:     r.pid,
		exe:     r.exe,
		args:    r.args,
		cmdline: r.cmdline,
		cwd:     r.cwd,
		stat:    statInfo{ppid: r.ppid, startTicks: r.startTicks()},
		statOK:  true,
		uid:     strconv.FormatUint(uint64(r.uid), 10),
	}
	if r.exeTruncated {
		if exe, err := p.fs.link(r.pid, "exe"); err == nil {
			info.exe = exe
		}
	}
	if r.cwdTruncated {
		if cwd, err := p.fs.link(r.pid, "cwd"); err == nil {
			info.cwd = cwd
		}
	}
	if r.argsTruncated {
		if args, err := p.fs.cmdline(r.pid); err == nil && len(args) > 0 {
			info.args, info.cmdline = args, ""
		}
	}
	info.stat.comm = filepath.Base(info.exe)
	return info
}

// exitEvent forgets the process pid that exited with the wait(2) status
// and returns its end event if the sensor knew its program.
func (p *Process) exitEvent(mode string, pid int, status uint32, ts time.Time) (ecs.Event, bool) {
	pr, ok := p.cache.remove(pid)
	if !ok || !pr.image {
		return ecs.Event{}, false
	}
	e := p.processEvent(mode, ecs.TypeEnd, ts, &pr, p.lineage(pr.ppid, nil))
	code := exitStatus(status)
	e.Process.ExitCode = &code
	return e, true
}

// fetchProc reads a process the cache lacks from procfs.
func (p *Process) fetchProc(pid int) (*proc, error) {
	info, err := p.fs.read(pid)
	if !info.statOK {
		return nil, err
	}
	return p.newProc(info), nil
}
