package uplink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/protocol"
)

// DefaultRestartWindow is the default Config.RestartWindow.
const DefaultRestartWindow = 10 * time.Second

// Schedule is the reconnect schedule, shared with the load generator so
// that a simulated fleet comes back the way a real one does:
//
//   - after the collector closed the connection with protocol.CodeShutdown
//     (a restart or a clean stop), a uniform random wait in
//     [0, RestartWindow), so a fleet that lost its connections at the same
//     instant does not come back at the same instant;
//   - after a refusal (ErrRefused), Max;
//   - otherwise a jittered exponential backoff: [d/2, d), d starting at Min
//     and doubling to Max, back to Min once a session got as far as the
//     collector's hello acknowledgement.
//
// The zero value is not usable: set Min, Max and RestartWindow.
type Schedule struct {
	Min, Max, RestartWindow time.Duration

	delay time.Duration
}

// Next returns how long to wait before reconnecting after a session that
// ended with err; helloed says whether it was acknowledged.
func (s *Schedule) Next(helloed bool, err error) time.Duration {
	if s.delay == 0 || helloed {
		s.delay = s.Min
	}
	switch {
	case errors.Is(err, ErrRefused):
		return s.Max
	case CollectorShutdown(err):
		s.delay = s.Min
		return rand.N(s.RestartWindow)
	}
	wait := jitter(s.delay)
	s.delay = min(s.delay*2, s.Max)
	return wait
}

// jitter spreads d over [d/2, d) so a fleet does not reconnect in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// CollectorShutdown reports whether err says the collector closed the
// connection with its shutdown code.
func CollectorShutdown(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == protocol.CodeShutdown
}

// withCloseCause adds the connection's close reason to err when the
// session's own error does not carry it (a stream may fail with a local
// error a moment before the connection reports why it closed).
func withCloseCause(conn *quic.Conn, err error) error {
	if err == nil || CollectorShutdown(err) {
		return err
	}
	select {
	case <-conn.Context().Done():
	case <-time.After(100 * time.Millisecond):
		return err
	}
	if cause := context.Cause(conn.Context()); CollectorShutdown(cause) {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// WithCloseCause is withCloseCause for the load generator's sessions.
func WithCloseCause(conn *quic.Conn, err error) error { return withCloseCause(conn, err) }
