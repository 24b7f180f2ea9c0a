package netwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func TestDiff(t *testing.T) {
	ap := netip.MustParseAddrPort
	listen := sock{proto: protoTCP, state: stateListen, src: ap("0.0.0.0:22"), dst: ap("0.0.0.0:0"), cookie: 1}
	conn := sock{proto: protoTCP, state: stateEstablished, src: ap("10.0.0.1:22"), dst: ap("10.0.0.2:5000"), cookie: 2, inode: 100}
	synRecv := sock{proto: protoTCP, state: stateSynRecv, src: ap("10.0.0.1:22"), dst: ap("10.0.0.3:5000"), cookie: 3}
	unbound := sock{proto: protoTCP, state: stateClose, src: ap("0.0.0.0:0"), dst: ap("0.0.0.0:0"), cookie: 4}
	udpBound := sock{proto: protoUDP, state: stateClose, src: ap("0.0.0.0:53"), dst: ap("0.0.0.0:0"), cookie: 5}
	udpConn := sock{proto: protoUDP, state: stateEstablished, src: ap("10.0.0.1:4000"), dst: ap("10.0.0.9:53"), cookie: 6}
	timeWait := sock{proto: protoTCP, state: stateTimeWait, src: ap("10.0.0.1:4001"), dst: ap("10.0.0.9:80"), cookie: 7}

	news, next := diff(map[key]struct{}{}, []sock{listen, conn, synRecv, unbound, udpBound, udpConn, timeWait, conn})
	if len(news) != 5 {
		t.Fatalf("first diff: %d new sockets, want 5 (listener, connection, UDP bound, UDP connected, TIME_WAIT): %+v", len(news), news)
	}
	// The connection goes to TIME_WAIT: same cookie, not new.
	closed := conn
	closed.state = stateTimeWait
	news, _ = diff(next, []sock{listen, closed, udpBound})
	if len(news) != 0 {
		t.Fatalf("second diff reported %+v", news)
	}
	// Without cookies, connections are told apart by addresses (a
	// connection in TIME_WAIT loses its owner), listeners also by owner.
	a := sock{proto: protoTCP, state: stateEstablished, src: ap("10.0.0.1:4000"), dst: ap("10.0.0.9:80"), pid: 10}
	la := sock{proto: protoTCP, state: stateListen, src: ap("0.0.0.0:80"), pid: 10}
	lb := la
	lb.pid = 11
	news, next = diff(map[key]struct{}{}, []sock{a, la})
	if len(news) != 2 {
		t.Fatal("cookie-less sockets not reported")
	}
	aw := a
	aw.state, aw.pid = stateTimeWait, 0
	if news, _ = diff(next, []sock{aw, la, lb}); len(news) != 1 || news[0].pid != 11 {
		t.Fatalf("cookie-less diff = %+v, want the listener of pid 11", news)
	}

	// An accepted connection without an inode waits for the server to
	// accept it.
	queued := sock{proto: protoTCP, state: stateEstablished, src: ap("10.0.0.1:22"), dst: ap("10.0.0.4:6000"), cookie: 9}
	news, next = diff(map[key]struct{}{}, []sock{listen, queued})
	if len(news) != 1 {
		t.Fatalf("queued connection reported before accept: %+v", news)
	}
	queued.inode = 99
	if news, _ = diff(next, []sock{listen, queued}); len(news) != 1 || news[0].cookie != 9 {
		t.Fatalf("accepted connection not reported: %+v", news)
	}
}

// collector gathers a running sensor's events.
type collector struct {
	t   *testing.T
	out chan ecs.Event
	got []ecs.Event
}

