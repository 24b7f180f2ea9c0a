package sensor

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Sensor modes, reported by Mode and in event.module.
const (
	// ModeEBPF takes fork, exec and exit from eBPF programs whose exec
	// records carry the whole process (argv, executable, working
	// directory, user, parent, start time): nothing is read from /proc.
	ModeEBPF = "ebpf"
	// ModeNetlink is the netlink process connector, reading /proc at
	// each exec; the fallback where eBPF cannot load.
	ModeNetlink = "netlink"
	ModePoll    = "poll"
)

// Log attribute keys.
const (
	logError  = "error"
	logPID    = "pid"
	logMode   = "mode"
	logReason = "reason"
	logLost   = "lost"
)

// Options configures a Process sensor. The zero value is valid.
type Options struct {
	// ProcRoot is the procfs mount the sensor reads, "/proc" by default.
	// Polling reads the process table through gopsutil instead, which
	// honours the HOST_PROC environment variable.
	ProcRoot string
	// PollInterval is the polling period, 100ms by default.
	PollInterval time.Duration
	// ForcePoll makes the sensor poll even where the netlink process
	// connector is available.
	ForcePoll bool
	// NoEBPF keeps the sensor from loading its eBPF programs: it uses the
	// netlink process connector and /proc instead.
	NoEBPF bool
	// Logger receives the sensor's logs; nil discards them.
	Logger *slog.Logger
}

// Process is the process sensor. Create it with NewProcess and call Run
// once; Mode, Stats, Ancestry, Lineage and Lookup are safe to call from
// any goroutine.
type Process struct {
	opts  Options
	log   *slog.Logger
	fs    *procfs
	cache *cache
	// chains shares the lineages of a burst of siblings.
	chains chainMemo
	users  *users
	// open opens the kernel's process event feed.
	open func() (connector, error)
	// openCapture loads the eBPF process capture.
	openCapture func() (*execCapture, error)

	events, lost atomic.Uint64
	// busy is set while the eBPF reader works through a burst.
	busy atomic.Bool

	mu           sync.Mutex
	mode, reason string

	// Set by Run before any event is built, then read only.
	bootID string
	boot   time.Time
}

// Stats counts what the sensor emitted and what it missed.
type Stats struct {
	// Events is the number of events delivered on Run's channel.
	Events uint64
	// Lost counts netlink receive-buffer overruns (each ENOBUFS counts
	// once, however many events the kernel dropped) and processes whose
	// executable could no longer be read because they had already exited.
	// Those processes are still reported, with what was known.
	Lost uint64
}

// NewProcess returns a process sensor configured by opts.
func NewProcess(opts Options) *Process {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	opts.ProcRoot = strings.TrimSuffix(opts.ProcRoot, "/")
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Process{
		opts:  opts,
		log:   log,
		fs:    newProcfs(opts.ProcRoot),
		cache: newCache(),
		users: newUsers(),
		open:  openConnector,

		openCapture: openExecCapture,
	}
}

// Run emits process events on out until ctx is done, then returns nil. On
// Linux it loads its eBPF programs, which need root (CAP_BPF and
// CAP_PERFMON) and the kernel's BTF; where they cannot load, or fail
// later, it listens to the netlink process connector, which needs root or
// CAP_NET_ADMIN; when the connector cannot be opened, or fails later, it
// logs why and polls instead. Run must be called once.
func (p *Process) Run(ctx context.Context, out chan<- ecs.Event) error {
	reason := "polling forced by options"
	if !p.opts.ForcePoll {
		note := ""
		if !p.opts.NoEBPF {
			c, err := p.openCapture()
			if err == nil {
				err = p.runCapture(ctx, c, out)
				if err == nil || ctx.Err() != nil {
					return nil
				}
				p.log.Warn("process sensor: eBPF capture failed, falling back to the netlink process connector", logError, err)
			} else {
				p.log.Warn("process sensor: eBPF capture unavailable, using the netlink process connector and /proc", logError, err)
			}
			note = "; command lines of processes gone before /proc is read are lost (eBPF exec capture unavailable: " + err.Error() + ")"
		}
		c, err := p.open()
		if err == nil {
			err = p.runConnector(ctx, c, out, note)
			if err == nil || ctx.Err() != nil {
				return nil
			}
			p.log.Warn("process sensor: netlink process connector failed, falling back to polling", logError, err)
		} else {
			p.log.Warn("process sensor: netlink process connector unavailable, polling instead", logError, err)
		}
		reason = err.Error()
	}
	return p.runPoll(ctx, out, reason)
}

