package netwatch

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// udpChildEnv names the peer a re-executed test binary sends one UDP
// datagram to before it exits; udpChildSendto makes it send from an
// unconnected socket (sendto) rather than a connected one.
const (
	udpChildEnv    = "CORDON_NETWATCH_UDP_PEER"
	udpChildSendto = "CORDON_NETWATCH_UDP_SENDTO"
)

// TestUDPChild is the short-lived process of TestEBPFShortUDP; it does
// nothing in a normal run.
func TestUDPChild(t *testing.T) {
	peer := os.Getenv(udpChildEnv)
	if peer == "" {
		return
	}
	network := "udp4"
	if strings.HasPrefix(peer, "[") {
		network = "udp6"
	}
	if os.Getenv(udpChildSendto) != "" {
		to, err := net.ResolveUDPAddr(network, peer)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.ListenUDP(network, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.WriteTo([]byte("ping"), to); err != nil {
			t.Fatal(err)
		}
		return
	}
	conn, err := net.Dial(network, peer)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
}

// TestEBPFShortUDP checks that a UDP socket that a process connects (or
// leaves unconnected), sends one datagram from and closes as it exits is
// reported from the eBPF programs with that process: the socket table is
// not read again during the test, so the periodic dump cannot be what
// saw it.
func TestEBPFShortUDP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root")
	}
	s := New(Options{Reconcile: 10 * time.Minute})
	c := start(t, s)
	if m, reason := s.Mode(); m != ModeEBPF {
		t.Skipf("eBPF mode unavailable here: %s: %s", m, reason)
	}
	if _, reason := s.Mode(); strings.Contains(reason, "UDP flows from eBPF in part or not at all") {
		t.Skipf("UDP programs unavailable here: %s", reason)
	}
	for _, tc := range []struct {
		network, addr string
		sendto        bool
	}{
		{"udp4", "127.0.0.1:0", false},
		{"udp6", "[::1]:0", false},
		{"udp4", "127.0.0.1:0", true},
		{"udp6", "[::1]:0", true},
	} {
		name := tc.network + "/connected"
		if tc.sendto {
			name = tc.network + "/sendto"
		}
		// The collector fails the test it was started with: a subtest
		// must use its own.
		parent := t
		t.Run(name, func(t *testing.T) {
			c.t = t
			defer func() { c.t = parent }()
			srv, err := net.ListenPacket(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			defer srv.Close()
			child := exec.Command(os.Args[0], "-test.run=^TestUDPChild$", "-test.count=1")
			child.Env = append(os.Environ(), udpChildEnv+"="+srv.LocalAddr().String())
			if tc.sendto {
				child.Env = append(child.Env, udpChildSendto+"=1")
			}
			if out, err := child.CombinedOutput(); err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			buf := make([]byte, 16)
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("the child's datagram: %q, %v", buf[:n], err)
			}
			ev := c.wait("short-lived UDP socket",
				matchEv(ecs.TypeConnection, ActionConnected, "udp", port(from), port(srv.LocalAddr())))
			if ev.Event.Module != ModeEBPF {
				t.Errorf("reported by %q, want %q", ev.Event.Module, ModeEBPF)
			}
			if ev.Process == nil || ev.Process.PID != child.Process.Pid {
				t.Errorf("owned by %+v, want the child, pid %d", ev.Process, child.Process.Pid)
			}
			if ev.Network.Direction != ecs.DirectionEgress {
				t.Errorf("direction %q, want %q", ev.Network.Direction, ecs.DirectionEgress)
			}
		})
	}
}

// fakeCapture is a ring that never has a record, from programs without
// UDP.
type fakeCapture struct {
	udpErr error
	done   chan struct{}
}

func (f *fakeCapture) read(deadline time.Time) ([]byte, error) {
	select {
	case <-f.done:
		return nil, errors.New("interrupted")
	case <-time.After(time.Until(deadline)):
		return nil, errDeadline
	}
}

func (f *fakeCapture) lostRecords() (uint64, error) { return 0, nil }
func (f *fakeCapture) udpUnavailable() error        { return f.udpErr }
func (f *fakeCapture) interrupt()                   { close(f.done) }
func (f *fakeCapture) close() error                 { return nil }

// TestEBPFWithoutUDP checks that when the UDP programs cannot attach the
// sensor keeps its eBPF mode for TCP, says why UDP is not in it, and
// still reports UDP from the periodic dump.
func TestEBPFWithoutUDP(t *testing.T) {
	s := New(Options{Reconcile: 20 * time.Millisecond})
	s.openCapture = func() (capture, error) {
		return &fakeCapture{udpErr: errors.New("no fexit here"), done: make(chan struct{})}, nil
	}
	c := start(t, s)
	m, reason := s.Mode()
	if m == ModePoll {
		t.Skipf("no sock_diag here: %s", reason)
	}
	if m != ModeEBPF || !strings.Contains(reason, "no fexit here") {
		t.Fatalf("mode %q (%s), want %s saying why UDP is not from eBPF", m, reason, ModeEBPF)
	}
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("udp4", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ev := c.wait("connected UDP socket from the dump",
		matchEv(ecs.TypeConnection, ActionConnected, "udp", port(conn.LocalAddr()), port(srv.LocalAddr())))
	checkOwner(t, ev)
}
