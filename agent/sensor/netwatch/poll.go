package netwatch

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/shirou/gopsutil/v3/net"
	"github.com/shirou/gopsutil/v3/process"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// pollImpl reads gopsutil's connection table, which names each socket's
// owner but has no socket cookie: sockets are told apart by addresses and
// owner.
type pollImpl struct{}

func (pollImpl) sockets(ctx context.Context, dst []sock) ([]sock, error) {
	conns, err := net.ConnectionsWithContext(ctx, "inet")
	if err != nil {
		return dst, fmt.Errorf("listing connections: %w", err)
	}
	for _, c := range conns {
		if sk, ok := fromConnection(c); ok {
			dst = append(dst, sk)
		}
	}
	return dst, nil
}

// fromConnection converts one gopsutil connection.
func fromConnection(c net.ConnectionStat) (sock, bool) {
	sk := sock{pid: int(c.Pid)}
	switch c.Type {
	case syscall.SOCK_STREAM:
		sk.proto = protoTCP
	case syscall.SOCK_DGRAM:
		sk.proto = protoUDP
	default:
		return sock{}, false
	}
	switch c.Family {
	case syscall.AF_INET:
		sk.family = familyINET
	default:
		sk.family = familyINET6
	}
	src, err := netip.ParseAddr(strings.TrimSpace(c.Laddr.IP))
	if err != nil {
		return sock{}, false
	}
	sk.src = netip.AddrPortFrom(src.Unmap(), uint16(c.Laddr.Port))
	if dst, err := netip.ParseAddr(strings.TrimSpace(c.Raddr.IP)); err == nil {
		sk.dst = netip.AddrPortFrom(dst.Unmap(), uint16(c.Raddr.Port))
	}
	switch strings.ToUpper(c.Status) {
	case "LISTEN":
		sk.state = stateListen
	case "TIME_WAIT":
		sk.state = stateTimeWait
	case "SYN_RECV":
		sk.state = stateSynRecv
	case "CLOSE", "NONE", "":
		sk.state = stateClose
	default:
		sk.state = stateEstablished
	}
	if sk.proto == protoUDP && sk.dst.Port() != 0 {
		sk.state = stateEstablished
	}
	return sk, true
}

func (p pollImpl) listeners(dst []sock) ([]sock, error) {
	all, err := p.sockets(context.Background(), nil)
	for _, sk := range all {
		if sk.proto == protoTCP && sk.state == stateListen {
			dst = append(dst, sk)
		}
	}
	return dst, err
}

func (pollImpl) owners([]uint32) map[uint32]int { return nil }

func (pollImpl) describe(pid int) (ecs.Parent, bool) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return ecs.Parent{}, false
	}
	ref := ecs.Parent{PID: pid}
	ref.Executable, _ = p.Exe()
	ref.CommandLine, _ = p.Cmdline()
	if ref.Executable != "" {
		ref.Name = filepath.Base(ref.Executable)
	} else {
		ref.Name, _ = p.Name()
	}
	return ref, true
}

func (pollImpl) close() error { return nil }
