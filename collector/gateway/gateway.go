// Package gateway is the collector's QUIC endpoint for agents: it
// enrolls new agents, authenticates the others by their client
// certificate, and serves each agent's control stream (hello, heartbeats,
// commands and results) and findings stream (batches acknowledged once
// durable). A bad frame closes the stream it came on, never the server.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/collector/pki"
	"github.com/cordon-edr/cordon/protocol"
)

// Config holds what a Server needs.
type Config struct {
	// Listen is the UDP address, e.g. ":7443" or "127.0.0.1:0".
	Listen   string
	CA       *pki.CA
	Registry Registry
	Enroller Enroller
	Ingest   Ingest
	Commands Commands
	// Rules, when set, has the current pushed rule set delivered to
	// every agent whose hello reports another version.
	Rules Rules
	// Indicators, when set, has the current indicator set delivered to
	// every agent whose hello reports another version.
	Indicators Indicators
	// Health, when set, hears of hellos, heartbeats and goodbyes.
	Health Health
	// Hunts delivers hunts on the control stream; optional.
	Hunts  Hunts
	Logger *slog.Logger
	// Heartbeat is the interval agents are asked to heartbeat at
	// (default 15s).
	Heartbeat time.Duration
	// MaxFrame caps frames from agents (default protocol.MaxFrameSize).
	MaxFrame int
	// IdleTimeout closes an agent's connection when nothing was heard
	// from it for this long, and KeepAlive is how long a quiet connection
	// waits before it sends a PING (defaults protocol.DefaultIdleTimeout
	// and protocol.DefaultKeepAlive). The lower of the collector's and
	// the agent's idle timeouts applies to the connection.
	IdleTimeout, KeepAlive time.Duration
}

// Limits on what an agent may send before it has proven anything.
const (
	enrollFrameMax = 64 << 10
	enrollTimeout  = 15 * time.Second
	helloTimeout   = 15 * time.Second
	// commandRescan is how often pending commands are looked at again
	// without a notification, to expire and redeliver them.
	commandRescan = 10 * time.Second
)

// Server accepts agent connections.
type Server struct {
	cfg Config
	log *slog.Logger
	ln  *quic.Listener

	mu    sync.Mutex
	conns map[string]*quic.Conn // agent id → its current connection

	refused refusals
}

// New opens the UDP listener; Run serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = protocol.MaxFrameSize
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = protocol.DefaultIdleTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = protocol.DefaultKeepAlive
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: map[string]*quic.Conn{}}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{protocol.ALPN},
		Certificates: []tls.Certificate{cfg.CA.ServerCertificate()},
		// Agents that are not enrolled yet connect without a certificate
		// and may only enroll; any certificate given must be ours and
		// name a known agent that is not revoked, or the handshake fails.
		ClientAuth: tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			id, cert, err := cfg.CA.VerifyAgent(raw)
			if err != nil {
				s.refused.add(RefusedCertificate)
				s.log.Warn("refused agent certificate", "err", err)
				return err
			}
			if err := cfg.Registry.Authorize(id, cert); err != nil {
				s.refused.add(RefusedAgent)
				s.log.Warn("refused agent", "agent", id, "err", err)
				return err
			}
			return nil
		},
	}
	ln, err := quic.ListenAddr(cfg.Listen, tlsConf, &quic.Config{
		MaxIdleTimeout:        cfg.IdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlive,
		MaxIncomingStreams:    16,
		MaxIncomingUniStreams: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("listening for agents on %s: %w", cfg.Listen, err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run accepts connections until ctx ends, then closes every connection.
func (s *Server) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		return s.ln.Close()
	})
	g.Go(func() error {
		for {
			conn, err := s.ln.Accept(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("accepting agent connection: %w", err)
			}
			g.Go(func() error {
				s.serve(ctx, conn)
				return nil
			})
		}
	})
	return g.Wait()
}

