package incident

import (
	"context"
	"fmt"
	"slices"
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
	inc := &r.Incident
	inc.SLA = slaOf(inc, e.targets, e.now().UTC())
	err = e.db.View(func(txn *badger.Txn) error {
		var err error
		inc.Similar, err = similar(txn, inc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("incident %s: finding similar incidents: %w", id, err)
	}
	return inc, nil
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
		now   = e.now().UTC()
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
			r.SLA = slaOf(&r.Incident, e.targets, now)
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
	// Check and Uncheck tick a playbook step (by id) or untick it.
	Check   *string
	Uncheck *string
	// Approve approves a playbook action awaiting approval (by ref,
	// "<action id>/<agent id>"), which sends its command.
	Approve *string
}

func (c *Change) validate() error {
	if c.Status == nil && c.Assignee == nil && c.Impact == nil && c.Urgency == nil && c.Comment == nil && c.Review == nil &&
		c.Check == nil && c.Uncheck == nil && c.Approve == nil {
		return store.Invalid("", "nothing to change: give status, assignee, impact, urgency, comment, review, check, uncheck or approve")
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
	if (c.Impact != nil || c.Urgency != nil) && c.Comment == nil {
		return store.Invalid("comment", "overriding impact or urgency needs a comment giving the reason")
	}
	if c.Review != nil {
		if strings.TrimSpace(c.Review.RootCause) == "" {
			return store.Invalid("review.root_cause", "empty")
		}
		if strings.TrimSpace(c.Review.LessonsLearned) == "" {
			return store.Invalid("review.lessons_learned", "empty")
		}
		if !slices.ContainsFunc(c.Review.FollowUpActions, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			return store.Invalid("review.follow_up_actions", "give at least one follow-up action")
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
	containedBy := ""
	if c.Status != nil && containing(*c.Status) && e.contain != nil {
		var err error
		if containedBy, err = e.contain.Contained(ctx, id); err != nil {
			return nil, fmt.Errorf("updating incident %s: looking up its containment commands: %w", id, err)
		}
	}
	var r record
	var sends []dispatch
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		r, sends = record{}, nil
		if err := store.Get(txn, incidentKey(id), &r); err != nil {
			return err
		}
		closed := r.Status.Terminal()
		if err := e.change(&r, c, actor, containedBy); err != nil {
			return err
		}
		if c.Approve != nil {
			d, err := e.approve(&r, *c.Approve, actor, e.now().UTC())
			if err != nil {
				return err
			}
			sends = append(sends, d)
		}
		if err := store.Put(txn, incidentKey(id), &r); err != nil {
			return err
		}
		return e.changed(txn, &r, closed)
	})
	if err != nil {
		return nil, fmt.Errorf("updating incident %s: %w", id, err)
	}
	if len(sends) > 0 {
		e.send(ctx, sends)
		var after *Incident
		if after, err = e.Get(ctx, id); err != nil {
			return nil, err
		}
		return after, nil
	}
	r.SLA = slaOf(&r.Incident, e.targets, e.now().UTC())
	return &r.Incident, nil
}

// containing reports whether an incident in status s has been contained:
// contained and every later step of the lifecycle.
func containing(s Status) bool {
	i := slices.Index(lifecycle, s)
	return i >= slices.Index(lifecycle, StatusContained)
}

// change applies c to r. containedBy describes a succeeded containment
// command of the incident, "" when there is none.
func (e *Engine) change(r *record, c Change, actor, containedBy string) error {
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
		note(ActionReview, fmt.Sprintf("root cause: %s; lessons learned: %s; follow-up: %s", rv.RootCause, rv.LessonsLearned, strings.Join(rv.FollowUpActions, "; ")))
	}
	if c.Assignee != nil && *c.Assignee != r.Assignee {
		r.Assignee = *c.Assignee
		if r.Assignee == "" {
			note(ActionAssigned, "unassigned")
		} else {
			note(ActionAssigned, r.Assignee)
		}
	}
	if c.Impact != nil {
		before, p := r.Impact, r.Priority
		r.Impact = *c.Impact
		r.Overrides = union(r.Overrides, []string{"impact"})
		r.Priority = Priority(r.Impact, r.Urgency)
		note(ActionImpact, fmt.Sprintf("%d → %d, priority %s → %s: %s", before, r.Impact, p, r.Priority, *c.Comment))
	}
	if c.Urgency != nil {
		before, p := r.Urgency, r.Priority
		r.Urgency = *c.Urgency
		r.Overrides = union(r.Overrides, []string{"urgency"})
		r.Priority = Priority(r.Impact, r.Urgency)
		note(ActionUrgency, fmt.Sprintf("%d → %d, priority %s → %s: %s", before, r.Urgency, p, r.Priority, *c.Comment))
	}
	if c.Status != nil && *c.Status != r.Status {
		from, to := r.Status, *c.Status
		if err := checkTransition(from, to); err != nil {
			return err
		}
		if to == StatusClosed && (r.Priority == "P1" || r.Priority == "P2") && r.Review == nil {
			return store.Conflict("status", "post-incident review required to close a %s incident: give review.root_cause, review.lessons_learned and review.follow_up_actions", r.Priority)
		}
		how := ""
		if containing(to) && r.ContainedAt.IsZero() {
			switch {
			case containedBy != "":
				how = " (contained by " + containedBy + ")"
			case c.Comment != nil:
				how = " (containment justified in the comment)"
			default:
				return store.Conflict("status", "moving to %s needs a succeeded containment command (isolate, kill, suspend or quarantine with this incident_id) or a comment justifying the containment", to)
			}
		}
		r.Status = to
		setOnce := func(t *time.Time) {
			if t.IsZero() {
				*t = now
			}
		}
		setOnce(&r.AcknowledgedAt)
		if containing(to) {
			setOnce(&r.ContainedAt)
		}
		switch to {
		case StatusRecovered:
			setOnce(&r.ResolvedAt)
		case StatusClosed:
			setOnce(&r.ResolvedAt)
			setOnce(&r.ClosedAt)
		case StatusFalsePositive, StatusDuplicate:
			setOnce(&r.ClosedAt)
		}
		note(ActionStatusChanged, fmt.Sprintf("%s → %s%s", from, to, how))
	}
	if c.Comment != nil {
		note(ActionComment, *c.Comment)
	}
	if c.Check != nil {
		if err := tick(r, *c.Check, true, actor, now); err != nil {
			return err
		}
	}
	if c.Uncheck != nil {
		if err := tick(r, *c.Uncheck, false, actor, now); err != nil {
			return err
		}
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
