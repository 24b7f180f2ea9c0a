package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// indexOrder is the preference among indexed fields when a query pins
// several: the most selective first.
var indexOrder = []string{"file.hash.sha256", "file.path", "process.executable", "destination.ip", "source.ip"}

// SearchStats says how a search went.
type SearchStats struct {
	// Scanned counts the events read and tested.
	Scanned int
	// Index names the indexed field the search read through; empty for a
	// scan by time.
	Index string
}

// Search calls fn with each stored event at or after since that q
// matches, until fn returns false or ctx ends (then it returns ctx's
// error with what it found so far). When q pins an indexed field to
// values (query.Query.Equalities), only the events with those values are
// read; otherwise every event since since is.
func (s *Store) Search(ctx context.Context, q *query.Query, since time.Time, fn func(ev ecs.Event) bool) (SearchStats, error) {
	var st SearchStats
	eq := q.Equalities()
	for _, f := range indexOrder {
		if vals := eq[f]; len(vals) > 0 {
			st.Index = f
			break
		}
	}
	err := s.db.View(func(txn *badger.Txn) error {
		if st.Index == "" {
			return s.scanTime(ctx, txn, q, since, &st, fn)
		}
		vals := slices.Clone(eq[st.Index])
		slices.Sort(vals)
		for _, v := range slices.Compact(vals) {
			more, err := s.scanIndex(ctx, txn, q, st.Index, v, since, &st, fn)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
	return st, err
}

func sinceKey(prefix []byte, since time.Time) []byte {
	k := slices.Clone(prefix)
	if since.IsZero() || since.UnixNano() < 0 {
		return k
	}
	return binary.BigEndian.AppendUint64(k, uint64(since.UnixNano()))
}

func (s *Store) scanTime(ctx context.Context, txn *badger.Txn, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(sinceKey(eventPrefix, since)); it.Valid(); it.Next() {
		if st.Scanned%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		more, err := s.test(it.Item(), q, st, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *Store) scanIndex(ctx context.Context, txn *badger.Txn, q *query.Query, field, value string, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	prefix := indexKeyPrefix(field, value)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(sinceKey(prefix, since)); it.Valid(); it.Next() {
		if st.Scanned%256 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		k := it.Item().Key()
		if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+12 {
			continue
		}
		ek := append(slices.Clone(eventPrefix), k[len(prefix):]...)
		item, err := txn.Get(ek)
		if err != nil {
			continue // swept between the index entry and the event
		}
		more, err := s.test(item, q, st, fn)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

func (s *Store) test(item *badger.Item, q *query.Query, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	st.Scanned++
	var ev ecs.Event
	err := item.Value(func(val []byte) error { return json.Unmarshal(val, &ev) })
	if err != nil {
		s.log.Debug("skipping an undecodable history entry", "key", fmt.Sprintf("%x", item.Key()), "err", err)
		return true, nil
	}
	if !q.Match(&ev) {
		return true, nil
	}
	return fn(ev), nil
}