func (s *Server) serve(ctx context.Context, conn *quic.Conn) {
	peer := conn.ConnectionState().TLS.PeerCertificates
	if len(peer) == 0 {
		s.serveEnroll(ctx, conn)
		return
	}
	// The handshake verified the certificate; its common name is the
	// agent's identity, whatever any message says.
	agentID := peer[0].Subject.CommonName
	log := s.log.With("agent", agentID, "remote", conn.RemoteAddr().String())
	a := &agentConn{s: s, conn: conn, id: agentID, log: log}
	a.run(ctx)
}

func (s *Server) serveEnroll(ctx context.Context, conn *quic.Conn) {
	log := s.log.With("remote", conn.RemoteAddr().String())
	ctx, cancel := context.WithTimeout(ctx, enrollTimeout)
	defer cancel()
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		s.refused.add(RefusedEnrollment)
		log.Warn("enrollment refused", "err", "no enrollment request")
		conn.CloseWithError(protocol.CodeAuth, "no enrollment request")
		return
	}
	st.SetDeadline(time.Now().Add(enrollTimeout))
	resp, code, err := s.enroll(ctx, st)
	if err != nil {
		s.refused.add(RefusedEnrollment)
		log.Warn("enrollment refused", "err", err)
		_ = protocol.WriteFrame(st, protocol.ErrorFrameOf(code, err.Error()))
	} else {
		log.Info("agent enrolled", "agent", resp.AgentId)
		_ = protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_EnrollResponse{EnrollResponse: resp}})
	}
	st.Close()
	// Give the response time to reach the agent; it closes the connection.
	select {
	case <-conn.Context().Done():
	case <-time.After(5 * time.Second):
		conn.CloseWithError(protocol.CodeOK, "")
	}
}

func (s *Server) enroll(ctx context.Context, st *quic.Stream) (*protocol.EnrollResponse, string, error) {
	f, err := protocol.NewFrameReader(st, enrollFrameMax).Read()
	if err != nil {
		return nil, protocol.ErrorFrame, fmt.Errorf("reading enrollment request: %w", err)
	}
	req := f.GetEnrollRequest()
	if req == nil {
		return nil, protocol.ErrorAuth, errors.New("a connection without a client certificate may only enroll")
	}
	if err := protocol.CheckVersion(req.GetVersion()); err != nil {
		return nil, protocol.ErrorVersion, err
	}
	if len(req.GetCsrDer()) == 0 {
		return nil, protocol.ErrorInvalid, errors.New("enrollment request carries no certificate request")
	}
	id, certDER, err := s.cfg.Enroller.Redeem(ctx, req.GetToken(), req.GetHost(), req.GetTags(),
		func(agentID string) ([]byte, time.Time, error) {
			return s.cfg.CA.SignAgent(agentID, req.GetCsrDer())
		})
	if err != nil {
		return nil, protocol.ErrorAuth, err
	}
	return &protocol.EnrollResponse{AgentId: id, CertificateDer: certDER, CaDer: s.cfg.CA.Certificate().Raw}, "", nil
}

// register makes conn the agent's current connection, closing an older
// one (an agent that reconnected before its old connection timed out).
func (s *Server) register(id string, conn *quic.Conn) {
	s.mu.Lock()
	old := s.conns[id]
	s.conns[id] = conn
	s.mu.Unlock()
	if old != nil && old != conn {
		old.CloseWithError(protocol.CodeShutdown, "replaced by a newer connection")
	}
}

// unregister reports whether conn was still the agent's current one.
func (s *Server) unregister(id string, conn *quic.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[id] != conn {
		return false
	}
	delete(s.conns, id)
	return true
}

// agentConn serves one authenticated agent connection.
type agentConn struct {
	s    *Server
	conn *quic.Conn
	id   string
	log  *slog.Logger
}

