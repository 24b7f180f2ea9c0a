package sensor

import (
	"slices"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// maxAncestors bounds Ancestry: the parent and up to eight more.
const maxAncestors = 9

// proc is the sensor's record of one live process.
type proc struct {
	pid, ppid int
	// startTicks is the start time in clock ticks since boot (Linux), or
	// the creation time in milliseconds (other OSes); 0 when unknown.
	startTicks uint64
	entityID   string
	start      time.Time

	exe     string
	name    string
	args    []string
	cmdline string
	cwd     string
	// uid is the effective user id and userName its name, "" when unknown.
	uid, userName string

	// image is set when exe and args describe this process's own program,
	// read at its exec or found running, rather than copied from the
	// parent at fork. Only such processes get an end event.
	image bool
}

// ref returns p as a process.parent or process.ancestry entry.
func (p *proc) ref() ecs.Parent {
	return ecs.Parent{
		PID:         p.pid,
		EntityID:    p.entityID,
		Executable:  p.exe,
		Name:        p.name,
		CommandLine: p.cmdline,
	}
}

// Processes that exited are remembered for a while, so that a file
// change or connection read after its process exited can still be
// attributed to it: short-lived writers are usually gone by the time
// their change is handled.
const (
	exitedKeep = 30 * time.Second
	exitedMax  = 4096
)

// cache holds the live processes the sensor knows, by pid, and the most
// recent ones that exited. It is written by the sensor's reader and read
// by Ancestry, Lineage and Lookup from any goroutine.
type cache struct {
	mu    sync.Mutex
	procs map[int]*proc

	// exited holds processes that exited, by pid, at most exitedMax of
	// them and none older than exitedKeep; exitOrder is their pids in
	// the order they exited (a pid may appear again after reuse; the
	// map entry's time tells which one is current).
	exited    map[int]exitedProc
	exitOrder []exitedAt
	now       func() time.Time
}

type exitedProc struct {
	proc
	at time.Time
}

type exitedAt struct {
	pid int
	at  time.Time
}

func newCache() *cache {
	return &cache{procs: make(map[int]*proc), exited: make(map[int]exitedProc), now: time.Now}
}

// lookup returns a copy of the record of pid, live or, failing that,
// exited within exitedKeep.
func (c *cache) lookup(pid int) (p proc, live, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.procs[pid]; ok {
		return *p, true, true
	}
	c.expireLocked()
	if e, ok := c.exited[pid]; ok {
		return e.proc, false, true
	}
	return proc{}, false, false
}

// rememberLocked keeps p among the exited processes.
func (c *cache) rememberLocked(p *proc) {
	now := c.now()
	c.exited[p.pid] = exitedProc{proc: *p, at: now}
	c.exitOrder = append(c.exitOrder, exitedAt{p.pid, now})
	c.expireLocked()
}

// expireLocked forgets exited processes beyond exitedMax or older than
// exitedKeep.
func (c *cache) expireLocked() {
	cut := c.now().Add(-exitedKeep)
	n := 0
	for n < len(c.exitOrder) && (len(c.exitOrder)-n > exitedMax || c.exitOrder[n].at.Before(cut)) {
		old := c.exitOrder[n]
		if e, ok := c.exited[old.pid]; ok && e.at.Equal(old.at) {
			delete(c.exited, old.pid)
		}
		n++
	}
	if n > 0 {
		c.exitOrder = append(c.exitOrder[:0], c.exitOrder[n:]...)
	}
}

// get returns a copy of the record of pid.
func (c *cache) get(pid int) (proc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[pid]
	if !ok {
		return proc{}, false
	}
	return *p, true
}

// put stores p, replacing any record of the same pid. The cache owns p
// afterwards.
func (c *cache) put(p *proc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs[p.pid] = p
}

// fork records child as a copy of parent's image, if parent is known, so
// that a child that never execs still has a parent chain.
func (c *cache) fork(child, parent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &proc{pid: child, ppid: parent}
	if pp, ok := c.procs[parent]; ok {
		p.exe, p.name, p.args, p.cmdline = pp.exe, pp.name, pp.args, pp.cmdline
		p.uid, p.userName = pp.uid, pp.userName
	}
	c.procs[child] = p
}

// remove drops pid from the live processes, remembers it among the
// exited ones and returns its record.
func (c *cache) remove(pid int) (proc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[pid]
	if !ok {
		return proc{}, false
	}
	delete(c.procs, pid)
	c.rememberLocked(p)
	return *p, true
}

// setEntity fills in the start time and entity id of pid if it has none.
func (c *cache) setEntity(pid int, startTicks uint64, entityID string, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.procs[pid]; ok && p.entityID == "" {
		p.startTicks, p.entityID, p.start = startTicks, entityID, start
	}
}

// len returns the number of records.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.procs)
}

// retain drops every record whose pid is not in live, remembering it
// among the exited processes.
func (c *cache) retain(live map[int]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, p := range c.procs {
		if !live[pid] {
			delete(c.procs, pid)
			c.rememberLocked(p)
		}
	}
}

// ancestry returns up to max known ancestors of the process whose parent
// is ppid and whose start is born (0 when unknown), nearest first, from
// the live processes or, failing that, those that exited within
// exitedKeep: a writer's shell may be gone by the time its change is
// read. A live process wins over an exited one with the same pid, unless
// it started after the process it would be the parent of (the pid was
// reused). It stops at the first unknown pid, at pid 0 and on a loop.
func (c *cache) ancestry(ppid int, born uint64, max int) []ecs.Parent {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	// Built on the stack and copied out at its length, as lineage does:
	// the file and network sensors ask for every event they name a
	// process in.
	max = min(max, maxAncestors)
	var buf [maxAncestors]ecs.Parent
	var seen [maxAncestors]int
	out := buf[:0]
	for pid := ppid; pid > 0 && len(out) < max && !slices.Contains(seen[:len(out)], pid); {
		seen[len(out)] = pid
		ref, next, start, ok := c.ancestorLocked(pid, born)
		if !ok {
			break
		}
		out = append(out, ref)
		pid, born = next, start
	}
	if len(out) == 0 {
		return nil
	}
	return slices.Clone(out)
}

// ancestorLocked returns the record of pid as the parent of a process
// that started at born: the live one, or the exited one, whichever did
// not start after born. It returns the record's reference, parent pid
// and start.
func (c *cache) ancestorLocked(pid int, born uint64) (ref ecs.Parent, ppid int, start uint64, ok bool) {
	before := func(start uint64) bool { return born == 0 || start == 0 || start <= born }
	if p, ok := c.procs[pid]; ok && before(p.startTicks) {
		return p.ref(), p.ppid, p.startTicks, true
	}
	if e, ok := c.exited[pid]; ok && before(e.startTicks) {
		return e.ref(), e.ppid, e.startTicks, true
	}
	return ecs.Parent{}, 0, 0, false
}
