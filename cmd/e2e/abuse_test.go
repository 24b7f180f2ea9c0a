package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/agent/identity"
	"github.com/cordon-edr/cordon/protocol"
)

// metrics returns the collector's /metrics as name{labels} → value.
func (c *collector) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := readMetrics(c.api)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readMetrics reads the /metrics page of the collector whose API
// listens on api, as name{labels} → value.
func readMetrics(api string) (map[string]float64, error) {
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err == nil {
			m[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading http://%s/metrics: %w", api, err)
	}
	return m, nil
}

// apiStatus makes a request with the given key and returns its status.
func (c *collector) apiStatus(t *testing.T, method, path, key, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// rawDial opens a QUIC connection to the collector with tlsConf.
func rawDial(ctx context.Context, c *collector, tlsConf *tls.Config) (*quic.Conn, error) {
	return quic.DialAddr(ctx, c.listen, tlsConf, &quic.Config{HandshakeIdleTimeout: 5 * time.Second})
}

// roundTrip opens a stream, writes raw bytes and reads the first frame of
// the answer.
func roundTrip(ctx context.Context, conn *quic.Conn, data []byte) (*protocol.Frame, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening stream: %w", err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	// The collector may refuse the stream before it has read all of a bad
	// write; its answer is still there to read.
	_, werr := st.Write(data)
	f, err := protocol.NewFrameReader(st, 0).Read()
	if err != nil && werr != nil {
		return nil, fmt.Errorf("writing: %v; reading: %w", werr, err)
	}
	return f, err
}

func frameBytes(t *testing.T, f *protocol.Frame) []byte {
	t.Helper()
	b, err := protocol.AppendFrame(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// foreignCert is a client certificate for agentID from a CA the collector
// has never seen.
func foreignCert(t *testing.T, agentID string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Cordon CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: agentID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Every kind of abuse on the agent port and the API is refused, logged
// and counted, while a well-behaved fleet keeps streaming findings
// without a single error or reconnect.
func TestAbuseRefusedWhileOthersServed(t *testing.T) {
	c := newCollector(t)
	fleet := startLoadgen(t, c, "--agents", "4", "--rate", "20", "--batch", "10", "--duration", "15s", "--drain", "30s")

	// Two enrolled identities speak raw frames.
	stateA, idA := c.enroll(t)
	_, idB := c.enroll(t)
	_, tlsA, err := identity.Load(stateA)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	anon := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.ALPN}, MinVersion: tls.VersionTLS13}

	t.Run("no client certificate may only enroll", func(t *testing.T) {
		conn, err := rawDial(ctx, c, anon.Clone())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		f, err := roundTrip(ctx, conn, frameBytes(t, &protocol.Frame{Body: &protocol.Frame_Hello{Hello: &protocol.Hello{Version: protocol.CurrentVersion()}}}))
		if err != nil {
			t.Fatal(err)
		}
		if f.GetError().GetCode() != protocol.ErrorAuth {
			t.Fatalf("a hello without a certificate got %v, want an Error frame %q", f, protocol.ErrorAuth)
		}
	})

	t.Run("certificate from another CA", func(t *testing.T) {
		conf := anon.Clone()
		conf.Certificates = []tls.Certificate{foreignCert(t, idB)}
		conn, err := rawDial(ctx, c, conf)
		if err == nil {
			// TLS 1.3 clients may finish before the server has judged
			// their certificate: the refusal then ends the first stream.
			_, err = roundTrip(ctx, conn, frameBytes(t, &protocol.Frame{Body: &protocol.Frame_Hello{Hello: &protocol.Hello{Version: protocol.CurrentVersion()}}}))
			conn.CloseWithError(0, "")
		}
		if err == nil {
			t.Fatal("a certificate from another CA claiming an enrolled agent's id was served")
		}
	})

	conn, err := rawDial(ctx, c, tlsA.Clone())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")

	t.Run("agent claims another agent's identity", func(t *testing.T) {
		// Agent A says hello with B's id as its hostname and sends a
		// finding: messages carry no agent id, the certificate decides.
		ctrl, err := roundTrip(ctx, conn, frameBytes(t, &protocol.Frame{Body: &protocol.Frame_Hello{Hello: &protocol.Hello{
			Version: protocol.CurrentVersion(), Host: &protocol.HostFacts{Hostname: idB},
		}}}))
		if err != nil || ctrl.GetHelloAck().GetAgentId() != idA {
			t.Fatalf("hello: %v, %v; want a HelloAck naming %s", ctrl, err, idA)
		}
		id := uuid.Must(uuid.NewV7()).String()
		f, err := roundTrip(ctx, conn, frameBytes(t, &protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: 1, Findings: []*protocol.Finding{{
			Id: id, Rule: &protocol.Rule{Id: "impersonation", Name: "Impersonation", Version: "1"}, Severity: "low",
			EvidenceJson: []byte("[]"), ObservedUnixNano: time.Now().UnixNano(), DetectedUnixNano: time.Now().UnixNano(),
		}}}}}))
		if err != nil || f.GetBatchAck().GetStored() != 1 {
			t.Fatalf("batch: %v, %v; want it stored", f, err)
		}
		var got findingJSON
		c.apiGet(t, "/api/v1/findings/"+id, &got)
		if got.AgentID != idA {
			t.Fatalf("finding stored under agent %q, want the certificate's %q", got.AgentID, idA)
		}
	})

	random := make([]byte, 64<<10)
	rand.Read(random)
	binary.BigEndian.PutUint32(random, 1000) // a plausible length, then garbage
	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"frame over the limit", binary.BigEndian.AppendUint32(nil, protocol.MaxFrameSize+1)},
		{"random bytes", random},
	} {
		t.Run(bad.name, func(t *testing.T) {
			f, err := roundTrip(ctx, conn, bad.data)
			if err != nil {
				t.Fatalf("reading the collector's answer: %v", err)
			}
			if f.GetError().GetCode() != protocol.ErrorFrame {
				t.Fatalf("got %v, want an Error frame %q", f, protocol.ErrorFrame)
			}
		})
	}

	t.Run("API without a key or with the wrong role", func(t *testing.T) {
		if code := c.apiStatus(t, "GET", "/api/v1/agents", "", ""); code != http.StatusUnauthorized {
			t.Errorf("no key: %d, want 401", code)
		}
		if code := c.apiStatus(t, "GET", "/api/v1/agents", "cordon_not_a_key", ""); code != http.StatusUnauthorized {
			t.Errorf("unknown key: %d, want 401", code)
		}
		out, err := c.ctl("api-key", "create", "--name", "auditor", "--role", "viewer")
		if err != nil {
			t.Fatal(err)
		}
		viewer := lastLine(out)
		body := fmt.Sprintf(`{"agent_id":%q,"action":"isolate","reason":"test"}`, idA)
		if code := c.apiStatus(t, "POST", "/api/v1/commands", viewer, body); code != http.StatusForbidden {
			t.Errorf("viewer isolating: %d, want 403", code)
		}
	})

	// The same connection still works after all of it.
	f, err := roundTrip(ctx, conn, frameBytes(t, &protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: 1}}}))
	if err != nil || f.GetBatchAck().GetSeq() != 1 {
		t.Fatalf("a good batch after the abuse: %v, %v", f, err)
	}

	m := c.metrics(t)
	for name, least := range map[string]float64{
		`cordon_refused_total{reason="certificate"}`: 1,
		`cordon_refused_total{reason="frame"}`:       2,
		`cordon_refused_total{reason="enrollment"}`:  1,
		`cordon_api_requests_total{code="401"}`:      2,
		`cordon_api_requests_total{code="403"}`:      1,
	} {
		if m[name] < least {
			t.Errorf("metric %s = %v, want at least %v", name, m[name], least)
		}
	}
	log := c.Log()
	for _, line := range []string{"refused agent certificate", "enrollment refused", "closing agent stream", "API request refused"} {
		if !strings.Contains(log, line) {
			t.Errorf("collector log has no %q", line)
		}
	}

	rep := fleet.wait(t, 60*time.Second)
	if rep.FindingsUnacked != 0 || rep.Reconnects != 0 || len(rep.Errors) != 0 {
		t.Fatalf("the well-behaved fleet was disturbed: %+v", rep)
	}
}