func (a *agentConn) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The connection's end ends everything that serves it (without a
	// goroutine of its own waiting for that).
	stop := context.AfterFunc(a.conn.Context(), cancel)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := a.conn.AcceptStream(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("agent connection ended", "err", err)
			}
			a.conn.CloseWithError(protocol.CodeShutdown, "")
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serveStream(ctx, st)
		}()
	}
}

// serveStream reads the stream's first frame to learn its kind.
func (a *agentConn) serveStream(ctx context.Context, st *quic.Stream) {
	fr := protocol.NewFrameReader(st, a.s.cfg.MaxFrame)
	st.SetReadDeadline(time.Now().Add(helloTimeout))
	f, err := fr.Read()
	st.SetReadDeadline(time.Time{})
	if err != nil {
		a.refuse(st, protocol.ErrorFrame, protocol.CodeFrame, fmt.Errorf("reading first frame of stream: %w", err))
		return
	}
	switch {
	case f.GetHello() != nil:
		a.serveControl(ctx, st, fr, f.GetHello())
	case f.GetFindingBatch() != nil:
		a.serveFindings(ctx, st, fr, f.GetFindingBatch())
	default:
		a.refuse(st, protocol.ErrorProtocol, protocol.CodeProtocol, fmt.Errorf("unexpected %T opening a stream", f.GetBody()))
	}
}

// refuse sends an Error frame and closes the stream both ways.
func (a *agentConn) refuse(st *quic.Stream, code string, qcode quic.StreamErrorCode, err error) {
	a.s.refused.add(code)
	a.log.Warn("closing agent stream", "stream", st.StreamID(), "code", code, "err", err)
	_ = protocol.WriteFrame(st, protocol.ErrorFrameOf(code, err.Error()))
	st.CancelRead(qcode)
	st.Close()
}

