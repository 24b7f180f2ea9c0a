package export

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/incident"
)

// rsyslog is an rsyslogd of the test's own, listening on loopback and
// writing what it receives to a file.
type rsyslog struct {
	addr string
	out  string
	cmd  *exec.Cmd
}

// startRsyslog starts rsyslogd with a config of its own in a temporary
// folder: one imtcp input on a free loopback port (TLS with a fresh CA
// when tlsDir is set), every message written to out.log as
// "APP-NAME MSGID PRI MSG". It skips the test when rsyslogd is not
// installed (.ci/run installs it).
func startRsyslog(t *testing.T, tls bool) (*rsyslog, string) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("rsyslogd is not installed (apt-get install rsyslog rsyslog-openssl; .ci/run does)")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	r := &rsyslog{addr: fmt.Sprintf("127.0.0.1:%d", port), out: filepath.Join(dir, "out.log")}
	var caFile, tlsGlobal, driver string
	if tls {
		caFile = writeCerts(t, dir)
		tlsGlobal = fmt.Sprintf(`global(DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)`,
			caFile, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
		driver = `StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"`
	}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="256k")
%s
module(load="imtcp" %s)
template(name="cordon" type="string" string="%%app-name%% %%msgid%% %%pri%% %%msg%%\n")
ruleset(name="cordon") {
  action(type="omfile" file=%q template="cordon" flushOnTXEnd="on" asyncWriting="off")
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="cordon")
`, dir, tlsGlobal, driver, r.out, port)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	var stderr strings.Builder
	r.cmd.Stdout, r.cmd.Stderr = &stderr, &stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s\nconfig:\n%s", stderr.String(), conf)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen on %s: %v\n%s", r.addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r, caFile
}

// lines returns what rsyslog wrote so far.
func (r *rsyslog) lines() []string {
	b, _ := os.ReadFile(r.out)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 to
// dir and returns the CA file.
func writeCerts(t *testing.T, dir string) string {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test syslog CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("server.pem", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	return write("ca.pem", "CERTIFICATE", caDER)
}

// TestRsyslog delivers findings and incident changes to a real rsyslogd
// over TCP and TLS, in CEF and in JSON, and checks what it parsed out
// of each RFC 5424 octet-counted message.
func TestRsyslog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    bool
		format string
	}{
		{"tcp-cef", false, FormatCEF},
		{"tcp-json", false, "json"},
		{"tls-cef", true, FormatCEF},
		{"tls-json", true, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, ca := startRsyslog(t, tc.tls)
			o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "siem", Type: TypeSyslog, Address: rs.addr,
				TLS: tc.tls, CAFile: ca, Format: tc.format, Events: Kinds}))
			run(t, o)
			inc := sampleIncident()
			// A summary with the characters CEF and syslog must escape.
			f := sampleFinding()
			f.Summary = "pipe | equals = backslash \\ newline\nend"
			change(t, o, db, incident.ChangeOpened, inc, f)
			inc.Status = incident.StatusClosed
			change(t, o, db, incident.ChangeClosed, inc, nil)

			waitFor(t, 10*time.Second, "3 messages in rsyslog's file", func() bool { return len(rs.lines()) >= 3 })
			lines := rs.lines()
			if len(lines) != 3 {
				t.Fatalf("%d lines, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			wantMsgID := []string{"finding", "incident.opened", "incident.closed"}
			for i, l := range lines {
				parts := strings.SplitN(l, " ", 4)
				if len(parts) != 4 || parts[0] != "cordon" || parts[1] != wantMsgID[i] {
					t.Errorf("line %d: %q, want app-name cordon and msgid %s", i, l, wantMsgID[i])
					continue
				}
				msg := strings.TrimSpace(parts[3])
				if tc.format == FormatCEF {
					if !strings.HasPrefix(msg, "CEF:0|Cordon|Cordon EDR|") {
						t.Errorf("line %d: not CEF: %q", i, msg)
					}
					if i == 0 && !strings.Contains(msg, `msg=pipe | equals \= backslash \\ newline\nend`) {
						t.Errorf("escaped summary not found in %q", msg)
					}
					continue
				}
				var doc map[string]any
				if err := json.Unmarshal([]byte(msg), &doc); err != nil {
					t.Errorf("line %d: not JSON: %v: %q", i, err, msg)
					continue
				}
				if i == 0 && doc["class_uid"] != float64(2004) || i > 0 && doc["class_uid"] != float64(2005) {
					t.Errorf("line %d: class_uid %v", i, doc["class_uid"])
				}
				if i == 0 && doc["message"] != f.Summary {
					t.Errorf("summary came through as %q", doc["message"])
				}
			}
			waitFor(t, 10*time.Second, "the outbox to record the deliveries", func() bool { return status(t, o, "siem").Queued == 0 })
			if st := status(t, o, "siem"); st.DeliveredTotal != 3 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// TestSyslogReceiverRestart: messages sent while rsyslogd is down wait
// in the queue and arrive once it listens again; the stale connection
// to the old process is noticed and replaced.
func TestSyslogReceiverRestart(t *testing.T) {
	rs, _ := startRsyslog(t, false)
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "siem", Type: TypeSyslog, Address: rs.addr, Format: FormatCEF}))
	run(t, o)
	inc := sampleIncident()
	change(t, o, db, incident.ChangeOpened, inc, nil)
	waitFor(t, 10*time.Second, "the first message", func() bool { return len(rs.lines()) == 1 })

	rs.cmd.Process.Kill()
	rs.cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	for i := range 3 {
		inc.Assignee = fmt.Sprintf("a%d", i)
		change(t, o, db, incident.ChangeUpdated, inc, nil)
	}
	waitFor(t, 10*time.Second, "failed attempts", func() bool { return status(t, o, "siem").FailedTotal > 0 })

	// A new rsyslogd on the same port, writing to the same file.
	restarted := exec.Command(rs.cmd.Path, rs.cmd.Args[1:]...)
	if err := restarted.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { restarted.Process.Kill(); restarted.Wait() }()
	waitFor(t, 15*time.Second, "4 messages", func() bool { return len(rs.lines()) >= 4 })
	lines := rs.lines()
	for i, l := range lines[1:] {
		if !strings.Contains(l, fmt.Sprintf("duser=a%d ", i)) {
			t.Errorf("message %d after restart: %q", i, l)
		}
	}
}
