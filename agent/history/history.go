package history

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Defaults of Options.
const (
	DefaultMaxAge   = 72 * time.Hour
	DefaultMaxBytes = 512 << 20
	DefaultQueue    = 8192
	// DefaultReserve is the free space under which the history stops
	// writing: room for the rest of its current memtable log and the
	// table a flush of it writes (8 MiB each), above the spool's 8 MiB
	// reserve, so the history stops before findings are refused.
	DefaultReserve = 24 << 20
)

const (
	// flushEvery and flushMax bound how long and how many events wait in
	// memory before they are written.
	flushEvery = 250 * time.Millisecond
	flushMax   = 2000
	// sweepEvery is how often expired and excess events are deleted.
	sweepEvery = 30 * time.Second
	// ttlSlack keeps badger's own expiry behind the sweeper's, so a
	// running store counts every deletion itself.
	ttlSlack = 15 * time.Minute
	// sweepBatch bounds the deletions of one write batch.
	sweepBatch = 5000
)

// Key layout: "e/" time(8) seq(4) holds the event's JSON; an index entry
// "x/" code(1) value 0x00 time(8) seq(4) points at it (empty value).
var (
	eventPrefix = []byte("e/")
	indexPrefix = []byte("x/")
)

// Indexed fields and their one-byte codes in index keys.
var indexCodes = map[string]byte{
	"process.executable": 'x',
	"file.hash.sha256":   'h',
	"file.path":          'p',
	"destination.ip":     'd',
	"source.ip":          's',
}

// Options configure a Store. The zero value is valid.
type Options struct {
	// MaxAge is how long events are kept; DefaultMaxAge when zero.
	MaxAge time.Duration
	// MaxBytes bounds the events and their index entries (as stored
	// logically, before badger's own overhead); DefaultMaxBytes when zero.
	MaxBytes int64
	// Queue is how many events may wait for the writer; DefaultQueue when
	// zero.
	Queue int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// FreeSpace, when set, reports the free bytes of the database's
	// filesystem; it is read before each write, and under Reserve
	// (DefaultReserve when zero) the events are skipped and counted
	// instead of written.
	FreeSpace func() (uint64, error)
	Reserve   uint64
	Logger    *slog.Logger
}

// Stats is a snapshot of a Store.
type Stats struct {
	Events int64 `json:"events"`
	// Bytes is the logical size of the events and their index entries.
	Bytes int64 `json:"bytes"`
	// DiskBytes is what the database takes on disk (LSM and value log).
	DiskBytes int64     `json:"disk_bytes"`
	Oldest    time.Time `json:"oldest,omitzero"`
	Newest    time.Time `json:"newest,omitzero"`
	// Dropped counts events the writer's queue had no room for, or that
	// failed to be written.
	Dropped uint64 `json:"dropped"`
	// SkippedDiskFull counts events not written because the free space
	// was under the reserve; DiskLow says it is now, FreeBytes is the
	// free space last read (0 when not read).
	SkippedDiskFull uint64        `json:"skipped_disk_full"`
	DiskLow         bool          `json:"disk_low"`
	FreeBytes       uint64        `json:"free_bytes"`
	MaxAge          time.Duration `json:"max_age"`
	MaxBytes        int64         `json:"max_bytes"`
}

// Store is the history. Add is safe for concurrent use; Run owns the
// writer and sweeper.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger
	in   chan ecs.Event
	seq  atomic.Uint32

	dropped atomic.Uint64
	skipped atomic.Uint64
	// Written by the writer only, read by Stats.
	diskLow   atomic.Bool
	freeBytes atomic.Uint64
	freeErr   string

	// bw builds the writer's blocks.
	bw *blockWriter

	mu     sync.Mutex
	events int64
	bytes  int64
	oldest time.Time
	newest time.Time
}