// Slow clients trickling request headers cannot hold API connections:
// the server cuts them off at its header timeout, counts and logs them,
// and answers everyone else at once meanwhile.
func TestSlowAPIClientsCutOff(t *testing.T) {
	c := newCollector(t)
	const slow = 50
	conns := make([]net.Conn, 0, slow)
	for range slow {
		nc, err := net.Dial("tcp", c.api)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := io.WriteString(nc, "GET /api/v1/agents HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	started := time.Now()
	closed := make(chan time.Duration, slow)
	for _, nc := range conns {
		go func() {
			// One more header byte a second, never the end of the headers.
			buf := make([]byte, 1)
			for range 30 {
				if _, err := nc.Write([]byte("X")); err != nil {
					break
				}
				nc.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := nc.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					break
				}
			}
			closed <- time.Since(started)
		}()
	}
	// Meanwhile the API answers promptly.
	for range 3 {
		t0 := time.Now()
		if _, err := c.ctl("agents"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("an API call took %s while slow clients held connections", d)
		}
		time.Sleep(time.Second)
	}
	for range slow {
		if d := <-closed; d > 20*time.Second {
			t.Fatalf("a slow client held its connection for %s", d)
		}
	}
	eventually(t, 10*time.Second, "the cut-off connections counted", func() error {
		if n := c.metrics(t)[`cordon_refused_total{reason="api_connection"}`]; n < slow {
			return fmt.Errorf("cordon_refused_total{reason=\"api_connection\"} = %v, want %d", n, slow)
		}
		return nil
	})
	if n := len(regexp.MustCompile("API connection closed without a complete request").FindAllString(c.Log(), -1)); n < slow {
		t.Errorf("%d log lines about cut-off connections, want %d", n, slow)
	}
}
