package uplink

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/protocol"
)

func TestScheduleSpreadsARestartOverTheWindow(t *testing.T) {
	shutdown := fmt.Errorf("reading control stream: %w", &quic.ApplicationError{Remote: true, ErrorCode: protocol.CodeShutdown})
	const window = 5 * time.Second
	var lo, hi time.Duration = window, 0
	for i := 0; i < 2000; i++ {
		s := Schedule{Min: 500 * time.Millisecond, Max: 30 * time.Second, RestartWindow: window}
		w := s.Next(true, shutdown)
		if w < 0 || w >= window {
			t.Fatalf("wait %v after a collector shutdown, want within [0, %v)", w, window)
		}
		lo, hi = min(lo, w), max(hi, w)
	}
	// 2,000 uniform draws: the extremes are within 1% of the window's
	// ends with overwhelming probability (a failure means no spreading).
	if lo > window/10 || hi < window*9/10 {
		t.Errorf("waits span [%v, %v], want most of [0, %v)", lo, hi, window)
	}
}

func TestScheduleBacksOffAndResets(t *testing.T) {
	s := Schedule{Min: time.Second, Max: 8 * time.Second, RestartWindow: time.Minute}
	dial := errors.New("dial timeout")
	for i, d := range []time.Duration{1, 2, 4, 8, 8} {
		d *= time.Second
		if w := s.Next(false, dial); w < d/2 || w > d {
			t.Fatalf("failure %d: wait %v, want within [%v, %v]", i+1, w, d/2, d)
		}
	}
	if w := s.Next(true, dial); w > time.Second {
		t.Errorf("after an acknowledged session: wait %v, want the minimum again", w)
	}
	if w := s.Next(false, fmt.Errorf("%w: revoked", ErrRefused)); w != 8*time.Second {
		t.Errorf("after a refusal: wait %v, want the maximum", w)
	}
	// A local close with the shutdown code (our own) is no collector restart.
	local := &quic.ApplicationError{Remote: false, ErrorCode: protocol.CodeShutdown}
	if CollectorShutdown(local) {
		t.Error("a local close counted as the collector's shutdown")
	}
	other := &quic.ApplicationError{Remote: true, ErrorCode: protocol.CodeInternal}
	if CollectorShutdown(other) {
		t.Error("an internal error counted as the collector's shutdown")
	}
}
