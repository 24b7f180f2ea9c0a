package command

import (
	"context"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// containmentActions are the actions that contain an incident.
var containmentActions = []string{ActionIsolate, ActionKill, ActionSuspend, ActionQuarantine}

// Contained implements incident.Containment: it describes the earliest
// succeeded containment command sent for the incident ("isolate command
// ID on agent A"), or returns "" when there is none.
func (q *Queue) Contained(ctx context.Context, incidentID string) (string, error) {
	var found *Command
	err := q.db.View(func(txn *badger.Txn) error {
		prefix := store.Prefix("command")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var c Command
			if err := it.Item().Value(func(v []byte) error { return store.Decode(v, &c) }); err != nil {
				return fmt.Errorf("command %s: %w", it.Item().Key()[len(prefix):], err)
			}
			if c.IncidentID != incidentID || c.Status != StatusSucceeded || !slices.Contains(containmentActions, c.Action) {
				continue
			}
			if found == nil || c.FinishedAt.Before(found.FinishedAt) {
				found = &c
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("looking up the containment commands of incident %s: %w", incidentID, err)
	}
	if found == nil {
		return "", nil
	}
	return fmt.Sprintf("%s command %s on agent %s", found.Action, found.ID, found.AgentID), nil
}

// Respond implements incident.Responder: it queues a playbook's command
// for an incident.
func (q *Queue) Respond(ctx context.Context, agentID, action, reason, incidentID, requestedBy string) (string, error) {
	req := Request{AgentID: agentID, Action: action, Reason: reason, IncidentID: incidentID, RequestedBy: requestedBy}
	if err := req.Validate(); err != nil {
		return "", err
	}
	c, err := q.Create(ctx, req)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}
