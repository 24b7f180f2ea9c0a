package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// Agents before segment files kept the history in a badger database.
// The store opens one it finds (Options.LegacyDir) without writing to it
// and without badger's compactors, counts and searches it, and deletes
// it whole once its newest event is past the age bound, or as the oldest
// part of a store over its size bound.
//
// It holds two layouts. The first: "e/" time(8) seq(4) → one event's
// JSON, with an index entry "x/" code(1) value 0x00 time(8) seq(4) (empty
// value) per indexed value. The second, blocks (block.go): "b/" first
// time(8) seq(4) last time(8) events(4) → a block whose value carries its
// own index section, with an index entry "y/" code(1) value 0x00 + the
// block key's 24 bytes whose value is the uvarint positions in the block
// of the events with that value.
var (
	eventPrefix      = []byte("e/")
	indexPrefix      = []byte("x/")
	blockPrefix      = []byte("b/")
	blockIndexPrefix = []byte("y/")
)

// blockKeyLen is the length of a block key after its prefix.
const blockKeyLen = 24

// legacy is a history database of an older agent.
type legacy struct {
	dir string
	log *slog.Logger
	// mu is held (read) by searches; a sweep takes it, without
	// waiting, to delete the database.
	mu     sync.RWMutex
	db     *badger.DB
	events int64
	bytes  int64
	// oldest and newest are Unix nanoseconds.
	oldest, newest int64
}

// openLegacy opens the database in dir, or returns nil when dir holds
// none.
func openLegacy(dir string, log *slog.Logger) (*legacy, error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false).
		WithMemTableSize(1 << 20).
		WithValueThreshold(64 << 10).
		WithNumMemtables(1).
		WithBlockCacheSize(1 << 20).
		WithIndexCacheSize(0).
		WithNumCompactors(0).
		WithCompactL0OnClose(false).
		WithMetricsEnabled(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("opening the history database of an older agent in %s: %w", dir, err)
	}
	l := &legacy{dir: dir, log: log, db: db}
	if err := l.count(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// close closes the database, leaving its files.
func (l *legacy) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	err := l.db.Close()
	l.db = nil
	return err
}

// removeLocked closes the database and deletes it; the caller holds
// l.mu, which it releases.
func (l *legacy) removeLocked() error {
	if l.db != nil {
		if err := l.db.Close(); err != nil {
			l.log.Warn("closing the history database of an older agent", "err", err)
		}
		l.db = nil
	}
	l.mu.Unlock()
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("deleting the history database of an older agent: %w", err)
	}
	return nil
}

// diskSize is what the database takes on disk.
func (l *legacy) diskSize() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return 0
	}
	lsm, vlog := l.db.Size()
	return lsm + vlog
}

func (l *legacy) count() error {
	first := true
	see := func(from, to int64) {
		if first || from < l.oldest {
			l.oldest = from
		}
		if first || to > l.newest {
			l.newest = to
		}
		first = false
	}
	return l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			t, ok := keyTime(item.Key())
			if !ok {
				continue
			}
			see(t.UnixNano(), t.UnixNano())
			l.events++
			l.bytes += int64(len(item.Key())) + item.ValueSize()
		}
		xit := txn.NewIterator(badger.IteratorOptions{Prefix: indexPrefix})
		defer xit.Close()
		for xit.Rewind(); xit.Valid(); xit.Next() {
			l.bytes += int64(len(xit.Item().Key()))
		}
		bit := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix})
		defer bit.Close()
		for bit.Rewind(); bit.Valid(); bit.Next() {
			item := bit.Item()
			b, ok := parseBlockKey(item.Key())
			if !ok {
				continue
			}
			see(b.first.UnixNano(), b.last.UnixNano())
			l.events += int64(b.events)
			l.bytes += int64(len(item.Key())) + item.ValueSize()
		}
		yit := txn.NewIterator(badger.IteratorOptions{Prefix: blockIndexPrefix})
		defer yit.Close()
		for yit.Rewind(); yit.Valid(); yit.Next() {
			l.bytes += int64(len(yit.Item().Key())) + yit.Item().ValueSize()
		}
		return nil
	})
}

// search is Store.Search over the database: through the index of field
// for each of vals, or by time when field is empty. It reports whether
// the search should go on.
func (l *legacy) search(ctx context.Context, q *query.Query, since time.Time, field string, vals []string, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return true, nil // deleted since the search began
	}
	more := true
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		if field == "" {
			if more, err = l.scanTime(ctx, txn, q, since, st, fn); err != nil || !more {
				return err
			}
			more, err = l.scanBlocks(ctx, txn, q, since, st, fn)
			return err
		}
		for _, v := range vals {
			if more, err = l.scanIndex(ctx, txn, q, field, v, since, st, fn); err != nil || !more {
				return err
			}
			if more, err = l.scanBlockIndex(ctx, txn, q, field, v, since, st, fn); err != nil || !more {
				return err
			}
		}
		return nil
	})
	return more, err
}