func (a *agentConn) serveControl(ctx context.Context, st *quic.Stream, fr *protocol.FrameReader, hello *protocol.Hello) {
	if err := protocol.CheckVersion(hello.GetVersion()); err != nil {
		a.refuse(st, protocol.ErrorVersion, protocol.CodeVersion, err)
		// Closing at once would discard the Error frame: give the agent
		// a moment to read it and hang up itself.
		select {
		case <-a.conn.Context().Done():
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		a.conn.CloseWithError(protocol.CodeVersion, err.Error())
		return
	}
	a.s.register(a.id, a.conn)
	if err := a.s.cfg.Registry.Connected(ctx, a.id, hello, a.conn.RemoteAddr().String()); err != nil {
		a.refuse(st, protocol.ErrorInternal, protocol.CodeInternal, fmt.Errorf("recording agent connection: %w", err))
		return
	}
	defer func() {
		if a.s.unregister(a.id, a.conn) {
			a.s.cfg.Registry.Disconnected(a.id)
			a.log.Info("agent disconnected", "cause", disconnectCause(a.conn))
		}
	}()
	a.log.Info("agent connected", "host", hello.GetHost().GetHostname(), "modes", hello.GetSensorModes())
	if h := a.s.cfg.Health; h != nil {
		h.Seen(a.id)
	}

	w := protocol.NewFrameWriter(st, 0)
	if err := w.Write(&protocol.Frame{Body: &protocol.Frame_HelloAck{HelloAck: &protocol.HelloAck{
		Version:            protocol.CurrentVersion(),
		AgentId:            a.id,
		ServerTimeUnixNano: time.Now().UnixNano(),
		HeartbeatSeconds:   uint32(a.s.cfg.Heartbeat / time.Second),
	}}}); err != nil {
		a.log.Warn("writing hello ack", "err", err)
		return
	}

	// The stream is read on this goroutine. What the collector sends on
	// it is written by a goroutine that exists only while there is
	// something to send: goroutines are most of what an idle agent costs
	// the collector.
	ctx, cancel := context.WithCancel(ctx)
	d := newDeliverer(ctx, a, w, hello, func() {
		if ctx.Err() == nil {
			st.CancelRead(protocol.CodeShutdown) // unblocks readControl
		}
	})
	err := a.readControl(ctx, st, fr)
	cancel()
	if derr := d.close(); derr != nil && !errors.Is(derr, context.Canceled) {
		err = derr // the read failed because delivery did
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errGoodbye) {
		a.log.Info("control stream ended", "err", err)
	}
	st.CancelRead(protocol.CodeShutdown)
	st.Close()
}

// disconnectCause says why a connection ended, or that it is still open
// (the control stream ended on its own).
func disconnectCause(conn *quic.Conn) string {
	select {
	case <-conn.Context().Done():
	default:
		return "control stream ended"
	}
	err := context.Cause(conn.Context())
	var idle *quic.IdleTimeoutError
	if errors.As(err, &idle) {
		return "no packet from the agent within the idle timeout: link or agent gone"
	}
	if err == nil {
		return "closed"
	}
	return err.Error()
}

// errGoodbye ends a control stream after the agent's goodbye.
var errGoodbye = errors.New("agent said goodbye")

func (a *agentConn) readControl(ctx context.Context, st *quic.Stream, fr *protocol.FrameReader) error {
	for {
		f, err := fr.Read()
		if err != nil {
			if errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, protocol.ErrMalformedFrame) {
				a.refuse(st, protocol.ErrorFrame, protocol.CodeFrame, err)
			}
			return fmt.Errorf("reading control stream: %w", err)
		}
		switch b := f.GetBody().(type) {
		case *protocol.Frame_Heartbeat:
			if err := a.s.cfg.Registry.Heartbeat(ctx, a.id, b.Heartbeat); err != nil {
				return fmt.Errorf("recording heartbeat: %w", err)
			}
			if h := a.s.cfg.Health; h != nil {
				h.Heartbeat(a.id, b.Heartbeat)
			}
		case *protocol.Frame_Goodbye:
			a.log.Info("agent said goodbye", "reason", b.Goodbye.GetReason())
			if h := a.s.cfg.Health; h != nil {
				h.Goodbye(a.id, b.Goodbye.GetReason())
			}
			// The agent waits for this close to know its goodbye arrived.
			a.conn.CloseWithError(protocol.CodeOK, "goodbye")
			return errGoodbye
		case *protocol.Frame_RuleSetResult:
			res := b.RuleSetResult
			if res.GetOk() {
				a.log.Info("agent applied rule set", "version", res.GetVersion(), "rules", res.GetRules())
			} else {
				a.log.Warn("agent refused rule set", "version", res.GetVersion(), "err", res.GetError())
			}
			if a.s.cfg.Rules != nil {
				if err := a.s.cfg.Rules.Result(ctx, a.id, res); err != nil {
					a.log.Warn("recording rule set result", "version", res.GetVersion(), "err", err)
				}
			}
		case *protocol.Frame_IndicatorSetResult:
			res := b.IndicatorSetResult
			if res.GetOk() {
				a.log.Info("agent applied indicator set", "version", res.GetVersion(), "indicators", res.GetIndicators())
			} else {
				a.log.Warn("agent refused indicator set", "version", res.GetVersion(), "err", res.GetError())
			}
			if a.s.cfg.Indicators != nil {
				if err := a.s.cfg.Indicators.Result(ctx, a.id, res); err != nil {
					a.log.Warn("recording indicator set result", "version", res.GetVersion(), "err", err)
				}
			}
		case *protocol.Frame_CommandResult:
			if err := a.s.cfg.Commands.Finished(ctx, a.id, b.CommandResult); err != nil {
				a.log.Warn("recording command result", "command", b.CommandResult.GetId(), "err", err)
			}
		case *protocol.Frame_HuntResult:
			if a.s.cfg.Hunts == nil {
				a.log.Warn("hunt result without a hunt store", "hunt", b.HuntResult.GetId())
				continue
			}
			if err := a.s.cfg.Hunts.Answered(ctx, a.id, b.HuntResult); err != nil {
				a.log.Warn("recording hunt result", "hunt", b.HuntResult.GetId(), "err", err)
			}
		default:
			err := fmt.Errorf("unexpected %T on the control stream", b)
			a.refuse(st, protocol.ErrorProtocol, protocol.CodeProtocol, err)
			return err
		}
	}
}

