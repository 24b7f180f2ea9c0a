package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cordon-edr/cordon/agent/localapi"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// sensorQueue is how many events each sensor may have in flight before
// the queue to the detectors.
const sensorQueue = 1024

// source is one sensor as the agent runs it.
type source struct {
	name  string
	run   func(ctx context.Context, out chan<- ecs.Event) error
	mode  func() (mode, reason string)
	stats func() (events, lost uint64)

	// dropped counts events the detectors' queue had no room for.
	dropped atomic.Uint64

	mu     sync.Mutex
	failed error
}

// runSource runs one sensor and forwards its events to the shared queue
// without ever blocking it: when the queue is full the event is dropped
// and counted against the sensor. A sensor that fails is reported in
// status; the agent keeps running with the others.
func (a *Agent) runSource(ctx context.Context, s *source, queue chan<- ecs.Event) {
	own := make(chan ecs.Event, sensorQueue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-own:
				select {
				case queue <- ev:
				default:
					if s.dropped.Add(1) == 1 {
						a.log.Warn("sensor events dropped: the detectors fall behind", "sensor", s.name)
					}
				}
			}
		}
	}()
	if err := s.run(ctx, own); err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%s sensor: %w", s.name, err)
		a.log.Error("sensor stopped", "sensor", s.name, "err", err)
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
	}
	<-done
}

func (s *source) status() localapi.Sensor {
	mode, reason := s.mode()
	s.mu.Lock()
	if s.failed != nil {
		mode, reason = "failed", s.failed.Error()
	}
	s.mu.Unlock()
	events, lost := s.stats()
	return localapi.Sensor{Name: s.name, Mode: mode, Reason: reason, Events: events, Lost: lost, Dropped: s.dropped.Load()}
}

func (a *Agent) sensorStatus() []localapi.Sensor {
	out := make([]localapi.Sensor, 0, len(a.srcs))
	for _, s := range a.srcs {
		out = append(out, s.status())
	}
	return out
}

// sensorsReady reports whether every sensor has picked its mode.
func (a *Agent) sensorsReady() bool {
	for _, s := range a.srcs {
		if mode, _ := s.mode(); mode == "" {
			s.mu.Lock()
			failed := s.failed != nil
			s.mu.Unlock()
			if !failed {
				return false
			}
		}
	}
	return true
}

func (a *Agent) sensorModes() []string {
	var out []string
	for _, s := range a.srcs {
		mode, _ := s.mode()
		out = append(out, s.name+"="+mode)
	}
	return out
}

func (a *Agent) sensorStats() []*protocol.SensorStats {
	var out []*protocol.SensorStats
	for _, st := range a.sensorStatus() {
		out = append(out, &protocol.SensorStats{Name: st.Name, Mode: st.Mode, Events: st.Events, Lost: st.Lost, Dropped: st.Dropped})
	}
	return out
}