func eventKey(t time.Time, seq uint32) []byte {
	k := make([]byte, 0, len(eventPrefix)+12)
	k = append(k, eventPrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint32(k, seq)
}

func keyTime(k []byte) (time.Time, bool) {
	if len(k) < len(eventPrefix)+12 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[len(eventPrefix):]))).UTC(), true
}

func indexKeyPrefix(field, value string) []byte {
	return indexKeyPrefixWith(indexPrefix, field, value)
}

func indexKeyPrefixWith(prefix []byte, field, value string) []byte {
	return appendIndexKeyPrefix(make([]byte, 0, len(prefix)+len(value)+2+blockKeyLen), prefix, field, value)
}

// indexKeys returns the index entries of an event stored under ek in the
// first layout.
func indexKeys(ev *ecs.Event, ek []byte) [][]byte {
	var out [][]byte
	forIndexed(ev, func(field, v string) {
		out = append(out, append(indexKeyPrefix(field, v), ek[len(eventPrefix):]...))
	})
	return out
}

// blockKey is the key of a block of n events from first to last.
func blockKey(first, last time.Time, seq uint32, n int) []byte {
	k := make([]byte, 0, len(blockPrefix)+blockKeyLen)
	k = append(k, blockPrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(first.UnixNano()))
	k = binary.BigEndian.AppendUint32(k, seq)
	k = binary.BigEndian.AppendUint64(k, uint64(last.UnixNano()))
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

// blockInfo is what a block key says: its first and last event's times
// and how many events it holds.
type blockInfo struct {
	first, last time.Time
	events      int
}

func parseBlockKey(k []byte) (blockInfo, bool) {
	if len(k) != len(blockPrefix)+blockKeyLen || !bytes.HasPrefix(k, blockPrefix) {
		return blockInfo{}, false
	}
	k = k[len(blockPrefix):]
	return blockInfo{
		first:  time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC(),
		last:   time.Unix(0, int64(binary.BigEndian.Uint64(k[12:]))).UTC(),
		events: int(binary.BigEndian.Uint32(k[20:])),
	}, true
}

func sinceKey(prefix []byte, since time.Time) []byte {
	k := slices.Clone(prefix)
	if since.IsZero() || since.UnixNano() < 0 {
		return k
	}
	return binary.BigEndian.AppendUint64(k, uint64(since.UnixNano()))
}

// scanTime scans the events of the layout before blocks.
func (l *legacy) scanTime(ctx context.Context, txn *badger.Txn, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(sinceKey(eventPrefix, since)); it.Valid(); it.Next() {
		if st.Scanned%256 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		more, err := l.test(it.Item(), q, st, fn)
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
func (l *legacy) scanBlocks(ctx context.Context, txn *badger.Txn, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
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
				l.log.Debug("skipping a malformed history block", "key", fmt.Sprintf("%x", item.Key()), "err", err)
				return nil
			}
			for i := range blk.events {
				if i%256 == 255 && ctx.Err() != nil {
					return ctx.Err()
				}
				if more = testEvent(l.log, blk.events[i], q, since, st, fn); !more {
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
func (l *legacy) scanBlockIndex(ctx context.Context, txn *badger.Txn, q *query.Query, field, value string, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
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
			l.log.Debug("skipping a malformed history index entry", "key", fmt.Sprintf("%x", k), "err", err)
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
				l.log.Debug("skipping a malformed history block", "key", fmt.Sprintf("%x", bk), "err", err)
				return nil
			}
			for _, p := range pos {
				if p >= len(blk.events) {
					continue
				}
				if more = testEvent(l.log, blk.events[p], q, since, st, fn); !more {
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

func (l *legacy) scanIndex(ctx context.Context, txn *badger.Txn, q *query.Query, field, value string, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
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
		more, err := l.test(item, q, st, fn)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

func (l *legacy) test(item *badger.Item, q *query.Query, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	st.Scanned++
	var ev ecs.Event
	err := item.Value(func(val []byte) error { return json.Unmarshal(val, &ev) })
	if err != nil {
		l.log.Debug("skipping an undecodable history entry", "key", fmt.Sprintf("%x", item.Key()), "err", err)
		return true, nil
	}
	if !q.Match(&ev) {
		return true, nil
	}
	return fn(ev), nil
}
