// Package identity enrolls an agent with its collector and keeps the
// result in the agent's state folder: the agent's key and certificate,
// the collector's CA, and the agent id. From then on the certificate is
// the agent's identity on every connection.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shirou/gopsutil/v3/host"

	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/certs"
)

// Files in the state folder.
const (
	keyFile   = "agent.key"
	certFile  = "agent.crt"
	caFile    = "ca.crt"
	stateFile = "agent.json"
)

// Identity is what enrollment leaves in the state folder.
type Identity struct {
	AgentID    string            `json:"agent_id"`
	Collector  string            `json:"collector"`
	CAPin      string            `json:"ca_pin"`
	Tags       map[string]string `json:"tags,omitempty"`
	EnrolledAt time.Time         `json:"enrolled_at"`
}

// ErrNotEnrolled is returned by Load for a state folder without an
// enrollment.
var ErrNotEnrolled = errors.New("agent is not enrolled")

// Load reads the identity in dir and returns it with the TLS
// configuration for connecting to the collector.
func Load(dir string) (*Identity, *tls.Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no %s in %s (run `cordon-agent enroll` first)", ErrNotEnrolled, stateFile, dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading agent identity: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, nil, fmt.Errorf("reading agent identity %s: %w", filepath.Join(dir, stateFile), err)
	}
	if id.AgentID == "" || id.Collector == "" {
		return nil, nil, fmt.Errorf("agent identity %s: agent_id and collector are required", filepath.Join(dir, stateFile))
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("loading agent certificate: %w", err)
	}
	ca, err := certs.ReadCert(filepath.Join(dir, caFile))
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{protocol.ALPN},
		ServerName:   protocol.ServerName,
		RootCAs:      roots,
		Certificates: []tls.Certificate{pair},
	}
	return &id, conf, nil
}

// Options for Enroll.
type Options struct {
	Collector string // host:port (UDP)
	Token     string
	CAPin     string // sha256:<hex> of the collector's CA certificate
	StateDir  string
	Tags      map[string]string
	Host      *protocol.HostFacts
	// Force enrolls again over an existing identity.
	Force bool
}