// Open opens (creating it if needed) the history database in dir and
// counts what it holds. Close releases it.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Reserve == 0 {
		opts.Reserve = DefaultReserve
	}
	// The history is a cache of what the sensors saw: losing the last
	// moments in a crash is acceptable, so writes are not synced, unlike
	// the spool's.
	//
	// Sized for a small resident footprint: a memtable is resident twice
	// once written through (its arena and its mapped log file), so 2 MiB
	// memtables cost at most 8 MiB where 8 MiB ones cost 32; hunts are
	// rare and read few blocks, so the caches are small too.
	bopts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false).
		WithMemTableSize(2 << 20).
		// Under the small memtable's batch limit; events are far smaller.
		WithValueThreshold(64 << 10).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(16 << 20).
		// The block cache must stay with compression on (events are
		// JSON, and compress several times over); table indexes are
		// read in place from the mapped tables, without an index cache
		// of their own (a ristretto cache, about 0.35 MiB of heap).
		WithBlockCacheSize(1 << 20).
		WithIndexCacheSize(0).
		WithBaseTableSize(1 << 20).
		WithNumCompactors(2).
		WithCompactL0OnClose(true).
		WithMetricsEnabled(false)
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("history: opening database %s: %w", dir, err)
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, in: make(chan ecs.Event, opts.Queue)}
	if err := s.count(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database; call it after Run returned.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) count() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix})
		defer it.Close()
		first := true
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			t, ok := keyTime(item.Key())
			if !ok {
				continue
			}
			if first {
				s.oldest, first = t, false
			}
			s.newest = t
			s.events++
			s.bytes += int64(len(item.Key())) + item.ValueSize()
		}
		xit := txn.NewIterator(badger.IteratorOptions{Prefix: indexPrefix})
		defer xit.Close()
		for xit.Rewind(); xit.Valid(); xit.Next() {
			s.bytes += int64(len(xit.Item().Key()))
		}
		bit := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix})
		defer bit.Close()
		for bit.Rewind(); bit.Valid(); bit.Next() {
			item := bit.Item()
			b, ok := parseBlockKey(item.Key())
			if !ok {
				continue
			}
			if first {
				s.oldest, first = b.first, false
			}
			if b.last.After(s.newest) {
				s.newest = b.last
			}
			s.events += int64(b.events)
			s.bytes += int64(len(item.Key())) + item.ValueSize()
		}
		yit := txn.NewIterator(badger.IteratorOptions{Prefix: blockIndexPrefix})
		defer yit.Close()
		for yit.Rewind(); yit.Valid(); yit.Next() {
			s.bytes += int64(len(yit.Item().Key())) + yit.Item().ValueSize()
		}
		return nil
	})
}

// Add queues ev for the history without waiting: when the queue is full
// the event is dropped and counted. It reports whether ev was queued.
func (s *Store) Add(ev ecs.Event) bool {
	select {
	case s.in <- ev:
		return true
	default:
		if s.dropped.Add(1) == 1 {
			s.log.Warn("history events dropped: the writer falls behind")
		}
		return false
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	lsm, vlog := s.db.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Events: s.events, Bytes: s.bytes, DiskBytes: lsm + vlog,
		Oldest: s.oldest, Newest: s.newest, Dropped: s.dropped.Load(),
		SkippedDiskFull: s.skipped.Load(), DiskLow: s.diskLow.Load(), FreeBytes: s.freeBytes.Load(),
		MaxAge: s.opts.MaxAge, MaxBytes: s.opts.MaxBytes,
	}
}

// Run writes queued events and sweeps expired ones until ctx ends, then
// writes what is still queued.
func (s *Store) Run(ctx context.Context) error {
	// The flush timer runs only while events wait, so that an idle
	// store does not wake at all between sweeps.
	flush := time.NewTimer(flushEvery)
	flush.Stop()
	var flushC <-chan time.Time
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	gc := time.NewTicker(10 * time.Minute)
	defer gc.Stop()
	var pending []ecs.Event
	write := func() {
		flush.Stop()
		flushC = nil
		if len(pending) == 0 {
			return
		}
		if err := s.write(pending); err != nil {
			s.dropped.Add(uint64(len(pending)))
			s.log.Warn("writing history", "events", len(pending), "err", err)
		}
		pending = pending[:0]
		if s.over() {
			s.sweepNow()
		}
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case ev := <-s.in:
					pending = append(pending, ev)
					continue
				default:
				}
				break
			}
			write()
			return nil
		case ev := <-s.in:
			pending = append(pending, ev)
			if len(pending) >= flushMax {
				write()
			} else if flushC == nil {
				flush.Reset(flushEvery)
				flushC = flush.C
			}
		case <-flushC:
			write()
		case <-sweep.C:
			write()
			s.sweepNow()
		case <-gc.C:
			for s.room() && s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

