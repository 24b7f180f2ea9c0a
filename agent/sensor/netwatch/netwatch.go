package netwatch

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Sensor modes, reported by Mode and in event.module.
const (
	ModeEBPF     = "ebpf"
	ModeSockDiag = "sock_diag"
	ModePoll     = "poll"
)

// event.action values.
const (
	ActionConnected = "connected"
	ActionAccepted  = "accepted"
	ActionListen    = "listen"
)

// DefaultInterval is how often the socket table is read by default when
// no eBPF program reports connections.
const DefaultInterval = 200 * time.Millisecond

// DefaultReconcile is how often the socket table is read by default while
// the eBPF program reports TCP connections: for UDP, and for what the
// program missed.
const DefaultReconcile = 15 * time.Second

const logError = "error"

// Options configures a Sensor. The zero value is valid.
type Options struct {
	// Interval is how often the socket table is read, DefaultInterval by
	// default.
	Interval time.Duration
	// Reconcile is how often the socket table is read while the eBPF
	// program reports TCP connections, DefaultReconcile by default.
	Reconcile time.Duration
	// Process describes a live process by pid, typically from the process
	// sensor's cache; when nil or when it does not know the pid, the
	// sensor reads what the OS says about the process.
	Process func(pid int) (ecs.Parent, bool)
	// Lineage returns the parent and ancestors of a process by pid,
	// nearest first, and whether it knows the process, typically from the
	// process sensor; they become the event's process.parent and
	// process.ancestry. When nil, events carry neither.
	Lineage func(pid int) ([]ecs.Parent, bool)
	Logger  *slog.Logger
}

// Stats counts what the sensor emitted and what it missed.
type Stats struct {
	// Events is the number of events delivered on Run's channel.
	Events uint64
	// Lost counts reads of the socket table that failed and records the
	// eBPF ring buffer had no room for.
	Lost uint64
	// Unowned counts sockets reported without their process, because
	// they were closed before their owner could be found.
	Unowned uint64
}

// osImpl reads the socket table of one operating system.
type osImpl interface {
	// sockets appends the current sockets to dst.
	sockets(ctx context.Context, dst []sock) ([]sock, error)
	// owners returns the pids owning the sockets with these inodes, as
	// far as they can be found. Where the table names owners itself it
	// returns nil.
	owners(inodes []uint32) map[uint32]int
	// listeners appends the current listening TCP sockets to dst.
	listeners(dst []sock) ([]sock, error)
	// describe reads what the OS says about a live process.
	describe(pid int) (ecs.Parent, bool)
	close() error
}

// Sensor is the network sensor. Create it with New and call Run once;
// Mode and Stats are safe to call from any goroutine.
type Sensor struct {
	opts Options
	log  *slog.Logger
	// open returns the OS layer and its mode; replaced in tests.
	open func() (osImpl, string, string, error)
	// openCapture loads the eBPF program; replaced in tests.
	openCapture func() (capture, error)

	events, lost, unowned atomic.Uint64
	// slowdown multiplies the interval (SetSlowdown); 0 or 1 is none.
	slowdown atomic.Int64

	mu           sync.Mutex
	mode, reason string
}

