package sensor

import (
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

// cache holds the live processes the sensor knows, by pid. It is written
// by the sensor's reader and read by Ancestry from any goroutine.
type cache struct {
	mu    sync.Mutex
	procs map[int]*proc
}

func newCache() *cache {
	return &cache{procs: make(map[int]*proc)}
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

// remove drops pid and returns its record.
func (c *cache) remove(pid int) (proc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[pid]
	if !ok {
		return proc{}, false
	}
	delete(c.procs, pid)
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

// retain drops every record whose pid is not in live.
func (c *cache) retain(live map[int]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid := range c.procs {
		if !live[pid] {
			delete(c.procs, pid)
		}
	}
}

// ancestry returns up to max known ancestors of the process whose parent
// is ppid, nearest first. It stops at the first unknown pid, at pid 0 and
// on a loop.
func (c *cache) ancestry(ppid, max int) []ecs.Parent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ecs.Parent
	seen := make(map[int]bool, max)
	for pid := ppid; pid > 0 && len(out) < max && !seen[pid]; {
		seen[pid] = true
		p, ok := c.procs[pid]
		if !ok {
			break
		}
		out = append(out, p.ref())
		pid = p.ppid
	}
	return out
}
