// Package uplink is the agent's side of the QUIC connection to the
// collector: it says hello, heartbeats, sends spooled findings in batches
// and deletes them only when the collector acknowledges them as durable,
// receives commands and returns their results, and reconnects with
// jittered exponential backoff whenever the connection is lost.
package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/protocol"
)

// Spool is the durable queue of findings the client drains.
type Spool interface {
	// Peek returns the oldest findings without removing them.
	Peek(max, maxBytes int) ([]*protocol.Finding, error)
	// Ack removes findings the collector has stored.
	Ack(ids []string) error
	// Notify signals that findings were added.
	Notify() <-chan struct{}
}

// Executor runs commands from the collector, each id at most once.
type Executor interface {
	Execute(ctx context.Context, c *protocol.Command) *protocol.CommandResult
}

// Hunter answers hunts from the collector.
type Hunter interface {
	Hunt(ctx context.Context, req *protocol.HuntRequest) *protocol.HuntResult
}

// Config holds what a Client needs.
type Config struct {
	Collector string      // host:port
	TLS       *tls.Config // client certificate and the collector's CA
	Spool     Spool
	Executor  Executor
	// Hunter answers hunts; nil answers each hunt as failed.
	Hunter Hunter
	// Hello and Heartbeat fill in the agent's current state.
	Hello     func() *protocol.Hello
	Heartbeat func() *protocol.Heartbeat
	// Rules applies a rule set pushed by the collector and returns the
	// answer to send back; when nil, rule sets are ignored.
	Rules func(ctx context.Context, rs *protocol.RuleSet) *protocol.RuleSetResult
	// Indicators applies an indicator set pushed by the collector and
	// returns the answer; nil ignores pushed sets.
	Indicators func(ctx context.Context, set *protocol.IndicatorSet) *protocol.IndicatorSetResult
	Logger     *slog.Logger

	// BatchMax and BatchBytes bound one batch (defaults 500 and 1 MiB).
	BatchMax   int
	BatchBytes int
	// BackoffMin and BackoffMax bound the reconnect delay (defaults 500ms
	// and 30s).
	BackoffMin, BackoffMax time.Duration
	// RestartWindow spreads the first reconnection after the collector
	// closed the connection because it is shutting down: each agent waits
	// a random delay in [0, RestartWindow) so a fleet does not come back
	// in one burst (default DefaultRestartWindow).
	RestartWindow time.Duration
	// IdleTimeout closes the connection when nothing was heard from the
	// collector for this long, and KeepAlive is how long a quiet
	// connection waits before it sends a PING (defaults
	// protocol.DefaultIdleTimeout and protocol.DefaultKeepAlive). Together
	// they bound how long a dead link goes unnoticed.
	IdleTimeout, KeepAlive time.Duration
	// AckTimeout is how long a batch may wait for its acknowledgement
	// before the connection is considered broken (default 60s).
	AckTimeout time.Duration
}

// Status is the client's view of its connection.
type Status struct {
	Connected bool
	Since     time.Time // of the current state
	LastError string
	Sent      uint64 // findings acknowledged by the collector
}

// Client keeps the agent connected.
type Client struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	status Status
	conn   *quic.Conn // of the current session, once helloed
}

// New returns a client; Run connects it.
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = 500
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 60 * time.Second
	}
	if cfg.RestartWindow <= 0 {
		cfg.RestartWindow = DefaultRestartWindow
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = protocol.DefaultIdleTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = protocol.DefaultKeepAlive
	}
	return &Client{cfg: cfg, log: cfg.Logger, status: Status{Since: time.Now()}}
}

// Status returns the connection state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

func (c *Client) setConnected(ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.Connected != ok {
		c.status.Since = time.Now()
	}
	c.status.Connected = ok
	if err != nil {
		c.status.LastError = err.Error()
	}
}

// ErrRefused wraps errors that reconnecting will not cure on its own: a
// revoked certificate or a protocol version the collector refuses. The
// client keeps retrying (an operator may fix the collector side), at the
// maximum backoff.
var ErrRefused = errors.New("collector refused this agent")