// What a control stream carries from the collector, as bits of
// deliverer.pending: each is looked at in this order.
const (
	sendCommands uint8 = 1 << iota
	sendHunts
	sendRules
	sendIndicators
	sendAll = sendCommands | sendHunts | sendRules | sendIndicators
)

// deliverer sends the agent what its control stream carries from the
// collector: pending commands and hunts, and the current rule and
// indicator sets. It keeps no goroutine while there is nothing to send:
// the stores call it when there is news (commands and hunts for this
// agent, a set pushed), a timer every commandRescan (to redeliver and
// expire commands and hunts), and a pass on a goroutine of its own then
// sends what is due and ends. At most one pass runs at a time, so writes
// to the stream stay serialized and the delivery state is the pass's
// alone.
type deliverer struct {
	ctx  context.Context
	a    *agentConn
	w    *protocol.FrameWriter
	fail func() // ends the control stream after a failed delivery
	d    delivery

	stops []func()
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending uint8 // what to look at on the next pass
	running bool  // a pass is running
	closed  bool
	err     error // why delivery failed
	timer   *time.Timer
}

// newDeliverer starts delivering to the agent: a first pass looks at
// everything.
func newDeliverer(ctx context.Context, a *agentConn, w *protocol.FrameWriter, hello *protocol.Hello, fail func()) *deliverer {
	cfg := a.s.cfg
	d := &deliverer{ctx: ctx, a: a, w: w, fail: fail, d: delivery{
		rules: hello.GetRulesVersion(), iocs: hello.GetIocsVersion(),
		rulesRunning: hello.GetRulesVersion(), iocsRunning: hello.GetIocsVersion(),
	}}
	d.stops = append(d.stops, cfg.Commands.Notify(a.id, func() { d.want(sendCommands) }))
	if cfg.Hunts != nil {
		d.stops = append(d.stops, cfg.Hunts.Notify(a.id, func() { d.want(sendHunts) }))
	}
	if cfg.Rules != nil {
		d.stops = append(d.stops, cfg.Rules.Notify(func() { d.want(sendRules) }))
	}
	if cfg.Indicators != nil {
		d.stops = append(d.stops, cfg.Indicators.Notify(func() { d.want(sendIndicators) }))
	}
	d.mu.Lock()
	d.timer = time.AfterFunc(commandRescan, d.rescan)
	d.mu.Unlock()
	d.want(sendAll)
	return d
}

// rescan looks at commands and hunts again, and again after commandRescan.
func (d *deliverer) rescan() {
	d.want(sendCommands | sendHunts)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.timer.Reset(commandRescan)
	}
}

// want has what is marked looked at by the running pass, or by a new one.
// It never blocks for long: the stores call it.
func (d *deliverer) want(what uint8) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.pending |= what
	if d.running {
		return
	}
	d.running = true
	d.wg.Add(1)
	go d.pass()
}

// pass sends what is due until nothing is, then ends.
func (d *deliverer) pass() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		what := d.pending
		d.pending = 0
		if what == 0 || d.closed {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		if err := d.send(what); err != nil {
			d.mu.Lock()
			d.running, d.closed, d.err = false, true, err
			d.mu.Unlock()
			d.fail()
			return
		}
	}
}

