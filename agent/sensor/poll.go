package sensor

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/process"
)

// runPoll emits the differences between successive snapshots of the
// process table, keyed by pid and creation time, until ctx is done.
// Processes running when it starts are not reported.
func (p *Process) runPoll(ctx context.Context, out chan<- ecs.Event, reason string) error {
	p.loadPollBoot(ctx)
	known, err := pollTable(ctx)
	seeded := err == nil
	if err != nil {
		p.log.Warn("process sensor: cannot list running processes", logError, err)
	}
	p.setMode(ModePoll, reason)

	t := time.NewTicker(p.opts.PollInterval)
	defer t.Stop()
	fetch := func(pid int) (*proc, error) {
		ct, err := (&process.Process{Pid: int32(pid)}).CreateTimeWithContext(ctx)
		if err != nil {
			return nil, err
		}
		pr, _ := p.pollProc(ctx, int32(pid), ct)
		return pr, nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := pollTable(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("process sensor: cannot list running processes", logError, err)
			continue
		}
		if !seeded {
			// Whatever runs now was running before we could look.
			known, seeded = cur, true
			continue
		}
		now := time.Now()
		var evs []ecs.Event
		for pid, ct := range known {
			if c, ok := cur[pid]; ok && c == ct {
				continue
			}
			if pr, ok := p.cache.remove(int(pid)); ok && pr.image {
				evs = append(evs, p.processEvent(ModePoll, ecs.TypeEnd, now, &pr, p.lineage(pr.ppid, nil)))
			}
		}
		// Oldest first, so that a new parent is cached before its child.
		type started struct {
			pid int32
			ct  int64
		}
		var news []started
		for pid, ct := range cur {
			if c, ok := known[pid]; !ok || c != ct {
				news = append(news, started{pid, ct})
			}
		}
		slices.SortFunc(news, func(a, b started) int {
			return cmp.Or(cmp.Compare(a.ct, b.ct), cmp.Compare(a.pid, b.pid))
		})
		for _, n := range news {
			pr, gone := p.pollProc(ctx, n.pid, n.ct)
			if gone {
				p.lost.Add(1)
			}
			p.cache.put(pr)
			evs = append(evs, p.processEvent(ModePoll, ecs.TypeStart, now, pr, p.lineage(pr.ppid, fetch)))
		}
		known = cur
		for _, e := range evs {
			select {
			case out <- e:
				p.events.Add(1)
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// loadPollBoot sets the boot id entity ids are built from: the kernel's on
// Linux, the boot time in seconds elsewhere.
func (p *Process) loadPollBoot(ctx context.Context) {
	if id, err := p.fs.bootID(); err == nil {
		p.bootID = id
		return
	}
	bt, err := host.BootTimeWithContext(ctx)
	if err != nil {
		p.log.Warn("process sensor: entity ids will lack the boot id", logError, err)
		return
	}
	p.bootID = strconv.FormatUint(bt, 10)
}

// pollTable returns the creation time in milliseconds of every process it
// can see, by pid.
func pollTable(ctx context.Context) (map[int32]int64, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[int32]int64, len(pids))
	for _, pid := range pids {
		ct, err := (&process.Process{Pid: pid}).CreateTimeWithContext(ctx)
		if err != nil {
			continue // exited, or not ours to see
		}
		m[pid] = ct
	}
	return m, nil
}

// pollProc reads what gopsutil offers about pid, created at ct
// (milliseconds since the epoch). gone reports that the process exited
// before its executable was read.
func (p *Process) pollProc(ctx context.Context, pid int32, ct int64) (pr *proc, gone bool) {
	gp := &process.Process{Pid: pid}
	pr = &proc{pid: int(pid), start: time.UnixMilli(ct).UTC(), image: true}
	exe, err := gp.ExeWithContext(ctx)
	if err != nil {
		exists, _ := process.PidExistsWithContext(ctx, pid)
		gone = !exists
	}
	pr.exe = exe
	pr.args, _ = gp.CmdlineSliceWithContext(ctx)
	pr.cmdline = strings.Join(pr.args, " ")
	pr.cwd, _ = gp.CwdWithContext(ctx)
	if ppid, err := gp.PpidWithContext(ctx); err == nil {
		pr.ppid = int(ppid)
	}
	comm, _ := gp.NameWithContext(ctx)
	pr.name = processName(exe, comm)
	// Real, effective, saved and filesystem uids on Unix.
	if uids, err := gp.UidsWithContext(ctx); err == nil && len(uids) > 0 {
		pr.uid = strconv.Itoa(int(uids[min(1, len(uids)-1)]))
		pr.userName = p.users.name(pr.uid)
	} else if name, err := gp.UsernameWithContext(ctx); err == nil {
		pr.userName = name
	}
	// On Linux, use the clock ticks of /proc/PID/stat like the netlink
	// mode, so that entity ids agree across modes.
	ticks := uint64(ct)
	if st, err := p.fs.stat(int(pid)); err == nil {
		ticks = st.startTicks
	}
	pr.entityID = ecs.EntityID(p.bootID, int(pid), ticks)
	pr.startTicks = ticks
	return pr, gone
}
