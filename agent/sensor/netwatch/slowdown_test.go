package netwatch

import (
	"testing"
	"time"
)

func TestSetSlowdown(t *testing.T) {
	s := New(Options{Interval: 10 * time.Millisecond})
	if d := s.interval(); d != 10*time.Millisecond {
		t.Fatalf("interval %v before any slowdown", d)
	}
	s.SetSlowdown(10)
	if d := s.interval(); d != 100*time.Millisecond {
		t.Fatalf("interval %v slowed down 10 times", d)
	}
	s.SetSlowdown(0)
	if d := s.interval(); d != 10*time.Millisecond {
		t.Fatalf("interval %v after restoring", d)
	}
}