// Run keeps a session with the collector until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	sched := Schedule{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax, RestartWindow: c.cfg.RestartWindow}
	for {
		helloed, err := c.session(ctx)
		if ctx.Err() != nil {
			c.setConnected(false, nil)
			return nil
		}
		c.setConnected(false, err)
		wait := sched.Next(helloed, err)
		c.log.Warn("collector connection lost; reconnecting", "collector", c.cfg.Collector, "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// session runs one connection; helloed reports whether it got as far as
// the collector's hello acknowledgement.
func (c *Client) session(ctx context.Context) (helloed bool, err error) {
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := quic.DialAddr(dialCtx, c.cfg.Collector, c.cfg.TLS, QUICConfig(c.cfg.IdleTimeout, c.cfg.KeepAlive))
	cancel()
	if err != nil {
		return false, classifyDial(err)
	}
	defer conn.CloseWithError(protocol.CodeShutdown, "agent closing")

	// A refused certificate can surface at any of the first steps, as
	// the handshake's verdict may arrive after the client finished it.
	ctrl, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return false, classifyDial(fmt.Errorf("opening control stream: %w", err))
	}
	ctrlW := protocol.NewFrameWriter(ctrl, 0)
	if err := ctrlW.Write(&protocol.Frame{Body: &protocol.Frame_Hello{Hello: c.cfg.Hello()}}); err != nil {
		// With TLS 1.3 the collector refuses a client certificate after
		// the client's side of the handshake completed: the refusal shows
		// up here.
		return false, classifyDial(fmt.Errorf("sending hello: %w", err))
	}
	ctrlR := protocol.NewFrameReader(ctrl, 0)
	ctrl.SetReadDeadline(time.Now().Add(15 * time.Second))
	f, err := ctrlR.Read()
	ctrl.SetReadDeadline(time.Time{})
	if err != nil {
		return false, classifyDial(fmt.Errorf("reading hello acknowledgement: %w", err))
	}
	if e := f.GetError(); e != nil {
		return false, fmt.Errorf("%w: %s", ErrRefused, e.GetMessage())
	}
	ack := f.GetHelloAck()
	if ack == nil {
		return false, fmt.Errorf("collector answered hello with %T", f.GetBody())
	}
	if err := protocol.CheckVersion(ack.GetVersion()); err != nil {
		return false, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	hb := time.Duration(ack.GetHeartbeatSeconds()) * time.Second
	if hb <= 0 {
		hb = 15 * time.Second
	}
	c.setConnected(true, nil)
	c.setConn(conn)
	defer c.setConn(nil)
	c.log.Info("connected to collector", "collector", c.cfg.Collector)

	g, gctx := errgroup.WithContext(ctx)
	cmds := make(chan *protocol.Command, 64)
	sets := make(chan *protocol.RuleSet, 1)
	hunts := make(chan *protocol.HuntRequest, 64)
	isets := make(chan *protocol.IndicatorSet, 1)
	g.Go(func() error { return c.readControl(gctx, ctrlR, cmds, sets, hunts, isets) })
	g.Go(func() error { return c.applyIndicators(gctx, ctrlW, isets) })
	g.Go(func() error { return c.hunt(gctx, ctrlW, hunts) })
	g.Go(func() error { return c.execute(gctx, ctrlW, cmds) })
	g.Go(func() error { return c.applyRules(gctx, ctrlW, sets) })
	g.Go(func() error { return c.heartbeat(gctx, ctrlW, hb) })
	g.Go(func() error { return c.sendFindings(gctx, conn) })
	g.Go(func() error {
		<-gctx.Done()
		// Unblock the readers.
		ctrl.CancelRead(protocol.CodeShutdown)
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		sayGoodbye(conn, ctrl, ctrlW, "agent stopping")
		return true, nil
	}
	return true, withCloseCause(conn, err)
}

// QUICConfig is the agent's QUIC configuration: idle timeout and
// keep-alive as given (zero for the defaults), and receive windows sized
// for what an agent receives (commands, rule and indicator sets, acks).
func QUICConfig(idle, keepAlive time.Duration) *quic.Config {
	if idle <= 0 {
		idle = protocol.DefaultIdleTimeout
	}
	if keepAlive <= 0 {
		keepAlive = protocol.DefaultKeepAlive
	}
	return &quic.Config{
		HandshakeIdleTimeout: 10 * time.Second,
		MaxIdleTimeout:       idle,
		KeepAlivePeriod:      keepAlive,
	}
}

// goodbyeWait bounds how long a stopping agent waits for the collector to
// take its goodbye.
const goodbyeWait = 2 * time.Second

// sayGoodbye tells the collector this is a clean stop, so it does not
// take the silence that follows for an agent killed or blinded. Every
// other writer of the control stream has returned. The collector closes
// the connection once it has recorded the goodbye; closing first would
// discard the frame.
func sayGoodbye(conn *quic.Conn, ctrl *quic.Stream, w *protocol.FrameWriter, reason string) {
	if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Goodbye{Goodbye: &protocol.Goodbye{Reason: reason}}}); err != nil {
		return
	}
	ctrl.Close()
	select {
	case <-conn.Context().Done():
	case <-time.After(goodbyeWait):
	}
}

// SayGoodbye is sayGoodbye for the load generator's sessions.
func SayGoodbye(conn *quic.Conn, ctrl *quic.Stream, w *protocol.FrameWriter, reason string) {
	sayGoodbye(conn, ctrl, w, reason)
}

// classifyDial turns handshake refusals into ErrRefused with a message a
// person can act on.
func classifyDial(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode.IsCryptoError() {
		return fmt.Errorf("%w: the collector rejected this agent's certificate (agent revoked, unknown to this collector, or enrolled with another collector): %v", ErrRefused, err)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == protocol.CodeVersion {
		return fmt.Errorf("%w: %s", ErrRefused, ae.ErrorMessage)
	}
	return err
}

func (c *Client) readControl(ctx context.Context, r *protocol.FrameReader, cmds chan<- *protocol.Command, sets chan *protocol.RuleSet, hunts chan<- *protocol.HuntRequest, isets chan *protocol.IndicatorSet) error {
	for {
		f, err := r.Read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading control stream: %w", err)
		}
		switch b := f.GetBody().(type) {
		case *protocol.Frame_Command:
			select {
			case cmds <- b.Command:
			case <-ctx.Done():
				return ctx.Err()
			}
		case *protocol.Frame_RuleSet:
			// Only the newest set matters: one still waiting is dropped.
			select {
			case <-sets:
			default:
			}
			sets <- b.RuleSet
		case *protocol.Frame_IndicatorSet:
			select {
			case <-isets:
			default:
			}
			isets <- b.IndicatorSet
		case *protocol.Frame_HuntRequest:
			select {
			case hunts <- b.HuntRequest:
			case <-ctx.Done():
				return ctx.Err()
			}
		case *protocol.Frame_Error:
			return fmt.Errorf("collector closed the control stream: %s: %s", b.Error.GetCode(), b.Error.GetMessage())
		default:
			c.log.Warn("ignoring unexpected frame on the control stream", "type", fmt.Sprintf("%T", b))
		}
	}
}

// execute runs commands one at a time, in the order they arrived.
func (c *Client) execute(ctx context.Context, w *protocol.FrameWriter, cmds <-chan *protocol.Command) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cmd := <-cmds:
			c.log.Info("command received", "command", cmd.GetId(), "action", cmd.GetAction())
			res := c.cfg.Executor.Execute(ctx, cmd)
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_CommandResult{CommandResult: res}}); err != nil {
				return fmt.Errorf("sending result of command %s: %w", cmd.GetId(), err)
			}
			// A command may have changed what the heartbeat reports (the
			// isolation), so the collector hears of it at once.
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Heartbeat{Heartbeat: c.cfg.Heartbeat()}}); err != nil {
				return fmt.Errorf("sending heartbeat: %w", err)
			}
		}
	}
}