func start(t *testing.T, s *Sensor) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{t: t, out: make(chan ecs.Event, 4096)}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, c.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, _ := s.Mode(); m != "" {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("sensor did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait returns the first event (seen so far or arriving) that matches.
func (c *collector) wait(what string, match func(ecs.Event) bool) ecs.Event {
	c.t.Helper()
	for _, ev := range c.got {
		if match(ev) {
			return ev
		}
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-c.out:
			c.got = append(c.got, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			c.t.Fatalf("no event for %s; got %d others", what, len(c.got))
		}
	}
}

// drain takes what arrives during d.
func (c *collector) drain(d time.Duration) {
	timeout := time.After(d)
	for {
		select {
		case ev := <-c.out:
			c.got = append(c.got, ev)
		case <-timeout:
			return
		}
	}
}

func (c *collector) count(match func(ecs.Event) bool) int {
	n := 0
	for _, ev := range c.got {
		if match(ev) {
			n++
		}
	}
	return n
}

func port(addr net.Addr) int {
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return n
}

func matchEv(typ, action, transport string, src, dst int) func(ecs.Event) bool {
	return func(ev ecs.Event) bool {
		if ev.Event.Category != ecs.CategoryNetwork || ev.Event.Type != typ || ev.Event.Action != action || ev.Network.Transport != transport {
			return false
		}
		if src != 0 && (ev.Source == nil || ev.Source.Port != src) {
			return false
		}
		if dst != 0 && (ev.Destination == nil || ev.Destination.Port != dst) {
			return false
		}
		return true
	}
}

// checkOwner checks the event names this test process.
func checkOwner(t *testing.T, ev ecs.Event) {
	t.Helper()
	exe, _ := os.Executable()
	if ev.Process == nil || ev.Process.PID != os.Getpid() {
		t.Errorf("%s %s: process %+v, want pid %d", ev.Event.Type, ev.Event.Action, ev.Process, os.Getpid())
		return
	}
	if filepath.Base(ev.Process.Executable) != filepath.Base(exe) || ev.Process.CommandLine == "" {
		t.Errorf("%s %s: executable %q command line %q, want %q", ev.Event.Type, ev.Event.Action, ev.Process.Executable, ev.Process.CommandLine, exe)
	}
}

// loopback drives a sensor with real sockets on the loopback interface.
func loopback(t *testing.T, s *Sensor, network, host string) {
	c := start(t, s)
	tcp, udp := "tcp"+network, "udp"+network

	ln, err := net.Listen(tcp, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("no %s loopback: %v", tcp, err)
	}
	defer ln.Close()
	lport := port(ln.Addr())
	ev := c.wait("TCP listener", matchEv(ecs.TypeStart, ActionListen, "tcp", lport, 0))
	checkOwner(t, ev)
	if ev.Source.IP != host {
		t.Errorf("listener address %q, want %q", ev.Source.IP, host)
	}

	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
	}()
	conn, err := net.Dial(tcp, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := <-accepted
	defer srv.Close()
	cport := port(conn.LocalAddr())
	ev = c.wait("outbound TCP connection", matchEv(ecs.TypeConnection, ActionConnected, "tcp", cport, lport))
	checkOwner(t, ev)
	if ev.Network.Direction != ecs.DirectionEgress || ev.Destination.IP != host {
		t.Errorf("outbound: %+v to %+v", ev.Network, ev.Destination)
	}
	ev = c.wait("accepted TCP connection", matchEv(ecs.TypeConnection, ActionAccepted, "tcp", cport, lport))
	checkOwner(t, ev)
	if ev.Network.Direction != ecs.DirectionIngress {
		t.Errorf("accepted: direction %q", ev.Network.Direction)
	}

	uln, err := net.ListenPacket(udp, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer uln.Close()
	uport := port(uln.LocalAddr())
	checkOwner(t, c.wait("UDP listener", matchEv(ecs.TypeStart, ActionListen, "udp", uport, 0)))
	uc, err := net.Dial(udp, uln.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	// Datagrams run the eBPF programs where they are attached: still one
	// report of the socket, however many datagrams and dumps.
	for range 2 {
		if _, err := uc.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ev = c.wait("connected UDP socket", matchEv(ecs.TypeConnection, ActionConnected, "udp", port(uc.LocalAddr()), uport))
	checkOwner(t, ev)
	// An unconnected socket that sends to a peer: a flow where the eBPF
	// programs see sends, else only a bound socket.
	us, err := net.ListenPacket(udp, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	for range 2 {
		if _, err := us.WriteTo([]byte("x"), uln.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	sendFlow := matchEv(ecs.TypeConnection, ActionConnected, "udp", port(us.LocalAddr()), uport)
	m, reason := s.Mode()
	udpFromEBPF := m == ModeEBPF && !strings.Contains(reason, "UDP flows from eBPF in part or not at all")
	if udpFromEBPF {
		checkOwner(t, c.wait("UDP datagram from an unconnected socket", sendFlow))
	}

	// Each socket is reported once however many looks see it.
	c.drain(10 * lookEvery(s))
	for what, m := range map[string]func(ecs.Event) bool{
		"listener":      matchEv(ecs.TypeStart, ActionListen, "tcp", lport, 0),
		"outbound":      matchEv(ecs.TypeConnection, ActionConnected, "tcp", cport, lport),
		"accepted":      matchEv(ecs.TypeConnection, ActionAccepted, "tcp", cport, lport),
		"UDP listen":    matchEv(ecs.TypeStart, ActionListen, "udp", uport, 0),
		"UDP connected": matchEv(ecs.TypeConnection, ActionConnected, "udp", port(uc.LocalAddr()), uport),
	} {
		if n := c.count(m); n != 1 {
			t.Errorf("%s reported %d times, want once", what, n)
		}
	}
	if n := c.count(sendFlow); udpFromEBPF && n != 1 {
		t.Errorf("UDP datagrams from an unconnected socket reported %d times, want once", n)
	}
	// Closing the client leaves its socket in TIME_WAIT: still the same
	// socket, not a new connection.
	conn.Close()
	srv.Close()
	c.drain(5 * lookEvery(s))
	n := 0
	for _, ev := range c.got {
		if ev.Event.Type == ecs.TypeConnection && ev.Network.Transport == "tcp" && ev.Source != nil && ev.Destination != nil &&
			ev.Source.Port == cport && ev.Destination.Port == lport {
			n++
		}
	}
	if n != 2 {
		t.Errorf("connection %d→%d reported %d times after close, want 2 (each end once)", cport, lport, n)
	}
}

// lookEvery is how often the sensor reads the socket table in its mode.
func lookEvery(s *Sensor) time.Duration {
	if m, _ := s.Mode(); m == ModeEBPF {
		return s.opts.Reconcile
	}
	return s.opts.Interval
}

// In the eBPF mode with a short reconciliation, so that records and dumps
// race for the same sockets: each is still reported once.
func TestLoopbackIPv4(t *testing.T) {
	s := New(Options{Interval: 20 * time.Millisecond, Reconcile: 20 * time.Millisecond})
	loopback(t, s, "4", "127.0.0.1")
	m, reason := s.Mode()
	t.Logf("mode %s: %s", m, reason)
}

func TestLoopbackIPv6(t *testing.T) {
	loopback(t, New(Options{Interval: 20 * time.Millisecond, Reconcile: 20 * time.Millisecond}), "6", "::1")
}

// TestLoopbackSockDiag is the fallback where eBPF cannot load: the socket
// table read every interval, and status saying why.
func TestLoopbackSockDiag(t *testing.T) {
	s := New(Options{Interval: 20 * time.Millisecond})
	s.openCapture = func() (capture, error) { return nil, errors.New("refused by the test") }
	loopback(t, s, "4", "127.0.0.1")
	m, reason := s.Mode()
	if m == ModePoll {
		t.Skipf("no sock_diag here: %s", reason)
	}
	if m != ModeSockDiag || !strings.Contains(reason, "refused by the test") {
		t.Errorf("mode %q (%s), want %s saying why eBPF is not used", m, reason, ModeSockDiag)
	}
}

// TestEBPFConnections checks that TCP connections and listeners come from
// the eBPF program as they happen, with their process: the table is not
// read again during the test.
func TestEBPFConnections(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root")
	}
	s := New(Options{Reconcile: time.Hour})
	c := start(t, s)
	if m, reason := s.Mode(); m != ModeEBPF {
		t.Skipf("eBPF mode unavailable here: %s: %s", m, reason)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lport := port(ln.Addr())
	fromEBPF := func(what string, m func(ecs.Event) bool) ecs.Event {
		t.Helper()
		ev := c.wait(what, m)
		if ev.Event.Module != ModeEBPF {
			t.Errorf("%s reported by %q, want %q", what, ev.Event.Module, ModeEBPF)
		}
		checkOwner(t, ev)
		if ev.Process != nil && ev.Process.User.ID != strconv.Itoa(os.Geteuid()) {
			t.Errorf("%s: user %q, want %d", what, ev.Process.User.ID, os.Geteuid())
		}
		return ev
	}
	fromEBPF("listener", matchEv(ecs.TypeStart, ActionListen, "tcp", lport, 0))

	// The server is another process: the accepted connection must name
	// it, not the client whose handshake ran the program.
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := <-accepted
	defer srv.Close()
	cport := port(conn.LocalAddr())
	ev := fromEBPF("outbound connection", matchEv(ecs.TypeConnection, ActionConnected, "tcp", cport, lport))
	if ev.Network.Direction != ecs.DirectionEgress {
		t.Errorf("outbound: direction %q", ev.Network.Direction)
	}
	ev = fromEBPF("accepted connection", matchEv(ecs.TypeConnection, ActionAccepted, "tcp", cport, lport))
	if ev.Network.Direction != ecs.DirectionIngress || ev.Source.Port != cport {
		t.Errorf("accepted: %+v from %+v", ev.Network, ev.Source)
	}
}

// TestEBPFAcceptOtherProcess checks that an accepted connection names the
// process that listens, here a child, not the connecting test process.
func TestEBPFAcceptOtherProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 needed for a server in another process")
	}
	s := New(Options{Reconcile: time.Hour})
	c := start(t, s)
	if m, reason := s.Mode(); m != ModeEBPF {
		t.Skipf("eBPF mode unavailable here: %s: %s", m, reason)
	}
	srv := exec.Command(py, "-c", `import socket,sys
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c,_=s.accept(); c.recv(1)`)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	var lport int
	if _, err := fmt.Fscan(stdout, &lport); err != nil {
		t.Fatalf("reading the server's port: %v", err)
	}
	conn, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(lport)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ev := c.wait("accepted connection", matchEv(ecs.TypeConnection, ActionAccepted, "tcp", port(conn.LocalAddr()), lport))
	if ev.Process == nil || ev.Process.PID != srv.Process.Pid {
		t.Errorf("accepted connection owned by %+v, want the server, pid %d", ev.Process, srv.Process.Pid)
	}
}

func TestLoopbackPoll(t *testing.T) {
	s := New(Options{Interval: 50 * time.Millisecond})
	s.open = func() (osImpl, string, string, error) { return pollImpl{}, ModePoll, "test", nil }
	loopback(t, s, "4", "127.0.0.1")
}

// A connection's process gets its parent and ancestry from Lineage, as
// process events do.
func TestEventLineage(t *testing.T) {
	chain := []ecs.Parent{{PID: 20, Executable: "/bin/sh"}, {PID: 10, Executable: "/usr/sbin/nginx"}, {PID: 1}}
	s := New(Options{
		Process: func(pid int) (ecs.Parent, bool) { return ecs.Parent{PID: pid, Executable: "/usr/bin/curl"}, true },
		Lineage: func(pid int) ([]ecs.Parent, bool) {
			if pid != 30 {
				return nil, false
			}
			return chain, true
		},
	})
	ap := netip.MustParseAddrPort
	sk := sock{proto: protoTCP, state: stateEstablished, src: ap("10.0.0.1:4000"), dst: ap("10.0.0.9:80"), pid: 30, origin: originConnect}
	ev := s.event(pollImpl{}, time.Now(), ModeEBPF, sk, nil)
	p := ev.Process
	if p == nil || p.Parent == nil || p.Parent.Executable != "/bin/sh" || len(p.Ancestry) != 2 || p.Ancestry[0].Executable != "/usr/sbin/nginx" {
		t.Fatalf("process = %+v, want parent /bin/sh and ancestry nginx, 1", p)
	}
	sk.pid = 31
	if p := s.event(pollImpl{}, time.Now(), ModeEBPF, sk, nil).Process; p.Parent != nil || p.Ancestry != nil {
		t.Errorf("process unknown to Lineage = %+v, want no parent nor ancestry", p)
	}
}
