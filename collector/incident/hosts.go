package incident

import (
	"context"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
)

// AddHost adds an agent to an incident's affected hosts by hand, e.g. a
// host a hunt for the incident's indicators found; detail says why (it
// goes on the timeline). Adding a host already affected changes nothing.
// The incident is classified again, as more hosts may raise its impact.
func (e *Engine) AddHost(ctx context.Context, id, agentID, actor, detail string) (*Incident, error) {
	if agentID == "" {
		return nil, store.Invalid("agent_id", "missing")
	}
	if e.agents != nil {
		if _, _, ok := e.agents.Lookup(agentID); !ok {
			return nil, store.Missing("agent_id", "no agent %q", agentID)
		}
	}
	_, criticality := e.host(&ingest.Finding{AgentID: agentID})
	var r record
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		r = record{}
		if err := store.Get(txn, incidentKey(id), &r); err != nil {
			return err
		}
		if slices.Contains(r.AffectedHosts, agentID) {
			return nil
		}
		if r.Status.Terminal() {
			return store.Conflict("status", "incident %s is %s; reopen it before adding hosts", id, r.Status)
		}
		now := e.now().UTC()
		r.AffectedHosts = append(r.AffectedHosts, agentID)
		if r.Criticality == nil {
			r.Criticality = map[string]string{}
		}
		r.Criticality[agentID] = criticality
		msg := "host " + agentID + " added"
		if detail != "" {
			msg += ": " + detail
		}
		r.Timeline = append(r.Timeline, Entry{At: now, Actor: actor, Action: ActionHostAdded, Detail: msg})
		r.UpdatedAt = now
		e.classify(&r, now, "adding host "+agentID)
		if err := store.Put(txn, incidentKey(id), &r); err != nil {
			return err
		}
		return e.changed(txn, &r, false)
	})
	if err != nil {
		return nil, fmt.Errorf("adding host %s to incident %s: %w", agentID, id, err)
	}
	return e.Get(ctx, id)
}
