package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Target is the service level of one priority: how long after an
// incident opens it should be acknowledged (moved out of new) and
// contained.
type Target struct {
	Acknowledge time.Duration
	Contain     time.Duration
}

// DefaultTargets are the service-level targets when the configuration
// sets none.
var DefaultTargets = map[string]Target{
	"P1": {Acknowledge: 15 * time.Minute, Contain: time.Hour},
	"P2": {Acknowledge: 30 * time.Minute, Contain: 4 * time.Hour},
	"P3": {Acknowledge: 4 * time.Hour, Contain: 24 * time.Hour},
	"P4": {Acknowledge: 24 * time.Hour, Contain: 72 * time.Hour},
	"P5": {Acknowledge: 72 * time.Hour, Contain: 7 * 24 * time.Hour},
}

// SLA is where an incident stands against the targets of its current
// priority. The durations are in seconds and absent until the milestone
// is reached.
type SLA struct {
	AcknowledgeBy       time.Time `json:"acknowledge_by"`
	ContainBy           time.Time `json:"contain_by"`
	AcknowledgeBreached bool      `json:"acknowledge_breached"`
	ContainBreached     bool      `json:"contain_breached"`
	TimeToDetect        *float64  `json:"time_to_detect_seconds,omitempty"`
	TimeToAcknowledge   *float64  `json:"time_to_acknowledge_seconds,omitempty"`
	TimeToContain       *float64  `json:"time_to_contain_seconds,omitempty"`
	TimeToResolve       *float64  `json:"time_to_resolve_seconds,omitempty"`
}

func seconds(from, to time.Time) *float64 {
	if to.IsZero() || from.IsZero() {
		return nil
	}
	s := max(to.Sub(from), 0).Seconds()
	return &s
}

// slaOf returns the service level of inc at now. An incident closed as a
// false positive or duplicate without being contained never breaches its
// containment target.
func slaOf(inc *Incident, targets map[string]Target, now time.Time) *SLA {
	t := targets[inc.Priority]
	s := &SLA{
		AcknowledgeBy:     inc.OpenedAt.Add(t.Acknowledge),
		ContainBy:         inc.OpenedAt.Add(t.Contain),
		TimeToDetect:      seconds(inc.DetectedAt, inc.OpenedAt),
		TimeToAcknowledge: seconds(inc.OpenedAt, inc.AcknowledgedAt),
		TimeToContain:     seconds(inc.OpenedAt, inc.ContainedAt),
		TimeToResolve:     seconds(inc.OpenedAt, inc.ResolvedAt),
	}
	late := func(at, by time.Time) bool {
		if at.IsZero() {
			return now.After(by)
		}
		return at.After(by)
	}
	s.AcknowledgeBreached = late(inc.AcknowledgedAt, s.AcknowledgeBy)
	switch {
	case !inc.ContainedAt.IsZero():
		s.ContainBreached = inc.ContainedAt.After(s.ContainBy)
	case !inc.ClosedAt.IsZero():
		s.ContainBreached = false
	default:
		s.ContainBreached = now.After(s.ContainBy)
	}
	return s
}

// Measures are the service-level figures of a set of incidents. The
// means are in seconds over the incidents that reached the milestone
// (0 when none did): MTTD from the first observed finding to the
// incident opening, MTTA, MTTC and MTTR from the opening to the
// acknowledgement, containment and resolution.
type Measures struct {
	Incidents           int     `json:"incidents"`
	Open                int     `json:"open"`
	MTTD                float64 `json:"mttd_seconds"`
	MTTA                float64 `json:"mtta_seconds"`
	MTTC                float64 `json:"mttc_seconds"`
	MTTR                float64 `json:"mttr_seconds"`
	AcknowledgeBreaches int     `json:"acknowledge_breaches"`
	ContainBreaches     int     `json:"contain_breaches"`
}

// Figures are the service-level measures of real incidents and, apart,
// of drills.
type Figures struct {
	Real  Measures `json:"real"`
	Drill Measures `json:"drill"`
}

type mean struct {
	sum float64
	n   int
}

func (m *mean) add(v *float64) {
	if v != nil {
		m.sum += *v
		m.n++
	}
}

func (m mean) value() float64 {
	if m.n == 0 {
		return 0
	}
	return m.sum / float64(m.n)
}

// Figures computes the service-level measures over every incident.
func (e *Engine) Figures(ctx context.Context) (Figures, error) {
	now := e.now().UTC()
	var acc [2]struct {
		m                      Measures
		mttd, mtta, mttc, mttr mean
	}
	err := e.db.View(func(txn *badger.Txn) error {
		return eachIncident(txn, func(r *record) error {
			a := &acc[0]
			if r.Drill {
				a = &acc[1]
			}
			s := slaOf(&r.Incident, e.targets, now)
			a.m.Incidents++
			if !r.Status.Terminal() {
				a.m.Open++
			}
			if s.AcknowledgeBreached {
				a.m.AcknowledgeBreaches++
			}
			if s.ContainBreached {
				a.m.ContainBreaches++
			}
			a.mttd.add(s.TimeToDetect)
			a.mtta.add(s.TimeToAcknowledge)
			a.mttc.add(s.TimeToContain)
			a.mttr.add(s.TimeToResolve)
			return nil
		})
	})
	if err != nil {
		return Figures{}, fmt.Errorf("computing incident figures: %w", err)
	}
	for i := range acc {
		a := &acc[i]
		a.m.MTTD, a.m.MTTA, a.m.MTTC, a.m.MTTR = a.mttd.value(), a.mtta.value(), a.mttc.value(), a.mttr.value()
	}
	return Figures{Real: acc[0].m, Drill: acc[1].m}, nil
}
