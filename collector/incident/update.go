package incident

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Query selects incidents; empty fields match everything.
type Query struct {
	Status Status
	Agent  string
	store.Page
}

// Get returns one incident.
func (e *Engine) Get(ctx context.Context, id string) (*Incident, error) {
	var r record
	err := e.db.View(func(txn *badger.Txn) error { return store.Get(txn, incidentKey(id), &r) })
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return &r.Incident, nil
}

// List returns incidents newest first, and the cursor of the next page.
func (e *Engine) List(ctx context.Context, q Query) ([]*Incident, string, error) {
	if q.Status != "" && !q.Status.Known() {
		return nil, "", store.Invalid("status", "unknown status %q", q.Status)
	}
	prefix := store.Prefix("incident")
	if q.Agent != "" {
		prefix = agentIndex(q.Agent)
	}
	var (
		items []*Incident
		next  string
	)
	err := e.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, prefix, q.Page, func(_, val []byte) (*Incident, bool, error) {
			var r record
			if q.Agent != "" {
				if err := store.Get(txn, incidentKey(string(val)), &r); err != nil {
					return nil, false, fmt.Errorf("incident %s: %w", val, err)
				}
			} else if err := store.Decode(val, &r); err != nil {
				return nil, false, err
			}
			return &r.Incident, q.Status == "" || r.Status == q.Status, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing incidents: %w", err)
	}
	return items, next, nil
}

// Change is an update of an incident; nil fields stay as they are.
type Change struct {
	Status   *Status
	Assignee *string
	Impact   *int
	Urgency  *int
	Comment  *string
	Review   *Review
}

func (c *Change) validate() error {
	if c.Status == nil && c.Assignee == nil && c.Impact == nil && c.Urgency == nil && c.Comment == nil && c.Review == nil {
		return store.Invalid("", "nothing to change: give status, assignee, impact, urgency, comment or review")
	}
	if c.Status != nil && !c.Status.Known() {
		return store.Invalid("status", "unknown status %q", *c.Status)
	}
	if c.Impact != nil && (*c.Impact < 1 || *c.Impact > 4) {
		return store.Invalid("impact", "must be 1 (highest) to 4")
	}
	if c.Urgency != nil && (*c.Urgency < 1 || *c.Urgency > 4) {
		return store.Invalid("urgency", "must be 1 (highest) to 4")
	}
	if c.Comment != nil && strings.TrimSpace(*c.Comment) == "" {
		return store.Invalid("comment", "empty")
	}
	if c.Review != nil {
		if strings.TrimSpace(c.Review.RootCause) == "" {
			return store.Invalid("review.root_cause", "empty")
		}
		if strings.TrimSpace(c.Review.LessonsLearned) == "" {
			return store.Invalid("review.lessons_learned", "empty")
		}
	}
	return nil
}

// Update applies a change made by actor (an API key name) and returns the
// incident as it is afterwards. Errors are *store.FieldError for bad
// input (conflicting with ErrConflict for an invalid transition) and
// store.ErrNotFound for an unknown incident.
func (e *Engine) Update(ctx context.Context, id string, c Change, actor string) (*Incident, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var r record
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		r = record{}
		if err := store.Get(txn, incidentKey(id), &r); err != nil {
			return err
		}
		closed := r.Status.Terminal()
		if err := e.change(&r, c, actor); err != nil {
			return err
		}
		if err := store.Put(txn, incidentKey(id), &r); err != nil {
			return err
		}
		return e.changed(txn, &r, closed)
	})
	if err != nil {
		return nil, fmt.Errorf("updating incident %s: %w", id, err)
	}
	return &r.Incident, nil
}

func (e *Engine) change(r *record, c Change, actor string) error {
	now := e.now().UTC()
	note := func(action, detail string) {
		r.Timeline = append(r.Timeline, Entry{At: now, Actor: actor, Action: action, Detail: detail})
	}
	if c.Review != nil {
		rv := *c.Review
		if rv.FollowUpActions == nil {
			rv.FollowUpActions = []string{}
		}
		r.Review = &rv
		note(ActionReview, "root cause: "+rv.RootCause)
	}
	if c.Assignee != nil && *c.Assignee != r.Assignee {
		r.Assignee = *c.Assignee
		if r.Assignee == "" {
			note(ActionAssigned, "unassigned")
		} else {
			note(ActionAssigned, r.Assignee)
		}
	}
	if c.Impact != nil && *c.Impact != r.Impact {
		before, p := r.Impact, r.Priority
		r.Impact = *c.Impact
		r.Priority = Priority(r.Impact, r.Urgency)
		note(ActionImpact, fmt.Sprintf("%d → %d, priority %s → %s", before, r.Impact, p, r.Priority))
	}
	if c.Urgency != nil && *c.Urgency != r.Urgency {
		before, p := r.Urgency, r.Priority
		r.Urgency = *c.Urgency
		r.Priority = Priority(r.Impact, r.Urgency)
		note(ActionUrgency, fmt.Sprintf("%d → %d, priority %s → %s", before, r.Urgency, p, r.Priority))
	}
	if c.Status != nil && *c.Status != r.Status {
		from, to := r.Status, *c.Status
		if err := checkTransition(from, to); err != nil {
			return err
		}
		if to == StatusClosed && (r.Priority == "P1" || r.Priority == "P2") && r.Review == nil {
			return store.Conflict("status", "post-incident review required to close a %s incident: give review.root_cause and review.lessons_learned", r.Priority)
		}
		r.Status = to
		setOnce := func(t *time.Time) {
			if t.IsZero() {
				*t = now
			}
		}
		setOnce(&r.AcknowledgedAt)
		switch to {
		case StatusContained:
			setOnce(&r.ContainedAt)
		case StatusRecovered:
			setOnce(&r.ResolvedAt)
		case StatusClosed:
			setOnce(&r.ResolvedAt)
			setOnce(&r.ClosedAt)
		case StatusFalsePositive, StatusDuplicate:
			setOnce(&r.ClosedAt)
		}
		note(ActionStatusChanged, fmt.Sprintf("%s → %s", from, to))
	}
	if c.Comment != nil {
		note(ActionComment, *c.Comment)
	}
	r.UpdatedAt = now
	return nil
}

// Note appends an entry to an incident's timeline, e.g. a command sent
// for it.
func (e *Engine) Note(ctx context.Context, id, actor, action, detail string) error {
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		var r record
		if err := store.Get(txn, incidentKey(id), &r); err != nil {
			return err
		}
		now := e.now().UTC()
		r.Timeline = append(r.Timeline, Entry{At: now, Actor: actor, Action: action, Detail: detail})
		r.UpdatedAt = now
		if err := store.Put(txn, incidentKey(id), &r); err != nil {
			return err
		}
		return e.changed(txn, &r, r.Status.Terminal())
	})
	if err != nil {
		return fmt.Errorf("noting %s on incident %s: %w", action, id, err)
	}
	return nil
}