// New returns a network sensor configured by opts.
func New(opts Options) *Sensor {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Reconcile <= 0 {
		opts.Reconcile = DefaultReconcile
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sensor{opts: opts, log: log, open: openImpl, openCapture: openCapture}
}

// SetSlowdown makes the sensor read the socket table factor times less
// often than configured (1 or less restores the configured interval),
// while it runs: the agent slows it when over its resource budget.
// Sockets that live less than the longer interval are missed more often.
// It is safe to call from any goroutine.
func (s *Sensor) SetSlowdown(factor int) { s.slowdown.Store(int64(max(factor, 1))) }

func (s *Sensor) interval() time.Duration {
	return s.opts.Interval * time.Duration(max(s.slowdown.Load(), 1))
}

func (s *Sensor) reconcileEvery() time.Duration {
	return s.opts.Reconcile * time.Duration(max(s.slowdown.Load(), 1))
}

func (s *Sensor) setMode(mode, reason string) {
	s.mu.Lock()
	s.mode, s.reason = mode, reason
	s.mu.Unlock()
	s.log.Info("network sensor: started", "mode", mode, "reason", reason)
}

// Mode reports how the sensor reads the socket table and why. Both are
// empty until Run has taken its first look.
func (s *Sensor) Mode() (mode, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode, s.reason
}

// Stats returns the sensor's counters.
func (s *Sensor) Stats() Stats {
	return Stats{Events: s.events.Load(), Lost: s.lost.Load(), Unowned: s.unowned.Load()}
}

// Run emits network events on out until ctx is done, then returns nil.
// Sockets open when it starts are not reported. It returns an error only
// when no way to read the socket table works.
func (s *Sensor) Run(ctx context.Context, out chan<- ecs.Event) error {
	impl, mode, reason, err := s.open()
	if err != nil {
		return fmt.Errorf("opening the socket table: %w", err)
	}
	defer impl.close()
	if mode == ModeSockDiag {
		c, err := s.openCapture()
		if err == nil {
			return s.runEBPF(ctx, impl, c, out)
		}
		s.log.Warn("network sensor: eBPF unavailable, reading the socket table instead", logError, err)
		reason = fmt.Sprintf("netlink sock_diag every %s: eBPF unavailable: %v", s.interval(), err)
	}
	return s.runPoll(ctx, impl, mode, reason, out)
}

// runPoll reads the socket table every interval and reports the sockets
// the previous read did not hold.
func (s *Sensor) runPoll(ctx context.Context, impl osImpl, mode, reason string, out chan<- ecs.Event) error {
	var cur []sock
	prev := map[key]struct{}{}
	cur, err := impl.sockets(ctx, cur[:0])
	if err != nil {
		s.lost.Add(1)
		s.log.Warn("network sensor: cannot read the socket table", logError, err)
	}
	for _, sk := range cur {
		prev[keyOf(sk)] = struct{}{}
	}
	s.setMode(mode, reason)

	interval := s.interval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if d := s.interval(); d != interval {
			interval = d
			t.Reset(d)
		}
		cur, err = impl.sockets(ctx, cur[:0])
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.lost.Add(1)
			s.log.Warn("network sensor: cannot read the socket table", logError, err)
			continue
		}
		var news []sock
		news, prev = diff(prev, cur)
		if !s.report(ctx, impl, mode, news, listeners(cur), out) {
			return nil
		}
	}
}

// report emits the events of new sockets from a dump, finding the owners
// the dump does not name. It returns false when ctx is done.
func (s *Sensor) report(ctx context.Context, impl osImpl, mode string, news []sock, listening map[listenKey]bool, out chan<- ecs.Event) bool {
	if len(news) == 0 {
		return true
	}
	var inodes []uint32
	for _, sk := range news {
		if sk.pid == 0 && sk.inode != 0 {
			inodes = append(inodes, sk.inode)
		}
	}
	var owners map[uint32]int
	if len(inodes) > 0 {
		owners = impl.owners(inodes)
	}
	now := time.Now()
	for _, sk := range news {
		if sk.pid == 0 {
			sk.pid = owners[sk.inode]
		}
		if !s.emit(ctx, impl, now, mode, sk, listening, out) {
			return false
		}
	}
	return true
}

