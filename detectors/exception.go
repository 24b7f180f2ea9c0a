package detectors

import (
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Exception silences a rule's findings on the events it matches, until
// it expires. Responders add them for known-good activity, with a
// reason.
type Exception struct {
	RuleID string
	// Match reports whether an event is covered; nil covers every event.
	Match func(*ecs.Event) bool
	// Expires is when the exception stops applying; zero never.
	Expires time.Time
	Reason  string
}

// SetExceptions replaces the Engine's exceptions. Call it before the
// first Process.
func (e *Engine) SetExceptions(ex []Exception) {
	e.exceptions = append([]Exception(nil), ex...)
	e.excepted = make([]int, len(ex))
}

// Excepted returns, per exception in the order given to SetExceptions,
// how many findings it has silenced.
func (e *Engine) Excepted() []int {
	return append([]int(nil), e.excepted...)
}

// except reports whether an exception covers rule on ev at now, counting
// it.
func (e *Engine) except(rule string, ev *ecs.Event, now time.Time) bool {
	for i, x := range e.exceptions {
		if x.RuleID != rule || (!x.Expires.IsZero() && !now.Before(x.Expires)) {
			continue
		}
		if x.Match == nil || x.Match(ev) {
			e.excepted[i]++
			return true
		}
	}
	return false
}
