package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

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
	match := func(f *Finding) bool {
		return (q.Agent == "" || f.AgentID == q.Agent) &&
			(q.Incident == "" || f.IncidentID == q.Incident) &&
			(q.Severity == "" || f.Severity == q.Severity)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if bytes.Equal(prefix, logPrefix) {
			items, next, err = newest(txn, prefix, q.Page, decodeLog, func(e logEntry) (*Finding, bool, error) {
				f, err := logFinding(txn, e)
				if err != nil {
					return nil, false, err
				}
				return f, match(f), nil
			})
			return err
		}
		lr := newLogReader(txn)
		defer lr.Close()
		items, next, err = newest(txn, prefix, q.Page, expandPosting, func(e logEntry) (*Finding, bool, error) {
			f, err := lr.finding(e.seq, 0, false)
			if err != nil {
				return nil, false, err
			}
			return f, match(f), nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing findings: %w", err)
	}
	return items, next, nil
}

// newest lists findings newest first, as store.Newest lists keys, with
// the same cursors (the log position of the last finding of the page):
// it walks the keys under prefix backwards, expands each value into the
// positions it holds (ascending, with what it holds for each, valid until
// the next key) and walks those backwards, and visit loads each and says
// whether it belongs to the listing.
func newest(txn *badger.Txn, prefix []byte, p store.Page,
	expand func(dst []logEntry, first uint64, val []byte) ([]logEntry, error),
	visit func(e logEntry) (*Finding, bool, error),
) ([]*Finding, string, error) {
	start, suffix, err := p.Start(prefix)
	if err != nil {
		return nil, "", err
	}
	below := uint64(math.MaxUint64)
	if suffix != nil {
		if len(suffix) != 8 {
			return nil, "", store.Invalid("cursor", "not a cursor returned by this listing")
		}
		below = binary.BigEndian.Uint64(suffix)
	}
	it := store.ReverseIterator(txn, prefix)
	defer it.Close()

	limit := p.Size()
	var (
		items   []*Finding
		last    uint64
		val     []byte
		entries []logEntry
	)
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		first, err := store.ParseU64(key[len(prefix):])
		if err != nil {
			return nil, "", fmt.Errorf("entry %q: %w", key, err)
		}
		if val, err = item.ValueCopy(val[:0]); err != nil {
			return nil, "", fmt.Errorf("reading entry %q: %w", key, err)
		}
		if entries, err = expand(entries[:0], first, val); err != nil {
			return nil, "", fmt.Errorf("entry %q: %w", key, err)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if e.seq >= below {
				continue
			}
			f, ok, err := visit(e)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
			if len(items) == limit {
				return items, store.EncodeCursor([]byte(store.U64(last))), nil
			}
			items = append(items, f)
			last = e.seq
		}
	}
	return items, "", nil
}

// Attach records, inside txn, that a finding belongs to an incident. It
// returns false, changing nothing, when the finding already belongs to
// one or is not stored.
//
// Since format 4 the incident is recorded in the finding's key, and its
// log entry (maybe a block of many) is left as it is: a finding appended
// since is attached without reading its record. A format 1 finding,
// whose log entry holds only its id and whose key held it whole, gets
// its record written into its log entry.
func (s *Store) Attach(txn *badger.Txn, findingID, incidentID string) (bool, error) {
	rf, err := loadRef(txn, findingID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if rf.format != formatRef4 {
		r, err := loadByID(txn, findingID)
		if err != nil {
			return false, err
		}
		rf = ref{seq: r.Seq, first: r.First, incidentID: r.IncidentID}
		if r.IncidentID == "" && r.Format == 1 {
			if err := txn.Set(logKey(r.Seq), encodeRecord(make([]byte, 0, recordSize(r.Finding)), r.Finding)); err != nil {
				return false, fmt.Errorf("writing finding %s: %w", findingID, err)
			}
		}
	}
	if rf.incidentID != "" {
		return false, nil
	}
	if err := txn.Set(findingKey(findingID), ref4(rf.seq, rf.first, incidentID)); err != nil {
		return false, fmt.Errorf("writing finding %s: %w", findingID, err)
	}
	if err := txn.Set(indexKey(incidentIndex(incidentID), rf.seq), nil); err != nil {
		return false, fmt.Errorf("indexing finding %s under incident %s: %w", findingID, incidentID, err)
	}
	return true, nil
}
