package hunter

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/net"
	"github.com/shirou/gopsutil/v3/process"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// hostState reads the host's processes and sockets with gopsutil.
type hostState struct{}

func (hostState) Processes(ctx context.Context) ([]ecs.Event, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	now := time.Now().UTC()
	out := make([]ecs.Event, 0, len(procs))
	for _, p := range procs {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		exe, err := p.ExeWithContext(ctx)
		if err != nil {
			continue // gone, or a kernel thread
		}
		pr := &ecs.Process{PID: int(p.Pid), Executable: exe, Name: filepath.Base(exe)}
		if args, err := p.CmdlineSliceWithContext(ctx); err == nil {
			pr.Args = args
			pr.CommandLine = strings.Join(args, " ")
		}
		if ms, err := p.CreateTimeWithContext(ctx); err == nil {
			pr.Start = time.UnixMilli(ms).UTC()
		}
		if cwd, err := p.CwdWithContext(ctx); err == nil {
			pr.WorkingDirectory = cwd
		}
		if uids, err := p.UidsWithContext(ctx); err == nil && len(uids) > 0 {
			pr.User.ID = strconv.Itoa(int(uids[0]))
		}
		if name, err := p.UsernameWithContext(ctx); err == nil {
			pr.User.Name = name
		}
		if ppid, err := p.PpidWithContext(ctx); err == nil && ppid > 0 {
			pr.Parent = &ecs.Parent{PID: int(ppid)}
		}
		ts := pr.Start
		if ts.IsZero() {
			ts = now
		}
		out = append(out, ecs.Event{
			Timestamp: ts, Event: ecs.Meta{Category: ecs.CategoryProcess, Type: "info", Module: "hunt"}, Process: pr,
		})
	}
	return out, nil
}

func (hostState) Sockets(ctx context.Context) ([]ecs.Event, error) {
	conns, err := net.ConnectionsWithContext(ctx, "inet")
	if err != nil {
		return nil, fmt.Errorf("listing sockets: %w", err)
	}
	now := time.Now().UTC()
	out := make([]ecs.Event, 0, len(conns))
	for _, c := range conns {
		transport := "tcp"
		if c.Type == 2 { // SOCK_DGRAM
			transport = "udp"
		}
		ev := ecs.Event{
			Timestamp: now,
			Event:     ecs.Meta{Category: ecs.CategoryNetwork, Type: "info", Module: "hunt"},
			Network:   &ecs.Network{Transport: transport},
		}
		if c.Pid > 0 {
			ev.Process = &ecs.Process{PID: int(c.Pid)}
		}
		switch {
		case c.Status == "LISTEN" || (transport == "udp" && c.Raddr.IP == ""):
			ev.Event.Action = "listening"
			ev.Network.Direction = ecs.DirectionIngress
			ev.Destination = &ecs.Endpoint{IP: c.Laddr.IP, Port: int(c.Laddr.Port)}
		case c.Raddr.IP != "":
			ev.Event.Action = strings.ToLower(c.Status)
			ev.Source = &ecs.Endpoint{IP: c.Laddr.IP, Port: int(c.Laddr.Port)}
			ev.Destination = &ecs.Endpoint{IP: c.Raddr.IP, Port: int(c.Raddr.Port)}
		default:
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}
