package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
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
			more, err := s.scanTime(ctx, txn, q, since, &st, fn)
			if err != nil || !more {
				return err
			}
			_, err = s.scanBlocks(ctx, txn, q, since, &st, fn)
			return err
		}
		vals := slices.Clone(eq[st.Index])
		slices.Sort(vals)
		for _, v := range slices.Compact(vals) {
			more, err := s.scanIndex(ctx, txn, q, st.Index, v, since, &st, fn)
			if err != nil || !more {
				return err
			}
			more, err = s.scanBlockIndex(ctx, txn, q, st.Index, v, since, &st, fn)
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

// scanTime scans the events of the layout before blocks.
func (s *Store) scanTime(ctx context.Context, txn *badger.Txn, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(sinceKey(eventPrefix, since)); it.Valid(); it.Next() {
		if st.Scanned%256 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		more, err := s.test(it.Item(), q, st, fn)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

// blockSince is where a search from since starts among block keys: a
// block starts at most blockSpan before its last event.
func blockSince(prefix []byte, since time.Time) []byte {
	if since.IsZero() {
		return sinceKey(prefix, since)
	}
	return sinceKey(prefix, since.Add(-blockSpan))
}

// scanBlocks scans the events stored in blocks.
func (s *Store) scanBlocks(ctx context.Context, txn *badger.Txn, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix, PrefetchValues: true, PrefetchSize: 4})
	defer it.Close()
	for it.Seek(blockSince(blockPrefix, since)); it.Valid(); it.Next() {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		item := it.Item()
		if b, ok := parseBlockKey(item.Key()); !ok || b.last.Before(since) {
			continue
		}
		more := true
		err := item.Value(func(val []byte) error {
			blk, err := parseBlock(val, true)
			if err != nil {
				s.log.Debug("skipping a malformed history block", "key", fmt.Sprintf("%x", item.Key()), "err", err)
				return nil
			}
			for i := range blk.events {
				if i%256 == 255 && ctx.Err() != nil {
					return ctx.Err()
				}
				if more = s.testEvent(blk.events[i], q, since, st, fn); !more {
					return nil
				}
			}
			return nil
		})
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

// scanBlockIndex reads the events stored in blocks whose field has value.
func (s *Store) scanBlockIndex(ctx context.Context, txn *badger.Txn, q *query.Query, field, value string, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	prefix := indexKeyPrefixWith(blockIndexPrefix, field, value)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(blockSince(prefix, since)); it.Valid(); it.Next() {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		k := it.Item().Key()
		if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+blockKeyLen {
			continue
		}
		bk := append(slices.Clone(blockPrefix), k[len(prefix):]...)
		if b, ok := parseBlockKey(bk); !ok || b.last.Before(since) {
			continue
		}
		pv, err := it.Item().ValueCopy(nil)
		if err != nil {
			return false, fmt.Errorf("reading an index entry: %w", err)
		}
		pos, err := parsePositions(pv)
		if err != nil {
			s.log.Debug("skipping a malformed history index entry", "key", fmt.Sprintf("%x", k), "err", err)
			continue
		}
		item, err := txn.Get(bk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // swept between the index entry and the block
		}
		if err != nil {
			return false, fmt.Errorf("reading history block %x: %w", bk, err)
		}
		more := true
		err = item.Value(func(val []byte) error {
			blk, err := parseBlock(val, true)
			if err != nil {
				s.log.Debug("skipping a malformed history block", "key", fmt.Sprintf("%x", bk), "err", err)
				return nil
			}
			for _, p := range pos {
				if p >= len(blk.events) {
					continue
				}
				if more = s.testEvent(blk.events[p], q, since, st, fn); !more {
					return nil
				}
			}
			return nil
		})
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

// testEvent decodes and tests one event of a block, unless it is before
// since.
func (s *Store) testEvent(be blockEvent, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) bool {
	if !since.IsZero() && be.time < since.UnixNano() {
		return true
	}
	st.Scanned++
	ev, err := decodeEvent(be.data)
	if err != nil {
		s.log.Debug("skipping an undecodable history event", "err", err)
		return true
	}
	if !q.Match(&ev) {
		return true
	}
	return fn(ev)
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
