package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Query selects findings; empty fields match everything.
type Query struct {
	Agent    string
	Incident string
	Severity string
	store.Page
}

// Get returns one finding.
func (s *Store) Get(ctx context.Context, id string) (*Finding, error) {
	var r stored
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		r, err = loadByID(txn, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", id, err)
	}
	return r.Finding, nil
}

// List returns findings newest received first, and the cursor of the next
// page.
func (s *Store) List(ctx context.Context, q Query) ([]*Finding, string, error) {
	if q.Severity != "" && !KnownSeverity(q.Severity) {
		return nil, "", store.Invalid("severity", "%q is not one of low, medium, high, critical", q.Severity)
	}
	prefix := logPrefix
	switch {
	case q.Incident != "":
		prefix = incidentIndex(q.Incident)
	case q.Agent != "":
		prefix = agentIndex(q.Agent)
	case q.Severity != "":
		prefix = severityIndex(q.Severity)
	}
	var (
		items []*Finding
		next  string
	)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, prefix, q.Page, func(key, val []byte) (*Finding, bool, error) {
			seq, err := store.ParseU64(key[len(prefix):])
			if err != nil {
				return nil, false, fmt.Errorf("index entry %q: %w", key, err)
			}
			var f *Finding
			if bytes.Equal(prefix, logPrefix) {
				f, err = logValue(txn, seq, val)
			} else {
				f, err = loadSeq(txn, seq)
			}
			if err != nil {
				return nil, false, err
			}
			ok := (q.Agent == "" || f.AgentID == q.Agent) &&
				(q.Incident == "" || f.IncidentID == q.Incident) &&
				(q.Severity == "" || f.Severity == q.Severity)
			return f, ok, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing findings: %w", err)
	}
	return items, next, nil
}

// Attach records, inside txn, that a finding belongs to an incident. It
// returns false, changing nothing, when the finding already belongs to
// one or is not stored.
func (s *Store) Attach(txn *badger.Txn, findingID, incidentID string) (bool, error) {
	r, err := loadByID(txn, findingID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.IncidentID != "" {
		return false, nil
	}
	r.IncidentID = incidentID
	// Written in format 2 whatever it was stored in.
	if err := txn.Set(logKey(r.Seq), encodeRecord(make([]byte, 0, recordSize(r.Finding)), r.Finding)); err != nil {
		return false, fmt.Errorf("writing finding %s: %w", findingID, err)
	}
	if r.Format != format2 {
		if err := txn.Set(findingKey(findingID), refValue(r.Seq)); err != nil {
			return false, fmt.Errorf("writing finding %s: %w", findingID, err)
		}
	}
	if err := txn.Set(indexKey(incidentIndex(incidentID), r.Seq), nil); err != nil {
		return false, fmt.Errorf("indexing finding %s under incident %s: %w", findingID, incidentID, err)
	}
	return true, nil
}
