package uplink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/protocol"
)

func TestJitterStaysInRange(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, time.Second, 30 * time.Second} {
		for i := 0; i < 1000; i++ {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v, want within [%v, %v]", d, j, d/2, d)
			}
		}
	}
}

// memSpool is an in-memory Spool.
type memSpool struct {
	mu     sync.Mutex
	items  []*protocol.Finding
	acked  map[string]int
	notify chan struct{}
}

func newMemSpool(ids ...string) *memSpool {
	s := &memSpool{acked: map[string]int{}, notify: make(chan struct{}, 1)}
	for _, id := range ids {
		s.items = append(s.items, &protocol.Finding{Id: id})
	}
	return s
}

func (s *memSpool) Peek(max, _ int) ([]*protocol.Finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*protocol.Finding(nil), s.items[:min(max, len(s.items))]...), nil
}

func (s *memSpool) Ack(ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.acked[id]++
		for i, f := range s.items {
			if f.GetId() == id {
				s.items = append(s.items[:i], s.items[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (s *memSpool) Notify() <-chan struct{} { return s.notify }

func (s *memSpool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

type echoExecutor struct{}

func (echoExecutor) Execute(_ context.Context, c *protocol.Command) *protocol.CommandResult {
	return &protocol.CommandResult{Id: c.GetId(), Ok: true, Result: "ran " + c.GetAction()}
}

// collector is a minimal fake collector. It drops the first connection
// after receiving its first batch, without acknowledging it.
type collector struct {
	t       *testing.T
	ln      *quic.Listener
	clients *tls.Config

	mu       sync.Mutex
	conns    int
	batches  map[string]int // finding id → times received
	results  []*protocol.CommandResult
	beats    int
	commands []*protocol.Command
}

func newPKI(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{protocol.ALPN},
		Certificates: []tls.Certificate{leaf(2, protocol.ServerName, x509.ExtKeyUsageServerAuth, []string{protocol.ServerName})},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool}
	client = &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{protocol.ALPN}, ServerName: protocol.ServerName,
		RootCAs: pool, Certificates: []tls.Certificate{leaf(3, "agent-1", x509.ExtKeyUsageClientAuth, nil)}}
	return server, client
}

func startCollector(t *testing.T) *collector {
	srvConf, cliConf := newPKI(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", srvConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t, ln: ln, clients: cliConf, batches: map[string]int{},
		commands: []*protocol.Command{{Id: "c1", Action: "probe"}}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns++
			n := c.conns
			c.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.serve(ctx, conn, n == 1)
			}()
		}
	}()
	return c
}

func (c *collector) serve(ctx context.Context, conn *quic.Conn, dropFirstBatch bool) {
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			r := protocol.NewFrameReader(st, 0)
			w := protocol.NewFrameWriter(st, 0)
			for {
				f, err := r.Read()
				if err != nil {
					return
				}
				switch b := f.GetBody().(type) {
				case *protocol.Frame_Hello:
					w.Write(&protocol.Frame{Body: &protocol.Frame_HelloAck{HelloAck: &protocol.HelloAck{
						Version: protocol.CurrentVersion(), AgentId: "agent-1", HeartbeatSeconds: 1}}})
					c.mu.Lock()
					cmds := c.commands
					c.mu.Unlock()
					for _, cmd := range cmds {
						w.Write(&protocol.Frame{Body: &protocol.Frame_Command{Command: cmd}})
					}
				case *protocol.Frame_Heartbeat:
					c.mu.Lock()
					c.beats++
					c.mu.Unlock()
				case *protocol.Frame_CommandResult:
					c.mu.Lock()
					c.results = append(c.results, b.CommandResult)
					c.commands = nil
					c.mu.Unlock()
				case *protocol.Frame_FindingBatch:
					c.mu.Lock()
					for _, fd := range b.FindingBatch.GetFindings() {
						c.batches[fd.GetId()]++
					}
					c.mu.Unlock()
					if dropFirstBatch {
						conn.CloseWithError(protocol.CodeShutdown, "lost before the acknowledgement")
						return
					}
					w.Write(&protocol.Frame{Body: &protocol.Frame_BatchAck{BatchAck: &protocol.BatchAck{
						Seq: b.FindingBatch.GetSeq(), Stored: uint32(len(b.FindingBatch.GetFindings()))}}})
				}
			}
		}()
	}
}

func TestBatchesSurviveALostAcknowledgement(t *testing.T) {
	col := startCollector(t)
	sp := newMemSpool("f1", "f2", "f3")
	cl := New(Config{
		Collector:  col.ln.Addr().String(),
		TLS:        col.clients,
		Spool:      sp,
		Executor:   echoExecutor{},
		Hello:      func() *protocol.Hello { return &protocol.Hello{Version: protocol.CurrentVersion()} },
		Heartbeat:  func() *protocol.Heartbeat { return &protocol.Heartbeat{} },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		BatchMax:   2,
		BackoffMin: 10 * time.Millisecond,
		BackoffMax: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	for sp.pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d findings still spooled", sp.pending())
		}
		time.Sleep(20 * time.Millisecond)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.conns < 2 {
		t.Fatalf("%d connections, want a reconnect after the dropped one", col.conns)
	}
	// The unacknowledged batch was sent again; the spool lost nothing.
	if col.batches["f1"] != 2 || col.batches["f2"] != 2 || col.batches["f3"] != 1 {
		t.Fatalf("receipts per finding: %v", col.batches)
	}
	for _, id := range []string{"f1", "f2", "f3"} {
		if sp.acked[id] != 1 {
			t.Fatalf("finding %s acknowledged %d times", id, sp.acked[id])
		}
	}
	if len(col.results) != 1 || col.results[0].GetResult() != "ran probe" {
		t.Fatalf("command results: %v", col.results)
	}
	if st := cl.Status(); !st.Connected || st.Sent != 3 {
		t.Fatalf("status: %+v", st)
	}
}