// applyRules applies the rule sets the collector sends, one at a time,
// answering each and heartbeating so the collector sees the new version.
func (c *Client) applyRules(ctx context.Context, w *protocol.FrameWriter, sets <-chan *protocol.RuleSet) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case rs := <-sets:
			if c.cfg.Rules == nil {
				c.log.Warn("ignoring a rule set: this agent does not take pushed rules", "version", rs.GetVersion())
				continue
			}
			c.log.Info("rule set received", "version", rs.GetVersion(), "files", len(rs.GetFiles()))
			res := c.cfg.Rules(ctx, rs)
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_RuleSetResult{RuleSetResult: res}}); err != nil {
				return fmt.Errorf("sending the result of rule set %s: %w", rs.GetVersion(), err)
			}
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Heartbeat{Heartbeat: c.cfg.Heartbeat()}}); err != nil {
				return fmt.Errorf("sending heartbeat: %w", err)
			}
		}
	}
}

// applyIndicators applies the indicator sets the collector sends, one at
// a time, answering each and heartbeating so the collector sees the new
// version.
func (c *Client) applyIndicators(ctx context.Context, w *protocol.FrameWriter, sets <-chan *protocol.IndicatorSet) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case set := <-sets:
			if c.cfg.Indicators == nil {
				c.log.Warn("ignoring an indicator set: this agent does not take them", "version", set.GetVersion())
				continue
			}
			c.log.Info("indicator set received", "version", set.GetVersion(), "indicators", len(set.GetIndicators()))
			res := c.cfg.Indicators(ctx, set)
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_IndicatorSetResult{IndicatorSetResult: res}}); err != nil {
				return fmt.Errorf("sending the result of indicator set %s: %w", set.GetVersion(), err)
			}
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Heartbeat{Heartbeat: c.cfg.Heartbeat()}}); err != nil {
				return fmt.Errorf("sending heartbeat: %w", err)
			}
		}
	}
}

