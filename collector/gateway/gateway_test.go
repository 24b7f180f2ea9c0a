package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/collector/pki"
	"github.com/cordon-edr/cordon/collector/wake"
	"github.com/cordon-edr/cordon/protocol"
)

// fake is an in-memory backend.
type fake struct {
	mu        sync.Mutex
	agents    map[string]bool // id → revoked
	tokens    map[string]int  // token → uses left
	findings  map[string]bool
	connected map[string]bool
	results   []*protocol.CommandResult
	pending   []*protocol.Command
	wake      wake.Waiters // by agent
}

func newFake() *fake {
	return &fake{agents: map[string]bool{}, tokens: map[string]int{"good": 1}, findings: map[string]bool{},
		connected: map[string]bool{}}
}

func (f *fake) Authorize(id string, _ *x509.Certificate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	revoked, ok := f.agents[id]
	if !ok {
		return errors.New("unknown agent")
	}
	if revoked {
		return errors.New("agent revoked")
	}
	return nil
}

func (f *fake) Connected(_ context.Context, id string, _ *protocol.Hello, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected[id] = true
	return nil
}

func (f *fake) Heartbeat(context.Context, string, *protocol.Heartbeat) error { return nil }

func (f *fake) Disconnected(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected[id] = false
}

func (f *fake) Redeem(_ context.Context, token string, _ *protocol.HostFacts, _ map[string]string,
	issue func(string) ([]byte, time.Time, error)) (string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokens[token] <= 0 {
		return "", nil, errors.New("enrollment token unknown or used up")
	}
	id := "agent-" + string(rune('a'+len(f.agents)))
	der, _, err := issue(id)
	if err != nil {
		return "", nil, err
	}
	f.tokens[token]--
	f.agents[id] = false
	return id, der, nil
}

func (f *fake) Append(_ context.Context, _ string, fs []*protocol.Finding) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, dups := 0, 0
	for _, fd := range fs {
		if f.findings[fd.GetId()] {
			dups++
			continue
		}
		f.findings[fd.GetId()] = true
		stored++
	}
	return stored, dups, nil
}

func (f *fake) Pending(context.Context, string) ([]*protocol.Command, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*protocol.Command(nil), f.pending...), nil
}

func (f *fake) Delivered(context.Context, string) error { return nil }

func (f *fake) Finished(_ context.Context, _ string, r *protocol.CommandResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
	f.pending = nil
	return nil
}

func (f *fake) Notify(id string, fn func()) (stop func()) { return f.wake.Notify(id, fn) }

// queue adds a command for agent id and wakes its connection, as the
// command queue does.
func (f *fake) queue(id string, c *protocol.Command) {
	f.mu.Lock()
	f.pending = append(f.pending, c)
	f.mu.Unlock()
	f.wake.Wake(id)
}

type env struct {
	t    *testing.T
	be   *fake
	ca   *pki.CA
	addr string
}

// start runs a server over the fake backend, with what configure adds.
func start(t *testing.T, configure ...func(*Config)) *env {
	t.Helper()
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := newFake()
	cfg := Config{Listen: "127.0.0.1:0", CA: ca, Registry: be, Enroller: be, Ingest: be, Commands: be,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &env{t: t, be: be, ca: ca, addr: srv.Addr().String()}
}

func (e *env) dial(cert *tls.Certificate) (*quic.Conn, error) {
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPN},
		ServerName: protocol.ServerName,
		RootCAs:    e.ca.Pool(),
	}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return quic.DialAddr(ctx, e.addr, conf, &quic.Config{})
}

// roundTrip opens a stream, writes f and reads one answer.
func roundTrip(t *testing.T, conn *quic.Conn, f *protocol.Frame) *protocol.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if err := protocol.WriteFrame(st, f); err != nil {
		t.Fatal(err)
	}
	got, err := protocol.NewFrameReader(st, 0).Read()
	if err != nil {
		t.Fatalf("reading the answer to %T: %v", f.GetBody(), err)
	}
	return got
}