func (s *Store) over() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes > s.opts.MaxBytes
}

func (s *Store) sweepNow() {
	// Deleting writes too (the deletes themselves), and what it frees
	// comes back only after a compaction; under the reserve the events
	// expire through their TTL instead.
	if !s.room() {
		return
	}
	n, err := s.Sweep()
	if err != nil {
		s.log.Warn("sweeping history", "err", err)
	} else if n > 0 {
		s.log.Debug("history swept", "deleted", n)
	}
}

// Flush writes the queued events at once (for tests and benchmarks). It
// uses the same block writer as Run, so it must not be called while Run
// runs.
func (s *Store) Flush() error {
	var evs []ecs.Event
	for {
		select {
		case ev := <-s.in:
			evs = append(evs, ev)
			continue
		default:
		}
		break
	}
	return s.write(evs)
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

// indexValue normalizes a value for an index key: addresses lose their
// IPv4-in-IPv6 mapping so both spellings find the same entries.
func indexValue(field, v string) string {
	if field == "destination.ip" || field == "source.ip" {
		if a, err := netip.ParseAddr(v); err == nil {
			return a.Unmap().String()
		}
	}
	return v
}

func indexKeyPrefix(field, value string) []byte {
	return indexKeyPrefixWith(indexPrefix, field, value)
}

func indexKeyPrefixWith(prefix []byte, field, value string) []byte {
	return appendIndexKeyPrefix(make([]byte, 0, len(prefix)+len(value)+2+blockKeyLen), prefix, field, value)
}

func appendIndexKeyPrefix(k, prefix []byte, field, value string) []byte {
	k = append(k, prefix...)
	k = append(k, indexCodes[field])
	k = append(k, indexValue(field, value)...)
	return append(k, 0)
}

// forIndexed calls fn with each indexed field of ev and its value.
func forIndexed(ev *ecs.Event, fn func(field, v string)) {
	add := func(field, v string) {
		if v == "" || len(v) > 4096 || strings.IndexByte(v, 0) >= 0 {
			return
		}
		fn(field, v)
	}
	if p := ev.Process; p != nil {
		add("process.executable", p.Executable)
	}
	if f := ev.File; f != nil {
		add("file.path", f.Path)
		if f.Hash != nil {
			add("file.hash.sha256", f.Hash.SHA256)
		}
	}
	if e := ev.Destination; e != nil {
		add("destination.ip", e.IP)
	}
	if e := ev.Source; e != nil {
		add("source.ip", e.IP)
	}
}

// indexKeys returns the index entries of an event stored under ek in the
// layout before blocks.
func indexKeys(ev *ecs.Event, ek []byte) [][]byte {
	var out [][]byte
	forIndexed(ev, func(field, v string) {
		out = append(out, append(indexKeyPrefix(field, v), ek[len(eventPrefix):]...))
	})
	return out
}

// room reads the free space and reports whether the history may write,
// logging when it stops and when it resumes. Without a reading it writes.
func (s *Store) room() bool {
	if s.opts.FreeSpace == nil {
		return true
	}
	free, err := s.opts.FreeSpace()
	if err != nil {
		if s.freeErr != err.Error() {
			s.log.Error("history: reading free disk space", "err", err)
			s.freeErr = err.Error()
		}
		return true
	}
	s.freeErr = ""
	s.freeBytes.Store(free)
	low := free < s.opts.Reserve
	if was := s.diskLow.Swap(low); was != low {
		if low {
			s.log.Warn("history: disk nearly full, events are no longer written", "free_bytes", free, "reserve_bytes", s.opts.Reserve)
		} else {
			s.log.Info("history: disk space is back, writing events again", "free_bytes", free, "skipped", s.skipped.Load())
		}
	}
	return !low
}

func (s *Store) write(evs []ecs.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if !s.room() {
		s.skipped.Add(uint64(len(evs)))
		return nil
	}
	ttl := s.opts.MaxAge + ttlSlack
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	var (
		n, size        int64
		oldest, newest time.Time
	)
	now := s.opts.Now()
	for i := range evs {
		if evs[i].Timestamp.IsZero() {
			evs[i].Timestamp = now
		}
	}
	slices.SortStableFunc(evs, func(a, b ecs.Event) int { return a.Timestamp.Compare(b.Timestamp) })
	if s.bw == nil {
		s.bw = newBlockWriter()
	}
	w := s.bw
	w.reset()
	var last time.Time
	emit := func() error {
		if w.n == 0 {
			return nil
		}
		bk := blockKey(w.first, last, s.seq.Add(1), w.n)
		val := w.value()
		if err := wb.SetEntry(badger.NewEntry(bk, val).WithTTL(ttl)); err != nil {
			return fmt.Errorf("writing events: %w", err)
		}
		size += int64(len(bk) + len(val))
		for _, x := range w.index {
			xk := append(x.prefix, bk[len(blockPrefix):]...)
			if err := wb.SetEntry(badger.NewEntry(xk, x.pos).WithTTL(ttl)); err != nil {
				return fmt.Errorf("writing index entry: %w", err)
			}
			size += int64(len(xk) + len(x.pos))
		}
		n += int64(w.n)
		if oldest.IsZero() || w.first.Before(oldest) {
			oldest = w.first
		}
		if last.After(newest) {
			newest = last
		}
		w.reset()
		return nil
	}
	for i := range evs {
		ev := &evs[i]
		if w.full(ev.Timestamp) {
			if err := emit(); err != nil {
				return err
			}
		}
		w.add(ev)
		last = ev.Timestamp
	}
	if err := emit(); err != nil {
		return err
	}
	oldest, newest = oldest.UTC(), newest.UTC()
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("committing events: %w", err)
	}
	if n == 0 {
		return nil
	}
	s.mu.Lock()
	s.events += n
	s.bytes += size
	if s.oldest.IsZero() || oldest.Before(s.oldest) {
		s.oldest = oldest
	}
	if newest.After(s.newest) {
		s.newest = newest
	}
	s.mu.Unlock()
	return nil
}