// Mode reports how the sensor watches processes, ModeNetlink or ModePoll,
// and why. Both are empty until Run has set up its mode and taken stock
// of the processes already running.
func (p *Process) Mode() (mode, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.reason
}

func (p *Process) setMode(mode, reason string) {
	p.mu.Lock()
	p.mode, p.reason = mode, reason
	p.mu.Unlock()
	p.log.Info("process sensor: started", logMode, mode, logReason, reason)
}

// Stats returns the sensor's counters.
func (p *Process) Stats() Stats {
	return Stats{Events: p.events.Load(), Lost: p.lost.Load()}
}

// Ancestry returns the known ancestors of the live process pid, nearest
// first (parent first), at most nine, from the sensor's cache of live
// processes and of those that exited within the last 30 seconds. It
// returns nil for a pid the sensor does not know as live; Lineage also
// describes exited processes.
func (p *Process) Ancestry(pid int) []ecs.Parent {
	pr, ok := p.cache.get(pid)
	if !ok {
		return nil
	}
	return p.cache.ancestry(pr.ppid, pr.startTicks, maxAncestors)
}

// Lineage returns the parent of the process pid followed by its
// ancestors, nearest first, at most nine, as process events carry them in
// process.parent and process.ancestry. It walks the live processes and
// those that exited within the last 30 seconds, so that a file change or
// connection made by a process that is gone, or whose shell is, still has
// its chain; a parent the sensor does not know is named by its pid alone.
// A live process the sensor has not read yet (one that connected or
// wrote right after its fork or exec, before the sensor's next pass) has
// its parent read from procfs, and the chain from there. ok is false
// when neither the sensor nor procfs knows pid (the caller may ask again
// once the sensor has read its fork); a process without a parent, such
// as pid 1, has no lineage but ok is true. A child known only from its
// fork has its parent's lineage, which is its own.
func (p *Process) Lineage(pid int) (lineage []ecs.Parent, ok bool) {
	pr, ok := p.exitedOrLive(pid)
	if !ok {
		st, err := p.fs.stat(pid)
		if err != nil || st.ppid <= 0 {
			return nil, false
		}
		pr = proc{pid: pid, ppid: st.ppid, startTicks: st.startTicks}
	}
	lineage = p.cache.ancestry(pr.ppid, pr.startTicks, maxAncestors)
	if len(lineage) == 0 && pr.ppid > 0 {
		lineage = []ecs.Parent{{PID: pr.ppid}}
	}
	return lineage, true
}

// Busy reports whether the sensor is working through a burst of the
// kernel's records: its last pass over the eBPF ring found some, and it
// reads the ring again within captureTickMax. A caller that did not find a
// process it expects can ask again while it is. False in the other modes.
func (p *Process) Busy() bool { return p.busy.Load() }

// Lookup returns what the sensor's cache knows of the process pid, live
// or exited within the last 30 seconds: its entity id, executable, name
// and command line. A live process with the pid wins over an exited one.
// A child known only from its fork, whose exec the sensor may not have
// read yet, is not described: its parent's program would name the wrong
// process, so the caller reads procfs or asks again later.
func (p *Process) Lookup(pid int) (ecs.Parent, bool) {
	pr, ok := p.exitedOrLive(pid)
	if !ok || !pr.image {
		return ecs.Parent{}, false
	}
	return pr.ref(), true
}

// exitedOrLive returns the cache's record of pid, live or exited. An
// exited record is not returned when procfs shows another process with
// that pid (started at another time): the pid was reused before the
// sensor read the new process's fork, and the old record would name the
// wrong program.
func (p *Process) exitedOrLive(pid int) (proc, bool) {
	pr, live, ok := p.cache.lookup(pid)
	if !ok || live || pr.startTicks == 0 {
		return pr, ok
	}
	if st, err := p.fs.stat(pid); err == nil && st.startTicks != 0 && st.startTicks != pr.startTicks {
		return proc{}, false
	}
	return pr, true
}