// enroll enrolls with token and returns the agent's TLS certificate.
func (e *env) enroll(token string) (*tls.Certificate, *protocol.Frame) {
	e.t.Helper()
	conn, err := e.dial(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	resp := roundTrip(e.t, conn, &protocol.Frame{Body: &protocol.Frame_EnrollRequest{EnrollRequest: &protocol.EnrollRequest{
		Version: protocol.CurrentVersion(), Token: token, CsrDer: csr, Host: &protocol.HostFacts{Hostname: "h"},
	}}})
	if resp.GetEnrollResponse() == nil {
		return nil, resp
	}
	return &tls.Certificate{Certificate: [][]byte{resp.GetEnrollResponse().GetCertificateDer()}, PrivateKey: key}, resp
}

func hello(v *protocol.Version) *protocol.Frame {
	return &protocol.Frame{Body: &protocol.Frame_Hello{Hello: &protocol.Hello{Version: v}}}
}

func TestEnrollment(t *testing.T) {
	e := start(t)
	cert, resp := e.enroll("good")
	if cert == nil {
		t.Fatalf("enrollment with a good token: %v", resp)
	}
	id := resp.GetEnrollResponse().GetAgentId()
	if id == "" || protocol.CAPin(resp.GetEnrollResponse().GetCaDer()) != e.ca.Pin() {
		t.Fatalf("enrollment response: %v", resp)
	}
	// The token had one use.
	if c, resp := e.enroll("good"); c != nil || resp.GetError().GetCode() != protocol.ErrorAuth {
		t.Fatalf("second use of a one-use token: %v", resp)
	}
	if c, resp := e.enroll("bad"); c != nil || !strings.Contains(resp.GetError().GetMessage(), "token") {
		t.Fatalf("unknown token: %v", resp)
	}
	e.be.mu.Lock()
	defer e.be.mu.Unlock()
	if len(e.be.agents) != 1 {
		t.Fatalf("%d agents stored, want 1", len(e.be.agents))
	}
}

func TestUnenrolledConnectionMayOnlyEnroll(t *testing.T) {
	e := start(t)
	conn, err := e.dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if resp := roundTrip(t, conn, hello(protocol.CurrentVersion())); resp.GetError().GetCode() != protocol.ErrorAuth {
		t.Fatalf("hello without a certificate: got %v, want an auth error", resp)
	}
}

func TestHelloAndBatches(t *testing.T) {
	e := start(t)
	cert, _ := e.enroll("good")
	conn, err := e.dial(cert)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	ack := roundTrip(t, conn, hello(protocol.CurrentVersion())).GetHelloAck()
	if ack == nil || ack.GetAgentId() != "agent-a" || protocol.CheckVersion(ack.GetVersion()) != nil {
		t.Fatalf("hello ack: %v", ack)
	}
	batch := &protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: 9,
		Findings: []*protocol.Finding{{Id: "f1"}, {Id: "f2"}}}}}
	if got := roundTrip(t, conn, batch).GetBatchAck(); got.GetSeq() != 9 || got.GetStored() != 2 || got.GetDuplicates() != 0 {
		t.Fatalf("first batch ack: %v", got)
	}
	if got := roundTrip(t, conn, batch).GetBatchAck(); got.GetStored() != 0 || got.GetDuplicates() != 2 {
		t.Fatalf("resent batch ack: %v", got)
	}
}

func TestUnknownMajorVersionIsRefused(t *testing.T) {
	e := start(t)
	cert, _ := e.enroll("good")
	conn, err := e.dial(cert)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	resp := roundTrip(t, conn, hello(&protocol.Version{Major: protocol.VersionMajor + 1}))
	if resp.GetError().GetCode() != protocol.ErrorVersion || !strings.Contains(resp.GetError().GetMessage(), "unsupported protocol version") {
		t.Fatalf("got %v, want a version error", resp)
	}
}

func TestRevokedAgentFailsTheHandshake(t *testing.T) {
	e := start(t)
	cert, resp := e.enroll("good")
	e.be.mu.Lock()
	e.be.agents[resp.GetEnrollResponse().GetAgentId()] = true
	e.be.mu.Unlock()
	conn, err := e.dial(cert)
	if err == nil {
		// With TLS 1.3 the client may finish first; the refusal then
		// arrives on first use.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, oerr := conn.OpenStreamSync(ctx)
		if oerr == nil {
			protocol.WriteFrame(st, hello(protocol.CurrentVersion()))
			_, err = protocol.NewFrameReader(st, 0).Read()
		} else {
			err = oerr
		}
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.ErrorCode.IsCryptoError() {
		t.Fatalf("got %v, want a TLS refusal", err)
	}
}

// control connects with cert and says h on a new control stream; it
// returns the stream and its reader past the hello ack.
func (e *env) control(cert *tls.Certificate, h *protocol.Frame) (*quic.Stream, *protocol.FrameReader) {
	e.t.Helper()
	conn, err := e.dial(cert)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.CloseWithError(0, "") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	protocol.WriteFrame(st, h)
	r := protocol.NewFrameReader(st, 0)
	if f, err := r.Read(); err != nil || f.GetHelloAck() == nil {
		e.t.Fatalf("hello: %v %v", f, err)
	}
	return st, r
}

func TestCommandsAreDeliveredAndAnswered(t *testing.T) {
	e := start(t)
	cert, _ := e.enroll("good")
	e.be.mu.Lock()
	e.be.pending = []*protocol.Command{{Id: "c1", Action: "drill"}}
	e.be.mu.Unlock()
	st, r := e.control(cert, hello(protocol.CurrentVersion()))
	f, err := r.Read()
	if err != nil || f.GetCommand().GetId() != "c1" {
		t.Fatalf("want command c1, got %v %v", f, err)
	}
	protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_CommandResult{CommandResult: &protocol.CommandResult{Id: "c1", Ok: true}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.be.mu.Lock()
		n := len(e.be.results)
		e.be.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command result never reached the backend")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A command queued while the agent is connected is sent when the queue
// says so, not at the next rescan.
func TestCommandQueuedWhileConnectedIsDelivered(t *testing.T) {
	e := start(t)
	cert, _ := e.enroll("good")
	st, r := e.control(cert, hello(protocol.CurrentVersion()))
	var id string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.be.mu.Lock()
		for a := range e.be.connected {
			id = a
		}
		e.be.mu.Unlock()
		if id != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent never connected")
		}
	}
	e.be.queue(id, &protocol.Command{Id: "c2", Action: "drill"})
	st.SetReadDeadline(time.Now().Add(commandRescan / 2))
	f, err := r.Read()
	if err != nil || f.GetCommand().GetId() != "c2" {
		t.Fatalf("want command c2 before the rescan, got %v %v", f, err)
	}
	// Waking again sends nothing new: c2 went on this connection already.
	e.be.wake.Wake(id)
	protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_CommandResult{CommandResult: &protocol.CommandResult{Id: "c2", Ok: true}}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.be.mu.Lock()
		n := len(e.be.results)
		e.be.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command result never reached the backend")
		}
	}
}