// Sweep deletes the events older than the age bound, then the oldest
// events while the store is over its size bound, and returns how many it
// deleted.
func (s *Store) Sweep() (int, error) {
	cutoff := s.opts.Now().Add(-s.opts.MaxAge)
	total := 0
	for {
		n, more, err := s.sweepBatch(cutoff)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// sweepBatch deletes up to sweepBatch events, those of the layout before
// blocks first (they are older); more reports whether it stopped at that
// bound with work left.
func (s *Store) sweepBatch(cutoff time.Time) (n int, more bool, err error) {
	n, more, next, err := s.sweepOld(cutoff)
	switch {
	case err != nil || more || !next.IsZero():
		return n, more, err
	case n > 0:
		return n, true, nil // the blocks in the next round
	}
	return s.sweepBlocks(cutoff)
}

// sweepBlocks deletes whole blocks: those whose last event is before
// cutoff, then the oldest while the store is over its size bound.
func (s *Store) sweepBlocks(cutoff time.Time) (n int, more bool, err error) {
	var victims []swept
	s.mu.Lock()
	excess := s.bytes - s.opts.MaxBytes
	s.mu.Unlock()
	var next time.Time
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			b, ok := parseBlockKey(item.Key())
			if !ok {
				continue
			}
			if !b.last.Before(cutoff) && excess <= 0 {
				next = b.first
				return nil
			}
			if n >= sweepBatch {
				more = true
				return nil
			}
			v := swept{key: item.KeyCopy(nil), events: b.events}
			err := item.Value(func(val []byte) error {
				v.size = int64(len(v.key) + len(val))
				blk, err := parseBlock(val, false)
				if err != nil {
					s.log.Debug("sweeping a malformed history block", "key", fmt.Sprintf("%x", v.key), "err", err)
					return nil
				}
				for _, x := range blk.index {
					k := append(slices.Clone(x.prefix), v.key[len(blockPrefix):]...)
					v.keys = append(v.keys, k)
					v.size += int64(len(k) + x.size)
				}
				return nil
			})
			if err != nil {
				return err
			}
			excess -= v.size
			n += v.events
			victims = append(victims, v)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	if len(victims) == 0 {
		s.mu.Lock()
		if s.events == 0 {
			s.oldest, s.newest = time.Time{}, time.Time{}
		} else if !next.IsZero() {
			s.oldest = next
		}
		s.mu.Unlock()
		return 0, false, nil
	}
	var last time.Time
	if b, ok := parseBlockKey(victims[len(victims)-1].key); ok {
		last = b.last
	}
	if err := s.deleteSwept(victims, next, last); err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// swept is a block, or an event of the layout before blocks, that a sweep
// deletes: its key, its index entries, how many events it holds and how
// many bytes the store counted for it.
type swept struct {
	key    []byte
	keys   [][]byte
	events int
	size   int64
}

// deleteSwept deletes victims with their index entries in one batch and
// takes them off the store's counts. The oldest event kept is next, or,
// when the sweep reached the end, last (the time of the last victim).
func (s *Store) deleteSwept(victims []swept, next, last time.Time) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	var size, events int64
	for _, v := range victims {
		if err := wb.Delete(v.key); err != nil {
			return fmt.Errorf("deleting events: %w", err)
		}
		for _, k := range v.keys {
			if err := wb.Delete(k); err != nil {
				return fmt.Errorf("deleting index entry: %w", err)
			}
		}
		size += v.size
		events += int64(v.events)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("committing deletions: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events -= events
	s.bytes -= size
	switch {
	case s.events <= 0:
		s.events, s.bytes = 0, max(s.bytes, 0)
		s.oldest, s.newest = time.Time{}, time.Time{}
	case !next.IsZero():
		s.oldest = next
	case !last.IsZero():
		s.oldest = last
	}
	return nil
}

// sweepOld is sweepBatch over the layout before blocks; next is the time
// of the first event it kept, zero when it reached the end.
func (s *Store) sweepOld(cutoff time.Time) (n int, more bool, next time.Time, err error) {
	var victims []swept
	s.mu.Lock()
	excess := s.bytes - s.opts.MaxBytes
	s.mu.Unlock()
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: eventPrefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			t, ok := keyTime(item.Key())
			if !ok {
				continue
			}
			if !t.Before(cutoff) && excess <= 0 {
				next = t
				return nil
			}
			if len(victims) == sweepBatch {
				more = true
				return nil
			}
			v := swept{key: item.KeyCopy(nil), events: 1}
			err := item.Value(func(val []byte) error {
				var ev ecs.Event
				if json.Unmarshal(val, &ev) == nil {
					v.keys = indexKeys(&ev, v.key)
				}
				v.size = int64(len(v.key) + len(val))
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range v.keys {
				v.size += int64(len(k))
			}
			excess -= v.size
			victims = append(victims, v)
		}
		return nil
	})
	if err != nil || len(victims) == 0 {
		if err == nil {
			s.mu.Lock()
			if s.events == 0 {
				s.oldest, s.newest = time.Time{}, time.Time{}
			}
			s.mu.Unlock()
		}
		return 0, false, next, err
	}
	var last time.Time
	if t, ok := keyTime(victims[len(victims)-1].key); ok {
		last = t
	}
	if err := s.deleteSwept(victims, next, last); err != nil {
		return 0, false, next, err
	}
	return len(victims), more, next, nil
}