// emit sends the event of one new socket. It returns false when ctx is
// done.
func (s *Sensor) emit(ctx context.Context, impl osImpl, now time.Time, mode string, sk sock, listening map[listenKey]bool, out chan<- ecs.Event) bool {
	if sk.pid == 0 {
		s.unowned.Add(1)
	}
	ev := s.event(impl, now, mode, sk, listening)
	select {
	case out <- ev:
		s.events.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

// key identifies a socket across dumps: the kernel's socket cookie where
// there is one, else the protocol and the addresses, which a connection
// keeps into TIME_WAIT (when it loses its owner), and for listeners,
// which SO_REUSEPORT lets several processes share, the owner. An
// unconnected UDP socket's flows are one per peer: their key is the
// cookie and the peer, so the dump's report of the bound socket is not
// taken for one of them.
type key struct {
	cookie   uint64
	proto    uint8
	src, dst netip.AddrPort
	pid      int
	listen   bool
}

func keyOf(sk sock) key {
	if sk.cookie != 0 && sk.origin == originSend {
		return key{cookie: sk.cookie, proto: sk.proto, dst: sk.dst}
	}
	if sk.cookie != 0 {
		return key{cookie: sk.cookie, proto: sk.proto}
	}
	k := key{proto: sk.proto, src: sk.src, dst: sk.dst, listen: isListener(sk)}
	if k.listen {
		k.pid = sk.pid
	}
	return k
}

// pending reports whether a socket must wait for a later look: a TCP
// connection in a listener's accept queue has no inode, so no owner, until
// the server accepts it.
func pending(sk sock, listening map[listenKey]bool) bool {
	return sk.proto == protoTCP && sk.inode == 0 && sk.pid == 0 && sk.cookie != 0 &&
		sk.state == stateEstablished && listening[listenKey{sk.proto, sk.src.Port()}]
}

// reportable reports whether a socket is a connection or a listener
// (not an unbound or closing socket).
func reportable(sk sock) bool {
	if isListener(sk) {
		return true
	}
	if !sk.dst.IsValid() || sk.dst.Port() == 0 {
		return false
	}
	if sk.proto == protoUDP {
		return true
	}
	switch sk.state {
	case stateClose, stateListen, stateSynRecv, stateNewSynRecv:
		// Not connected, or a handshake not yet accepted: the accepted
		// socket has a cookie of its own and is reported then.
		return false
	}
	return true
}

// isListener reports whether a socket waits for peers: a listening TCP
// socket or a bound, unconnected UDP socket.
func isListener(sk sock) bool {
	if sk.proto == protoTCP {
		return sk.state == stateListen
	}
	return sk.src.Port() != 0 && (!sk.dst.IsValid() || sk.dst.Port() == 0)
}

// diff returns the reportable sockets of cur that prev does not hold, and
// the set of cur's keys to compare the next dump with. Sockets still
// waiting in an accept queue are left for a later dump.
func diff(prev map[key]struct{}, cur []sock) (news []sock, next map[key]struct{}) {
	next = make(map[key]struct{}, len(cur))
	listening := listeners(cur)
	for _, sk := range cur {
		k := keyOf(sk)
		if _, dup := next[k]; dup {
			continue
		}
		if _, seen := prev[k]; !seen && pending(sk, listening) {
			continue
		}
		next[k] = struct{}{}
		if _, seen := prev[k]; !seen && reportable(sk) {
			news = append(news, sk)
		}
	}
	return news, next
}

// listenKey is a protocol and local port something listens on.
type listenKey struct {
	proto uint8
	port  uint16
}

func listeners(cur []sock) map[listenKey]bool {
	m := map[listenKey]bool{}
	for _, sk := range cur {
		if sk.proto == protoTCP && sk.state == stateListen {
			m[listenKey{sk.proto, sk.src.Port()}] = true
		}
	}
	return m
}

// event builds the event for a new socket. A connection whose local port
// is a TCP listening port was accepted (ingress): its source is the peer.
func (s *Sensor) event(impl osImpl, now time.Time, mode string, sk sock, listening map[listenKey]bool) ecs.Event {
	ev := ecs.Event{
		Timestamp: now.UTC(),
		Event:     ecs.Meta{Category: ecs.CategoryNetwork, Module: mode},
		Network:   &ecs.Network{Transport: transport(sk.proto), Type: "ipv4"},
	}
	if sk.src.Addr().Is6() {
		ev.Network.Type = "ipv6"
	}
	local := endpoint(sk.src)
	remote := endpoint(sk.dst)
	switch {
	case isListener(sk):
		ev.Event.Type = ecs.TypeStart
		ev.Event.Action = ActionListen
		ev.Source = local
	case sk.origin == originAccept ||
		sk.origin == originDump && sk.proto == protoTCP && listening[listenKey{sk.proto, sk.src.Port()}]:
		ev.Event.Type = ecs.TypeConnection
		ev.Event.Action = ActionAccepted
		ev.Network.Direction = ecs.DirectionIngress
		ev.Source, ev.Destination = remote, local
	default:
		ev.Event.Type = ecs.TypeConnection
		ev.Event.Action = ActionConnected
		ev.Network.Direction = ecs.DirectionEgress
		ev.Source, ev.Destination = local, remote
	}
	if sk.pid != 0 || sk.inode != 0 || sk.origin != originDump {
		p := &ecs.Process{PID: sk.pid}
		if sk.pid != 0 {
			ref, ok := ecs.Parent{}, false
			if s.opts.Process != nil {
				ref, ok = s.opts.Process(sk.pid)
			}
			if !ok || ref.Executable == "" {
				ref, ok = impl.describe(sk.pid)
			}
			if ok {
				p.EntityID, p.Executable, p.Name, p.CommandLine = ref.EntityID, ref.Executable, ref.Name, ref.CommandLine
				if p.Name == "" && p.Executable != "" {
					p.Name = filepath.Base(p.Executable)
				}
			}
			if p.Name == "" {
				// Gone already: the kernel's name for it is all there is.
				p.Name = sk.comm
			}
			if s.opts.Lineage != nil {
				if l, _ := s.opts.Lineage(sk.pid); len(l) > 0 {
					p.Parent = &l[0]
					if len(l) > 1 {
						p.Ancestry = l[1:]
					}
				}
			}
		}
		if mode != ModePoll {
			p.User.ID = strconv.FormatUint(uint64(sk.uid), 10)
		}
		ev.Process = p
	}
	return ev
}

func endpoint(ap netip.AddrPort) *ecs.Endpoint {
	if !ap.IsValid() {
		return nil
	}
	return &ecs.Endpoint{IP: ap.Addr().String(), Port: int(ap.Port())}
}

func transport(proto uint8) string {
	if proto == protoUDP {
		return "udp"
	}
	return "tcp"
}
