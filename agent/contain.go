package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/actions/isolation"
	"github.com/cordon-edr/cordon/actions/process"
	"github.com/cordon-edr/cordon/actions/quarantine"
	"github.com/cordon-edr/cordon/protocol"
)

// IsolationConfig is what an isolated host may still reach besides the
// collector.
type IsolationConfig struct {
	AllowDNS   bool
	AllowDHCP  bool
	AllowCIDRs []netip.Prefix
	// Probe is the UDP host:port the isolation proof must fail to reach;
	// isolation.DefaultProbe when empty.
	Probe string
}

func (a *Agent) runIsolate(ctx context.Context, c *protocol.Command) (string, error) {
	addrs, err := resolveCollector(ctx, a.id.Collector)
	if err != nil {
		return "", err
	}
	iso := a.cfg.Isolation
	return a.isolator.Isolate(ctx, isolation.Request{
		Policy: isolation.Policy{
			Collector: addrs, DNS: iso.AllowDNS, DHCP: iso.AllowDHCP, CIDRs: iso.AllowCIDRs,
		},
		Command:          c.GetId(),
		BreakGlassSHA256: c.GetArgs()[protocol.ArgBreakGlassSHA256],
		Channel:          a.uplink.Ping,
		Probe:            iso.Probe,
	})
}

func (a *Agent) runRelease(_ context.Context, c *protocol.Command) (string, error) {
	return a.isolator.Release("command " + c.GetId())
}

// resolveCollector turns the collector's host:port into addresses; it
// runs before the isolation, while DNS still answers.
func resolveCollector(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("collector address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("collector address %q: bad port", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving the collector %s before isolating: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return out, nil
}

// runProcess kills, suspends or resumes a process (args pid, entity_id,
// tree).
func (a *Agent) runProcess(ctx context.Context, c *protocol.Command) (string, error) {
	req, err := process.ParseRequest(c.GetAction(), c.GetArgs())
	if err != nil {
		return "", err
	}
	ctl, err := process.New(a.cfg.ProtectedProcesses)
	if err != nil {
		return "", err
	}
	return ctl.Do(ctx, req)
}

// runQuarantine moves the file at args.path into the quarantine.
func (a *Agent) runQuarantine(_ context.Context, c *protocol.Command) (string, error) {
	path := c.GetArgs()["path"]
	if path == "" {
		return "", fmt.Errorf("args.path: the file to quarantine is missing")
	}
	r, err := quarantine.New(a.cfg.StateDir).Quarantine(path, c.GetId())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("quarantined %s as %s (sha256 %s, %d bytes, mode %04o, owner %d:%d)", r.Path, r.ID, r.SHA256, r.Size, r.Mode, r.UID, r.GID), nil
}

// runRestore puts a quarantined file back, by args.id or args.path.
func (a *Agent) runRestore(_ context.Context, c *protocol.Command) (string, error) {
	id, path := c.GetArgs()["id"], c.GetArgs()["path"]
	if id == "" && path == "" {
		return "", fmt.Errorf("args.path or args.id: say which quarantined file to restore")
	}
	r, err := quarantine.New(a.cfg.StateDir).Restore(id, path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored %s from %s (sha256 %s, mode %04o, owner %d:%d, times kept)", r.Path, r.ID, r.SHA256, r.Mode, r.UID, r.GID), nil
}