// Enroll connects to the collector without a certificate, checks that it
// presents a certificate chain ending in the pinned CA, sends a
// certificate request with the host's facts and the token, and stores
// the certificate and agent id it receives.
func Enroll(ctx context.Context, o Options) (*Identity, error) {
	if o.Collector == "" {
		return nil, errors.New("--collector is required (host:port of the collector)")
	}
	if o.Token == "" {
		return nil, errors.New("--token is required (from `cordonctl enroll-token create`)")
	}
	pin, err := protocol.ParsePin(o.CAPin)
	if err != nil {
		return nil, fmt.Errorf("--ca-pin: %w", err)
	}
	if !o.Force {
		if old, _, err := Load(o.StateDir); err == nil {
			return nil, fmt.Errorf("already enrolled as agent %s with %s (state in %s); enroll with --force to replace it", old.AgentID, old.Collector, o.StateDir)
		}
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state folder: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating agent key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: o.Host.GetHostname()},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate request: %w", err)
	}

	var pinned *x509.Certificate
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPN},
		ServerName: protocol.ServerName,
		// The agent has no CA yet: the chain is checked against the pin.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			ca, err := protocol.VerifyPinnedChain(raw, pin, protocol.ServerName)
			if err != nil {
				return err
			}
			pinned = ca
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dialEnroll(ctx, o.Collector, tlsConf)
	if err != nil {
		if errors.Is(err, protocol.ErrPinMismatch) || strings.Contains(err.Error(), protocol.ErrPinMismatch.Error()) {
			return nil, fmt.Errorf("connecting to %s: %w: check --ca-pin against `cordonctl ca-pin`", o.Collector, protocol.ErrPinMismatch)
		}
		return nil, fmt.Errorf("connecting to collector %s: %w", o.Collector, err)
	}
	defer conn.CloseWithError(protocol.CodeOK, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening enrollment stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_EnrollRequest{EnrollRequest: &protocol.EnrollRequest{
		Version: protocol.CurrentVersion(),
		Token:   o.Token,
		CsrDer:  csr,
		Host:    o.Host,
		Tags:    o.Tags,
	}}}); err != nil {
		return nil, fmt.Errorf("sending enrollment request: %w", err)
	}
	f, err := protocol.NewFrameReader(st, 0).Read()
	if err != nil {
		return nil, fmt.Errorf("reading enrollment response: %w", err)
	}
	if e := f.GetError(); e != nil {
		return nil, fmt.Errorf("collector refused enrollment: %s", e.GetMessage())
	}
	resp := f.GetEnrollResponse()
	if resp == nil {
		return nil, fmt.Errorf("collector answered enrollment with %T", f.GetBody())
	}
	cert, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate the collector issued: %w", err)
	}
	if pinned == nil || protocol.CAPin(resp.GetCaDer()) != pin {
		return nil, errors.New("collector sent a CA that does not match the pin")
	}
	if err := cert.CheckSignatureFrom(pinned); err != nil {
		return nil, fmt.Errorf("the issued certificate is not signed by the pinned CA: %w", err)
	}
	if cert.Subject.CommonName != resp.GetAgentId() {
		return nil, fmt.Errorf("the issued certificate names %q, not agent %q", cert.Subject.CommonName, resp.GetAgentId())
	}

	if err := certs.WriteKey(filepath.Join(o.StateDir, keyFile), key); err != nil {
		return nil, err
	}
	if err := certs.WriteCert(filepath.Join(o.StateDir, certFile), resp.GetCertificateDer()); err != nil {
		return nil, err
	}
	if err := certs.WriteCert(filepath.Join(o.StateDir, caFile), resp.GetCaDer()); err != nil {
		return nil, err
	}
	id := &Identity{AgentID: resp.GetAgentId(), Collector: o.Collector, CAPin: pin, Tags: o.Tags, EnrolledAt: time.Now().UTC()}
	b, _ := json.MarshalIndent(id, "", "  ")
	if err := certs.WriteFileAtomic(filepath.Join(o.StateDir, stateFile), append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	return id, nil
}

// HostFacts gathers the facts an agent reports about its machine.
func HostFacts(version string) *protocol.HostFacts {
	f := &protocol.HostFacts{Os: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: version}
	f.Hostname, _ = os.Hostname()
	if info, err := host.Info(); err == nil {
		f.Platform = strings.TrimSpace(info.Platform + " " + info.PlatformVersion)
		f.Kernel = info.KernelVersion
		f.BootId = bootID(info.HostID)
	}
	if ifaces, err := net.Interfaces(); err == nil {
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 {
				continue
			}
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
					f.Ips = append(f.Ips, ipn.IP.String())
				}
			}
		}
	}
	return f
}

// bootID returns the kernel's boot id where there is one (Linux), so the
// collector can tell reboots apart; elsewhere the host id stands in.
func bootID(hostID string) string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return hostID
}

// dialEnroll connects to the collector for enrollment. A handshake that
// fails in a way worth another try (retryable) is tried again until ctx
// is done: the token is sent only once the connection stands, so it is
// not spent.
func dialEnroll(ctx context.Context, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	var last error
	for n := 1; ; n++ {
		conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{HandshakeIdleTimeout: 10 * time.Second})
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil && last != nil {
			// The deadline cut this try short: what failed before says
			// more than the deadline does.
			return nil, fmt.Errorf("%w after %d tries (try %d: %w)", err, n, n-1, last)
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w after %d tries (the last: %w)", ctx.Err(), n, err)
		case <-time.After(time.Second):
		}
	}
}

// retryable reports whether a failed enrollment handshake is worth
// another try with a new socket: a timeout (packets lost, or a collector
// too busy to answer in time), or EPERM from sendmsg, which Linux
// returns when a packet is dropped on its way out (a firewall, or
// connection tracking refusing a new flow under load, most often for a
// new socket's first datagrams).
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// quic-go reports a failed first send as a local INTERNAL_ERROR that
	// carries the system call's error as text only.
	return errors.Is(err, syscall.EPERM) || strings.Contains(err.Error(), "sendmsg: operation not permitted")
}
