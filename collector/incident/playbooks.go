package incident

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/playbook"
	"github.com/cordon-edr/cordon/collector/store"
)

// Responder sends the commands of playbook actions.
type Responder interface {
	// Respond queues action on agent for the incident and returns the
	// command id.
	Respond(ctx context.Context, agentID, action, reason, incidentID, requestedBy string) (string, error)
}

// PlaybookState is the playbook attached to an incident: its checklist
// with what was ticked, and its automatic actions per host.
type PlaybookState struct {
	Type    string        `json:"type"`
	Name    string        `json:"name"`
	Source  string        `json:"source"`
	DryRun  bool          `json:"dry_run"`
	Steps   []StepState   `json:"steps"`
	Actions []ActionState `json:"actions"`
}

// StepState is one checklist item.
type StepState struct {
	ID     string    `json:"id"`
	Title  string    `json:"title"`
	Done   bool      `json:"done"`
	DoneBy string    `json:"done_by,omitempty"`
	DoneAt time.Time `json:"done_at,omitzero"`
}

// ActionState is one automatic action on one host.
type ActionState struct {
	// Ref names the action on the host, "<action id>/<agent id>", as
	// approve takes it.
	Ref       string `json:"ref"`
	ID        string `json:"id"`
	Action    string `json:"action"`
	AgentID   string `json:"agent_id"`
	Status    string `json:"status"`
	CommandID string `json:"command_id,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Statuses of an ActionState.
const (
	ActionAwaitingApproval = "awaiting_approval"
	ActionDryRun           = "dry_run"
	ActionSending          = "sending"
	ActionSent             = "sent"
	ActionFailed           = "failed"
)

// Timeline actions of playbooks.
const (
	ActionPlaybook       = "playbook_attached"
	ActionStepDone       = "checklist_done"
	ActionStepUndone     = "checklist_undone"
	ActionPlaybookAction = "playbook_action"
	ActionApproved       = "playbook_approved"
)

// actorPlaybook is the timeline actor of the actions of playbook name.
func actorPlaybook(name string) string { return "playbook:" + name }

// dispatch is a playbook action to send once its transaction committed.
type dispatch struct {
	incidentID, ref, agentID, action, reason, actor string
}

// runPlaybook attaches the playbook of r's type when it has none or
// another one, and plans its actions on every host they apply to that has
// no entry yet. It returns the actions to send.
func (e *Engine) runPlaybook(r *record, at time.Time) []dispatch {
	p := e.playbooks[r.Type]
	if p == nil {
		return nil
	}
	if r.Playbook == nil || r.Playbook.Type != p.Type {
		st := &PlaybookState{Type: p.Type, Name: p.Name, Source: p.Source, DryRun: p.DryRun || e.dryRun, Actions: []ActionState{}}
		for _, s := range p.Steps {
			step := StepState{ID: s.ID, Title: s.Title}
			// Keep what was ticked under the previous playbook.
			if r.Playbook != nil {
				if i := slices.IndexFunc(r.Playbook.Steps, func(o StepState) bool { return o.ID == s.ID }); i >= 0 {
					step = r.Playbook.Steps[i]
					step.Title = s.Title
				}
			}
			st.Steps = append(st.Steps, step)
		}
		if r.Playbook != nil {
			st.Actions = r.Playbook.Actions
		}
		r.Playbook = st
		r.Timeline = append(r.Timeline, Entry{At: at, Actor: ActorCordon, Action: ActionPlaybook,
			Detail: fmt.Sprintf("%s (%s): %d steps, %d automatic actions", p.Name, p.Source, len(p.Steps), len(p.Actions))})
	}
	var out []dispatch
	actor := actorPlaybook(p.Name)
	for _, a := range p.Actions {
		for _, host := range r.AffectedHosts {
			ref := a.ID + "/" + host
			if slices.ContainsFunc(r.Playbook.Actions, func(s ActionState) bool { return s.Ref == ref }) {
				continue
			}
			crit := r.Criticality[host]
			if !a.Applies(crit, r.Priority, r.Drill) {
				continue
			}
			st := ActionState{Ref: ref, ID: a.ID, Action: a.Action, AgentID: host}
			var detail string
			switch {
			case a.NeedsApproval(crit):
				st.Status = ActionAwaitingApproval
				detail = fmt.Sprintf("%s on %s (criticality %s) awaits a responder's approval (approve %q)", a.Action, host, crit, ref)
			case r.Playbook.DryRun:
				st.Status = ActionDryRun
				detail = fmt.Sprintf("dry run: would %s %s (criticality %s): %s", a.Action, host, crit, a.Reason)
			default:
				st.Status = ActionSending
				detail = fmt.Sprintf("%s %s (criticality %s): %s", a.Action, host, crit, a.Reason)
				out = append(out, dispatch{incidentID: r.ID, ref: ref, agentID: host, action: a.Action, reason: a.Reason, actor: actor})
			}
			st.Detail = detail
			r.Playbook.Actions = append(r.Playbook.Actions, st)
			r.Timeline = append(r.Timeline, Entry{At: at, Actor: actor, Action: ActionPlaybookAction, Detail: detail})
		}
	}
	return out
}

// approve marks the action ref of r approved by actor and returns what to
// send, or an error naming "approve".
func (e *Engine) approve(r *record, ref, actor string, at time.Time) (dispatch, error) {
	if r.Playbook == nil {
		return dispatch{}, store.Invalid("approve", "the incident has no playbook")
	}
	i := slices.IndexFunc(r.Playbook.Actions, func(s ActionState) bool { return s.Ref == ref })
	if i < 0 {
		return dispatch{}, store.Missing("approve", "no playbook action %q on this incident", ref)
	}
	st := &r.Playbook.Actions[i]
	if st.Status != ActionAwaitingApproval {
		return dispatch{}, store.Conflict("approve", "playbook action %s is %s, not awaiting approval", ref, st.Status)
	}
	reason := "approved by " + actor
	if p := e.playbooks[r.Playbook.Type]; p != nil {
		for _, a := range p.Actions {
			if a.ID == st.ID && a.Reason != "" {
				reason = a.Reason + " (" + reason + ")"
			}
		}
	}
	st.Status = ActionSending
	r.Timeline = append(r.Timeline, Entry{At: at, Actor: actor, Action: ActionApproved, Detail: fmt.Sprintf("%s on %s", st.Action, st.AgentID)})
	return dispatch{incidentID: r.ID, ref: ref, agentID: st.AgentID, action: st.Action, reason: reason, actor: actor}, nil
}

// tick sets a checklist step done or not.
func tick(r *record, id string, done bool, actor string, at time.Time) error {
	field := "check"
	if !done {
		field = "uncheck"
	}
	if r.Playbook == nil {
		return store.Invalid(field, "the incident has no playbook")
	}
	i := slices.IndexFunc(r.Playbook.Steps, func(s StepState) bool { return s.ID == id })
	if i < 0 {
		var ids []string
		for _, s := range r.Playbook.Steps {
			ids = append(ids, s.ID)
		}
		return store.Missing(field, "no step %q in playbook %s (steps: %s)", id, r.Playbook.Name, strings.Join(ids, ", "))
	}
	s := &r.Playbook.Steps[i]
	if s.Done == done {
		return nil
	}
	s.Done = done
	action := ActionStepDone
	if done {
		s.DoneBy, s.DoneAt = actor, at
	} else {
		s.DoneBy, s.DoneAt = "", time.Time{}
		action = ActionStepUndone
	}
	r.Timeline = append(r.Timeline, Entry{At: at, Actor: actor, Action: action, Detail: s.ID + ": " + s.Title})
	return nil
}

// send queues the commands of ds and records each outcome on its
// incident. An action whose command cannot be queued is marked failed.
func (e *Engine) send(ctx context.Context, ds []dispatch) {
	for _, d := range ds {
		status, cmdID, detail := ActionFailed, "", ""
		if e.responder == nil {
			detail = "no responder configured to send commands"
		} else if id, err := e.responder.Respond(ctx, d.agentID, d.action, d.reason, d.incidentID, d.actor); err != nil {
			detail = fmt.Sprintf("%s on %s failed: %v", d.action, d.agentID, err)
		} else {
			status, cmdID = ActionSent, id
			detail = fmt.Sprintf("%s on %s sent as command %s", d.action, d.agentID, id)
		}
		err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
			var r record
			if err := store.Get(txn, incidentKey(d.incidentID), &r); err != nil {
				return err
			}
			if r.Playbook != nil {
				if i := slices.IndexFunc(r.Playbook.Actions, func(s ActionState) bool { return s.Ref == d.ref }); i >= 0 {
					r.Playbook.Actions[i].Status, r.Playbook.Actions[i].CommandID, r.Playbook.Actions[i].Detail = status, cmdID, detail
				}
			}
			now := e.now().UTC()
			r.Timeline = append(r.Timeline, Entry{At: now, Actor: d.actor, Action: ActionPlaybookAction, Detail: detail})
			r.UpdatedAt = now
			return store.Put(txn, incidentKey(d.incidentID), &r)
		})
		if err != nil {
			e.logger.Error("recording a playbook action", "incident", d.incidentID, "action", d.ref, "err", err)
		}
		if status == ActionFailed {
			e.logger.Warn("playbook action failed", "incident", d.incidentID, "action", d.ref, "detail", detail)
		}
	}
}

// Playbook returns the playbook of an incident type, or nil.
func (e *Engine) Playbook(typ string) *playbook.Playbook { return e.playbooks[typ] }
