package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/collector/command"
)

// syslog sends RFC 5424 messages over TCP or TLS with RFC 6587
// octet-counting framing, one connection kept open between events.
type syslog struct {
	cfg      *SinkConfig
	tls      *tls.Config
	hostname string
	conn     net.Conn
}

func newSyslog(c *SinkConfig) (*syslog, error) {
	s := &syslog{cfg: c}
	if c.TLS {
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(c.Address)
			tc.ServerName = host
		}
		s.tls = tc
	}
	s.hostname, _ = os.Hostname()
	if s.hostname == "" {
		s.hostname = "-"
	}
	return s, nil
}

// syslogSeverity maps an event to a syslog severity (RFC 5424 section
// 6.2.1): crit for P1 and critical findings down to info for P5.
func syslogSeverity(ev *Event) int {
	if ev.Kind == KindFinding {
		return 6 - severityRank(ev.Finding.Severity)
	}
	if ev.Command != nil {
		if ev.Command.Status == command.StatusFailed || ev.Command.Status == command.StatusExpired {
			return 4
		}
		return 5
	}
	p, _ := priorityRank(ev.Incident.Priority)
	return 1 + p
}

// message renders ev as an RFC 5424 message without framing.
func (s *syslog) message(ev *Event) ([]byte, error) {
	var msg []byte
	if s.cfg.Format == FormatCEF {
		msg = []byte(cef(ev))
	} else {
		b, err := body(s.cfg.Format, ev)
		if err != nil {
			return nil, err
		}
		msg = b
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s cordon - %s - ", s.cfg.Facility*8+syslogSeverity(ev),
		unixNow().UTC().Format("2006-01-02T15:04:05.000000Z"), s.hostname, ev.Kind)
	b.Write(msg)
	return b.Bytes(), nil
}

// frame prefixes msg with its length (RFC 6587 section 3.4.1).
func frame(msg []byte) []byte {
	out := strconv.AppendInt(nil, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}

func (s *syslog) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tls != nil {
		td := &tls.Dialer{NetDialer: d, Config: s.tls}
		conn, err = td.DialContext(ctx, "tcp", s.cfg.Address)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return fmt.Errorf("connecting to syslog receiver %s: %w", s.cfg.Address, err)
	}
	s.conn = conn
	return nil
}

// alive reports whether the receiver still holds the connection open:
// a receiver never writes, so anything but a read timeout means the
// connection is gone and a write would vanish.
func (s *syslog) alive() bool {
	if err := s.conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var b [1]byte
	_, err := s.conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *syslog) Send(ctx context.Context, ev *Event) error {
	msg, err := s.message(ev)
	if err != nil {
		return &PermanentError{err}
	}
	if s.conn != nil && !s.alive() {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	if _, err := s.conn.Write(frame(msg)); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("writing to syslog receiver %s: %w", s.cfg.Address, err)
	}
	return nil
}

func (s *syslog) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