// newProc returns the record of what procfs read about a process.
func (p *Process) newProc(info procInfo) *proc {
	pr := &proc{
		pid:     info.pid,
		ppid:    info.stat.ppid,
		exe:     info.exe,
		name:    processName(info.exe, info.stat.comm),
		args:    info.args,
		cmdline: info.cmdline,
		cwd:     info.cwd,
		uid:     info.uid,
	}
	if pr.cmdline == "" && len(info.args) > 0 {
		pr.cmdline = strings.Join(info.args, " ")
	}
	pr.userName = p.users.name(info.uid)
	if info.statOK {
		pr.startTicks = info.stat.startTicks
		pr.entityID = ecs.EntityID(p.bootID, info.pid, info.stat.startTicks)
		pr.start = ticksToTime(p.boot, info.stat.startTicks)
	}
	return pr
}

// processName is the base name of the executable, or the kernel's command
// name when the executable is unknown (kernel threads, exited processes).
func processName(exe, comm string) string {
	if exe == "" {
		return comm
	}
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
}

// lineage returns the parent of a process whose parent pid is ppid and the
// parent's ancestors, nearest first, at most maxAncestors. Records missing
// from the cache, or without an entity id, are fetched (fetch may be nil)
// and cached. An unreadable parent is still named by its pid.
func (p *Process) lineage(ppid int, fetch func(pid int) (*proc, error)) []ecs.Parent {
	// Built on the stack and copied out at its length: a slice of
	// maxAncestors would allocate the whole bound for every event.
	var buf [maxAncestors]ecs.Parent
	out := buf[:0]
	// The chain is short: a slice scan finds loops without the map an
	// exec would otherwise allocate.
	var seen [maxAncestors]int
	for pid := ppid; pid > 0 && len(out) < maxAncestors && !slices.Contains(seen[:len(out)], pid); {
		seen[len(out)] = pid
		pr, ok := p.cache.get(pid)
		if (!ok || pr.entityID == "") && fetch != nil {
			if f, err := fetch(pid); err == nil {
				f.image = !ok || pr.image
				p.cache.put(f)
				pr, ok = *f, true
			}
		}
		if !ok {
			if len(out) == 0 {
				out = append(out, ecs.Parent{PID: pid})
			}
			break
		}
		out = append(out, pr.ref())
		pid = pr.ppid
	}
	if len(out) == 0 {
		return nil
	}
	return p.chains.share(ppid, out)
}

// chainMemoSize is how many lineages chainMemo keeps: the parents of
// more bursts at once than a host runs.
const chainMemoSize = 8

// chainMemo keeps the lineages lineage returned last, so that the events
// of a burst of children of one parent (an exec storm, a build, a shell
// loop) share one copy of the chain instead of each allocating its own.
// A kept chain is returned only when it equals, element by element, the
// one just walked from the cache, so it is never stale. Events do not
// change their parent or ancestry once built, so sharing is safe.
type chainMemo struct {
	mu    sync.Mutex
	next  int
	ppid  [chainMemoSize]int
	chain [chainMemoSize][]ecs.Parent
}

// share returns a lineage equal to walked, which starts at ppid: a kept
// one, or a copy of walked that it keeps.
func (m *chainMemo) share(ppid int, walked []ecs.Parent) []ecs.Parent {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, pid := range m.ppid {
		// Strings that share their bytes compare without reading them:
		// a chain walked from the same cache records costs little to check.
		if pid == ppid && slices.Equal(m.chain[i], walked) {
			return m.chain[i]
		}
	}
	// Clipped: an append to the ancestry cannot write into another
	// event's.
	c := slices.Clip(slices.Clone(walked))
	m.ppid[m.next], m.chain[m.next] = ppid, c
	m.next = (m.next + 1) % chainMemoSize
	return c
}

// processEvent builds an event about pr in the given mode.
func (p *Process) processEvent(mode, typ string, ts time.Time, pr *proc, lineage []ecs.Parent) ecs.Event {
	ep := &ecs.Process{
		PID:              pr.pid,
		EntityID:         pr.entityID,
		Executable:       pr.exe,
		Name:             pr.name,
		CommandLine:      pr.cmdline,
		Args:             pr.args,
		WorkingDirectory: pr.cwd,
		Start:            pr.start,
		User:             ecs.User{ID: pr.uid, Name: pr.userName},
	}
	if len(lineage) > 0 {
		// The parent and the ancestors share lineage's array: Ancestry
		// has no room to grow into the parent.
		ep.Parent = &lineage[0]
		if len(lineage) > 1 {
			ep.Ancestry = lineage[1:]
		}
	}
	return ecs.Event{
		Timestamp: ts.UTC(),
		Event: ecs.Meta{
			Category: ecs.CategoryProcess,
			Type:     typ,
			Module:   mode,
		},
		Process: ep,
	}
}