func (d *deliverer) send(what uint8) error {
	a, cfg := d.a, d.a.s.cfg
	if what&sendCommands != 0 {
		if err := sendPending(d.ctx, a, d.w, commandItems(cfg.Commands), &d.d.cmds); err != nil {
			return err
		}
	}
	if what&sendHunts != 0 && cfg.Hunts != nil {
		if err := sendPending(d.ctx, a, d.w, huntItems(cfg.Hunts), &d.d.hunts); err != nil {
			return err
		}
	}
	if what&sendRules != 0 && cfg.Rules != nil {
		if err := sendSet(d.ctx, a, d.w, ruleSets, cfg.Rules, &d.d.rules, d.d.rulesRunning); err != nil {
			return err
		}
	}
	if what&sendIndicators != 0 && cfg.Indicators != nil {
		if err := sendSet(d.ctx, a, d.w, indicatorSets, cfg.Indicators, &d.d.iocs, d.d.iocsRunning); err != nil {
			return err
		}
	}
	return nil
}

// close stops delivering, waits for a running pass (which ends soon once
// the context is done) and returns why delivery failed, if it did.
func (d *deliverer) close() error {
	d.mu.Lock()
	d.closed = true
	d.timer.Stop()
	d.mu.Unlock()
	for _, stop := range d.stops {
		stop()
	}
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// delivery is what was sent on this connection.
type delivery struct {
	cmds, hunts               map[string]bool // ids sent; nil until one is
	rules, iocs               string          // versions sent (or running)
	rulesRunning, iocsRunning string          // versions in the hello
}

// pendingKind is how the gateway sends one kind of item queued for an
// agent until it answers: commands or hunts.
type pendingKind[T interface{ GetId() string }] struct {
	name      string // in messages: "command"
	pending   func(ctx context.Context, agentID string) ([]T, error)
	delivered func(ctx context.Context, agentID, id string) error
	frame     func(T) *protocol.Frame // the item in its frame
	attrs     func(T) []any           // logged with the delivery besides the id
}

// commandItems sends commands at least once: a command delivered on an
// earlier connection is sent again, and the agent executes each id at
// most once.
func commandItems(cmds Commands) pendingKind[*protocol.Command] {
	return pendingKind[*protocol.Command]{
		name:    "command",
		pending: cmds.Pending,
		delivered: func(ctx context.Context, _, id string) error {
			return cmds.Delivered(ctx, id)
		},
		frame: func(c *protocol.Command) *protocol.Frame {
			return &protocol.Frame{Body: &protocol.Frame_Command{Command: c}}
		},
		attrs: func(c *protocol.Command) []any { return []any{"action", c.GetAction()} },
	}
}

// huntItems sends the hunts the agent has not answered: a hunt sent on
// an earlier connection is sent again, and the agent answering it twice
// changes nothing.
func huntItems(hunts Hunts) pendingKind[*protocol.HuntRequest] {
	return pendingKind[*protocol.HuntRequest]{
		name:      "hunt",
		pending:   hunts.Pending,
		delivered: hunts.Delivered,
		frame: func(h *protocol.HuntRequest) *protocol.Frame {
			return &protocol.Frame{Body: &protocol.Frame_HuntRequest{HuntRequest: h}}
		},
		attrs: func(*protocol.HuntRequest) []any { return nil },
	}
}

// sendPending sends the agent's pending items of a kind not yet sent on
// this connection (their ids in *sentp, a map made at the first one),
// and marks each delivered.
func sendPending[T interface{ GetId() string }](ctx context.Context, a *agentConn, w *protocol.FrameWriter, kind pendingKind[T], sentp *map[string]bool) error {
	items, err := kind.pending(ctx, a.id)
	if err != nil {
		return fmt.Errorf("reading pending %ss: %w", kind.name, err)
	}
	sent := *sentp
	for _, it := range items {
		id := it.GetId()
		if sent[id] {
			continue
		}
		if err := w.Write(kind.frame(it)); err != nil {
			return fmt.Errorf("sending %s %s: %w", kind.name, id, err)
		}
		if sent == nil {
			sent = map[string]bool{}
			*sentp = sent
		}
		sent[id] = true
		if err := kind.delivered(ctx, a.id, id); err != nil {
			a.log.Warn("marking "+kind.name+" delivered", kind.name, id, "err", err)
		}
		a.log.Info(kind.name+" delivered", append([]any{kind.name, id}, kind.attrs(it)...)...)
	}
	return nil
}

// pushedSets is a store of one kind of set pushed to the fleet, as the
// gateway reads it: Rules or Indicators.
type pushedSets[S versioned] interface {
	Current(ctx context.Context) (S, error)
	Notify(f func()) (stop func())
}

type versioned interface{ GetVersion() string }

// setKind is how the gateway sends one kind of pushed set.
type setKind[S versioned] struct {
	name  string                  // in messages: "rule set"
	frame func(S) *protocol.Frame // the set in its frame
	size  func(S) (string, int)   // what it holds and how many, for the log
}

var (
	ruleSets = setKind[*protocol.RuleSet]{
		name: "rule set",
		frame: func(rs *protocol.RuleSet) *protocol.Frame {
			return &protocol.Frame{Body: &protocol.Frame_RuleSet{RuleSet: rs}}
		},
		size: func(rs *protocol.RuleSet) (string, int) { return "files", len(rs.GetFiles()) },
	}
	indicatorSets = setKind[*protocol.IndicatorSet]{
		name: "indicator set",
		frame: func(set *protocol.IndicatorSet) *protocol.Frame {
			return &protocol.Frame{Body: &protocol.Frame_IndicatorSet{IndicatorSet: set}}
		},
		size: func(set *protocol.IndicatorSet) (string, int) { return "indicators", len(set.GetIndicators()) },
	}
)

// sendSet sends the current set of a kind when it differs from *sent, the
// version the agent reported in its hello or the last one sent: each
// version goes at most once per connection, so a set the agent refused is
// not sent again until the next push or reconnection.
func sendSet[S versioned](ctx context.Context, a *agentConn, w *protocol.FrameWriter, kind setKind[S], sets pushedSets[S], sent *string, running string) error {
	cur, err := sets.Current(ctx)
	if err != nil {
		return fmt.Errorf("reading the current %s: %w", kind.name, err)
	}
	// Every stored set has a version; none means none was pushed.
	if v := cur.GetVersion(); v != "" && v != *sent {
		if err := w.Write(kind.frame(cur)); err != nil {
			return fmt.Errorf("sending %s %s: %w", kind.name, v, err)
		}
		*sent = v
		what, n := kind.size(cur)
		a.log.Info(kind.name+" delivered", "version", v, what, n, "running", running)
	}
	return nil
}

func (a *agentConn) serveFindings(ctx context.Context, st *quic.Stream, fr *protocol.FrameReader, first *protocol.FindingBatch) {
	w := protocol.NewFrameWriter(st, 0)
	batch := first
	for {
		stored, dups, err := a.s.cfg.Ingest.Append(ctx, a.id, batch.GetFindings())
		if err != nil {
			if ctx.Err() != nil {
				st.CancelRead(protocol.CodeShutdown)
				st.Close()
				return
			}
			a.refuse(st, protocol.ErrorInvalid, protocol.CodeInternal, fmt.Errorf("storing batch %d: %w", batch.GetSeq(), err))
			return
		}
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_BatchAck{BatchAck: &protocol.BatchAck{
			Seq: batch.GetSeq(), Stored: uint32(stored), Duplicates: uint32(dups),
		}}}); err != nil {
			a.log.Debug("writing batch ack", "err", err)
			return
		}
		a.log.Debug("batch stored", "seq", batch.GetSeq(), "stored", stored, "duplicates", dups)
		f, err := fr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				st.Close()
				return
			}
			if errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, protocol.ErrMalformedFrame) {
				a.refuse(st, protocol.ErrorFrame, protocol.CodeFrame, err)
			} else {
				a.log.Debug("findings stream ended", "err", err)
			}
			return
		}
		if batch = f.GetFindingBatch(); batch == nil {
			a.refuse(st, protocol.ErrorProtocol, protocol.CodeProtocol, fmt.Errorf("unexpected %T on the findings stream", f.GetBody()))
			return
		}
	}
}