// hunt answers hunts one at a time, apart from commands so that a long
// hunt never delays a containment command.
func (c *Client) hunt(ctx context.Context, w *protocol.FrameWriter, hunts <-chan *protocol.HuntRequest) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-hunts:
			if exp := req.GetExpiresUnixNano(); exp > 0 && time.Now().UnixNano() >= exp {
				continue
			}
			c.log.Info("hunt received", "hunt", req.GetId(), "query", req.GetQuery())
			var res *protocol.HuntResult
			if c.cfg.Hunter == nil {
				res = &protocol.HuntResult{Id: req.GetId(), Status: "failed", Reason: "this agent does not answer hunts", FinishedUnixNano: time.Now().UnixNano()}
			} else {
				res = c.cfg.Hunter.Hunt(ctx, req)
			}
			if ctx.Err() != nil {
				return ctx.Err() // the collector sends the hunt again on the next connection
			}
			if err := w.Write(&protocol.Frame{Body: &protocol.Frame_HuntResult{HuntResult: res}}); err != nil {
				return fmt.Errorf("sending the answer to hunt %s: %w", req.GetId(), err)
			}
		}
	}
}

func (c *Client) heartbeat(ctx context.Context, w *protocol.FrameWriter, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_Heartbeat{Heartbeat: c.cfg.Heartbeat()}}); err != nil {
			return fmt.Errorf("sending heartbeat: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sendFindings drains the spool: one batch in flight, deleted from the
// spool only when the collector acknowledges it. A batch that was sent
// but not acknowledged before a disconnect is sent again on the next
// connection; the collector stores each finding id once.
func (c *Client) sendFindings(ctx context.Context, conn *quic.Conn) error {
	var (
		st  *quic.Stream
		r   *protocol.FrameReader
		w   *protocol.FrameWriter
		seq uint64
	)
	defer func() {
		if st != nil {
			st.CancelRead(protocol.CodeShutdown)
			st.Close()
		}
	}()
	notify := c.cfg.Spool.Notify()
	for {
		batch, err := c.cfg.Spool.Peek(c.cfg.BatchMax, c.cfg.BatchBytes)
		if err != nil {
			return fmt.Errorf("reading spool: %w", err)
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-notify:
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if st == nil {
			// The stream opens with its first batch.
			if st, err = conn.OpenStreamSync(ctx); err != nil {
				return fmt.Errorf("opening findings stream: %w", err)
			}
			r = protocol.NewFrameReader(st, 0)
			w = protocol.NewFrameWriter(st, 0)
		}
		seq++
		if err := w.Write(&protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: seq, Findings: batch}}}); err != nil {
			return fmt.Errorf("sending batch %d: %w", seq, err)
		}
		st.SetReadDeadline(time.Now().Add(c.cfg.AckTimeout))
		f, err := r.Read()
		st.SetReadDeadline(time.Time{})
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("waiting for acknowledgement of batch %d: %w", seq, err)
		}
		if e := f.GetError(); e != nil {
			return fmt.Errorf("collector refused batch %d: %s: %s", seq, e.GetCode(), e.GetMessage())
		}
		ack := f.GetBatchAck()
		if ack == nil || ack.GetSeq() != seq {
			return fmt.Errorf("collector answered batch %d with %s", seq, strings.TrimSpace(fmt.Sprint(f)))
		}
		ids := make([]string, len(batch))
		for i, fd := range batch {
			ids[i] = fd.GetId()
		}
		if err := c.cfg.Spool.Ack(ids); err != nil {
			return fmt.Errorf("removing acknowledged findings from the spool: %w", err)
		}
		c.mu.Lock()
		c.status.Sent += uint64(len(batch))
		c.mu.Unlock()
		c.log.Debug("batch acknowledged", "seq", seq, "findings", len(batch), "stored", ack.GetStored(), "duplicates", ack.GetDuplicates())
	}
}
