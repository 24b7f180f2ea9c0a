package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/cordon-edr/cordon/agent/compact"
	"github.com/cordon-edr/cordon/protocol"
)

// DefaultMaxPending is the queue bound when Options.MaxPending is zero.
const DefaultMaxPending = 100000

// OpenDB's sizes, from which the disk reserves are computed.
const (
	memTableSize     = 1 << 20
	valueLogFileSize = 4 << 20
)

// Key layout. Everything the queue writes starts with prefix.
const (
	prefix        = "spool/"
	findingPrefix = prefix + "f/"
	// sevPrefix indexes pending findings by severity rank:
	// "spool/s/<rank>/<id>", so the oldest of the lowest severity is the
	// first key under its rank.
	sevPrefix  = prefix + "s/"
	droppedKey = prefix + "m/dropped"
	// reclaimKey is written and dropped to make badger compact away
	// delivered findings; see reclaimLocked.
	reclaimKey = prefix + "m/reclaim"
)

const (
	// dropLogEvery is the least time between two logs about drops.
	dropLogEvery = 10 * time.Second
	// droppedSaveEvery is the least time between two writes of the drop
	// counter while findings keep being dropped; Close saves it too.
	droppedSaveEvery = time.Second
	// reclaimEvery is the least time between two attempts to give the
	// space of delivered findings back.
	reclaimEvery = 10 * time.Second
)

// Errors returned by Put.
var (
	// ErrFull means the queue held MaxPending findings and dropped the
	// new one.
	ErrFull = errors.New("spool: queue full, finding dropped")
	// ErrDiskFull means the free space of the database's filesystem was
	// under the reserve for the finding's severity and the finding was
	// dropped.
	ErrDiskFull = errors.New("spool: disk full, finding dropped")
	// ErrInvalid means the finding was nil or its id was not a UUIDv7.
	ErrInvalid = errors.New("spool: invalid finding")
)

// Disk reserves, sized from OpenDB's options (memTableSize). badger
// writes its memtable log, its tables and its value log through memory
// mapped files, so a full filesystem kills the process (SIGBUS) instead
// of failing a write: the queue stops writing well before that.
const (
	// DefaultHardReserve is the free space below which no finding is
	// stored: room for the rest of the current memtable log, the next
	// one, the table a flush writes and a level-0 compaction of the
	// small tables such memtables make.
	DefaultHardReserve = 4 * memTableSize
	// DefaultReserve is the free space below which only high and critical
	// findings are stored.
	DefaultReserve = DefaultHardReserve + 4*memTableSize
)

// FreeSpace reports the bytes still available to the database.
type FreeSpace func() (uint64, error)

// Options configure a Queue. The zero value is valid.
type Options struct {
	// FreeSpace, when set, is read before each Put: below Reserve free
	// bytes low and medium findings are dropped, below HardReserve all
	// findings are. nil bounds the queue by its count only.
	FreeSpace FreeSpace
	// Reserve and HardReserve default to DefaultReserve and
	// DefaultHardReserve when zero.
	Reserve, HardReserve uint64
	// MaxPending bounds the number of findings held; 0 means
	// DefaultMaxPending.
	MaxPending int
	// Logger receives drop and corruption reports; nil means
	// slog.Default().
	Logger *slog.Logger
	// Compactor, when set, is kicked after each write and serializes the
	// queue's reclaim with its compactions. A database opened by OpenDB
	// needs one running.
	Compactor *compact.Compactor
}

// Stats is a snapshot of a Queue.
type Stats struct {
	// Pending is the number of findings waiting for an Ack.
	Pending int
	// Dropped counts findings refused because the queue was full, since
	// the queue was first created.
	Dropped uint64
	// DroppedBySeverity counts drops per severity since the queue was
	// opened (unknown severities count as low).
	DroppedBySeverity map[string]uint64
	// Full is why the queue refuses findings now: "disk" when the free
	// space is under the reserve, "count" when it holds MaxPending
	// findings, empty when it takes any finding.
	Full string
	// FreeBytes is the free space last read, 0 when not read.
	FreeBytes uint64
	// Oldest is the creation time of the oldest pending finding, read from
	// its UUIDv7 id (millisecond precision); zero when none is pending.
	Oldest time.Time
}

// Queue is a durable FIFO of findings. Its methods are safe for
// concurrent use.
type Queue struct {
	db     *badger.DB
	max    int
	log    *slog.Logger
	notify chan struct{}
	now    func() time.Time
	free   FreeSpace
	soft   uint64
	hard   uint64
	comp   *compact.Compactor

	mu           sync.Mutex // serializes writes and guards the fields below
	pending      int
	dropped      uint64
	droppedSaved uint64
	savedAt      time.Time
	loggedAt     time.Time
	unlogged     uint64 // drops since the last drop log
	bySeverity   [5]uint64
	freeBytes    uint64
	freeErr      error // last free space error, logged once
	reclaimedAt  time.Time
}

// Open returns the queue kept in db, counting the findings it already
// holds. The caller owns db and closes it after Close.
func Open(db *badger.DB, opts Options) (*Queue, error) {
	if db == nil {
		return nil, errors.New("spool: open: nil database")
	}
	q := &Queue{
		db:     db,
		max:    opts.MaxPending,
		log:    opts.Logger,
		notify: make(chan struct{}, 1),
		now:    time.Now,
		free:   opts.FreeSpace,
		soft:   opts.Reserve,
		hard:   opts.HardReserve,
		comp:   opts.Compactor,
	}
	if q.hard == 0 {
		q.hard = DefaultHardReserve
	}
	if q.soft == 0 {
		q.soft = DefaultReserve
	}
	if q.soft < q.hard {
		return nil, fmt.Errorf("spool: open: reserve %d is under the hard reserve %d", q.soft, q.hard)
	}
	if q.max <= 0 {
		q.max = DefaultMaxPending
	}
	if q.log == nil {
		q.log = slog.Default()
	}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(findingPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			q.pending++
		}
		item, err := txn.Get([]byte(droppedKey))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("drop counter is %d bytes, want 8", len(v))
			}
			q.dropped = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	q.droppedSaved = q.dropped
	return q, nil
}

// Severity ranks, kept as the user meta byte of a finding's entry and in
// its index key; 0 means "not indexed" (an entry from before the index).
var severityRank = map[string]byte{"low": 1, "medium": 2, "high": 3, "critical": 4}

func rankOf(sev string) byte {
	if r, ok := severityRank[sev]; ok {
		return r
	}
	return 1 // unknown severities rank lowest
}

func sevKey(rank byte, findingKey []byte) []byte {
	return append([]byte(fmt.Sprintf("%s%d/", sevPrefix, rank)), findingKey[len(findingPrefix):]...)
}

// Put stores f durably and returns once it is on disk. A finding whose id
// is already queued is left as it was. When the free space is under the
// reserve, low and medium findings are dropped and ErrDiskFull returned;
// under the hard reserve every finding is. When the queue is full, the most
// severe findings are kept: f evicts the oldest pending finding of the
// lowest severity below its own, which is counted as dropped; when none
// is less severe, Put drops f, counts it and returns ErrFull.
func (q *Queue) Put(f *protocol.Finding) error {
	if f == nil {
		return fmt.Errorf("%w: nil", ErrInvalid)
	}
	key, err := findingKey(f.GetId())
	if err != nil {
		return fmt.Errorf("%w: rule %s: %w", ErrInvalid, f.GetRule().GetId(), err)
	}
	val, err := proto.Marshal(f)
	if err != nil {
		return fmt.Errorf("spool: put %s: encode: %w", f.GetId(), err)
	}

	rank := rankOf(f.GetSeverity())

	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.roomLocked(rank) {
		q.dropLocked(f, rank, "disk nearly full, dropping findings")
		return ErrDiskFull
	}
	added := false
	var evicted victim
	err = q.db.Update(func(txn *badger.Txn) error {
		added, evicted = false, victim{}
		_, err := txn.Get(key)
		if err == nil {
			return nil // already queued
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if q.pending >= q.max {
			v, err := q.evict(txn, rank)
			if err != nil {
				return err
			}
			evicted = v
		} else {
			added = true
		}
		if err := txn.SetEntry(badger.NewEntry(key, val).WithMeta(rank)); err != nil {
			return err
		}
		return txn.Set(sevKey(rank, key), nil)
	})
	if errors.Is(err, ErrFull) {
		q.dropLocked(f, rank, "queue full, dropping new findings")
		return ErrFull
	}
	if err == nil && evicted.id != "" {
		q.dropLocked(&protocol.Finding{Id: evicted.id}, evicted.rank, "queue full, evicting the oldest less severe finding")
	}
	if err == nil {
		err = q.sync()
	}
	if err != nil {
		return fmt.Errorf("spool: put %s: %w", f.GetId(), err)
	}
	if added {
		q.pending++
	}
	q.comp.Kick()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// ErrNoRoom is returned by Room when the database's filesystem is under
// the hard reserve.
var ErrNoRoom = errors.New("the agent's disk is full")

// Room reports whether other writers of the spool's database (the
// command journal) may write: an error wrapping ErrNoRoom, saying how
// much is free, when the free space is under the hard reserve, the room
// badger needs for its own flushes. Without a free-space reading it
// returns nil.
func (q *Queue) Room() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roomLocked(severityRank["critical"])
	if q.free == nil || q.freeErr != nil || q.freeBytes >= q.hard {
		return nil
	}
	return fmt.Errorf("%w: %.1f MiB free, under the %.1f MiB the state store keeps in reserve",
		ErrNoRoom, float64(q.freeBytes)/(1<<20), float64(q.hard)/(1<<20))
}

// roomLocked reads the free space and tells whether a finding of rank
// may be written.
func (q *Queue) roomLocked(rank byte) bool {
	if q.free == nil {
		return true
	}
	free, err := q.free()
	if err != nil {
		// Without a reading the queue falls back to its count bound.
		if q.freeErr == nil || q.freeErr.Error() != err.Error() {
			q.log.Error("spool: reading free disk space", "err", err)
		}
		q.freeErr = err
		q.freeBytes = 0
		return true
	}
	q.freeErr = nil
	q.freeBytes = free
	if free < q.hard {
		return false
	}
	return free >= q.soft || rank >= severityRank["high"]
}

// victim is a finding evicted to make room.
type victim struct {
	id   string
	rank byte
}

// evict deletes the oldest pending finding whose severity ranks below
// rank and returns it; ErrFull when there is none.
func (q *Queue) evict(txn *badger.Txn, rank byte) (victim, error) {
	for r := byte(1); r < rank; r++ {
		p := []byte(fmt.Sprintf("%s%d/", sevPrefix, r))
		var ids []string
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		for it.Rewind(); it.Valid() && len(ids) < 16; it.Next() {
			ids = append(ids, string(it.Item().Key()[len(p):]))
		}
		it.Close()
		for _, id := range ids {
			fkey := []byte(findingPrefix + id)
			_, err := txn.Get(fkey)
			if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return victim{}, err
			}
			if err := txn.Delete(append(p, id...)); err != nil {
				return victim{}, err
			}
			if err != nil {
				continue // an index entry left behind: gone now
			}
			if err := txn.Delete(fkey); err != nil {
				return victim{}, err
			}
			return victim{id: id, rank: r}, nil
		}
	}
	return victim{}, ErrFull
}

// dropLocked counts a finding refused or evicted for want of room, saves
// the counter at most every droppedSaveEvery and logs at most every
// dropLogEvery.
func (q *Queue) dropLocked(f *protocol.Finding, rank byte, what string) {
	q.dropped++
	q.bySeverity[rank]++
	q.unlogged++
	now := q.now()
	// Under the hard reserve even the counter waits: it is saved by the
	// next Ack or by Close.
	if now.Sub(q.savedAt) >= droppedSaveEvery && (q.free == nil || q.freeErr != nil || q.freeBytes >= q.hard) {
		if err := q.saveDroppedLocked(); err != nil {
			q.log.Error("spool: save drop counter", "err", err)
		}
		q.savedAt = now
	}
	if now.Sub(q.loggedAt) >= dropLogEvery {
		q.log.Warn("spool: "+what,
			"rule_id", f.GetRule().GetId(), "finding_id", f.GetId(),
			"dropped_since_last_report", q.unlogged, "dropped_total", q.dropped,
			"max_pending", q.max, "free_bytes", q.freeBytes)
		q.loggedAt = now
		q.unlogged = 0
	}
}

func (q *Queue) saveDroppedLocked() error {
	if q.dropped == q.droppedSaved {
		return nil
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], q.dropped)
	if err := q.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(droppedKey), v[:])
	}); err != nil {
		return err
	}
	q.droppedSaved = q.dropped
	return nil
}

// sync makes committed writes durable when the database does not sync
// every write itself.
func (q *Queue) sync() error {
	if q.db.Opts().SyncWrites {
		return nil
	}
	return q.db.Sync()
}

// Peek returns up to max of the oldest findings, oldest first, without
// removing them. Their encoded sizes add up to at most maxBytes, except
// that the oldest finding is always returned whatever its size; maxBytes
// <= 0 means no byte limit. An entry that no longer decodes is logged and
// deleted.
func (q *Queue) Peek(max, maxBytes int) ([]*protocol.Finding, error) {
	if max <= 0 {
		return nil, fmt.Errorf("spool: peek: max is %d, want > 0", max)
	}
	var (
		out     []*protocol.Finding
		corrupt [][]byte
		size    int
	)
	err := q.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(findingPrefix), PrefetchValues: true, PrefetchSize: min(max, 100)})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
			item := it.Item()
			f := new(protocol.Finding)
			err := item.Value(func(v []byte) error { return proto.Unmarshal(v, f) })
			if err != nil {
				q.log.Error("spool: dropping undecodable finding", "key", string(item.Key()), "err", err)
				corrupt = append(corrupt, item.KeyCopy(nil))
				continue
			}
			n := proto.Size(f)
			if maxBytes > 0 && len(out) > 0 && size+n > maxBytes {
				break
			}
			size += n
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: peek: %w", err)
	}
	if len(corrupt) > 0 {
		if err := q.remove(corrupt); err != nil {
			return nil, fmt.Errorf("spool: peek: remove undecodable findings: %w", err)
		}
	}
	return out, nil
}

// Ack removes the findings with the given ids. Ids not in the queue, and
// ids that are not UUIDs, are ignored.
func (q *Queue) Ack(ids []string) error {
	keys := make([][]byte, 0, len(ids))
	for _, id := range ids {
		if key, err := findingKey(id); err == nil {
			keys = append(keys, key)
		}
	}
	if err := q.remove(keys); err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	return nil
}

// remove deletes keys in as few transactions as badger allows, and keeps
// the pending count in step.
func (q *Queue) remove(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(keys) > 0 {
		removed := 0
		done := 0
		err := q.db.Update(func(txn *badger.Txn) error {
			removed, done = 0, 0
			for _, key := range keys {
				item, err := txn.Get(key)
				if errors.Is(err, badger.ErrKeyNotFound) {
					done++
					continue
				}
				if err != nil {
					return err
				}
				// The index entry goes first: should the finding's own
				// delete not fit, the next transaction finds the finding
				// and deletes both again.
				if rank := item.UserMeta(); rank != 0 {
					if err := txn.Delete(sevKey(rank, key)); errors.Is(err, badger.ErrTxnTooBig) {
						return nil // commit what fits, continue in a new txn
					} else if err != nil {
						return err
					}
				}
				if err := txn.Delete(key); errors.Is(err, badger.ErrTxnTooBig) {
					return nil
				} else if err != nil {
					return err
				}
				removed++
				done++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done == 0 {
			return badger.ErrTxnTooBig
		}
		q.pending -= removed
		keys = keys[done:]
	}
	// Save a pending drop count along the way: Ack runs often while the
	// collector is reachable.
	if err := q.saveDroppedLocked(); err != nil {
		q.log.Error("spool: save drop counter", "err", err)
	}
	if err := q.sync(); err != nil {
		return err
	}
	q.comp.Kick()
	q.reclaimLocked()
	return nil
}

// reclaimLocked gives the disk space of delivered findings back once the
// queue is empty and the disk under the reserve. badger keeps deleted
// entries on disk until a compaction meets their deletes, which may not
// happen for a long time in a small database, so the queue would stay
// full for lack of disk after it was drained. badger has no call to
// flush and compact on demand, and DropPrefix skips prefixes without live
// keys, so a marker key is written and its prefix dropped: that flushes
// the memtable (with the deletes) and compacts level 0 into the level
// below, where the deletes meet the findings and both go. The output is
// only what is still live, so it needs little room.
func (q *Queue) reclaimLocked() {
	if q.pending != 0 || q.free == nil || q.now().Sub(q.reclaimedAt) < reclaimEvery {
		return
	}
	free, err := q.free()
	if err != nil || free >= q.soft {
		return
	}
	q.reclaimedAt = q.now()
	if err := q.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(reclaimKey), nil) }); err != nil {
		q.log.Error("spool: reclaiming the space of delivered findings", "err", err)
		return
	}
	if err := q.comp.Exclusive(func() error { return q.db.DropPrefix([]byte(reclaimKey)) }); err != nil {
		q.log.Error("spool: reclaiming the space of delivered findings", "err", err)
		return
	}
	after, _ := q.free()
	q.log.Info("spool: reclaimed the space of delivered findings", "free_bytes_before", free, "free_bytes", after)
}

// Stats returns the queue's counters and the age of its oldest finding.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Pending: q.pending, Dropped: q.dropped, DroppedBySeverity: map[string]uint64{}}
	for sev, r := range severityRank {
		if n := q.bySeverity[r]; n > 0 {
			s.DroppedBySeverity[sev] = n
		}
	}
	if q.free != nil {
		if free, err := q.free(); err == nil {
			q.freeBytes = free
			s.FreeBytes = free
			if free < q.soft {
				s.Full = "disk"
			}
		}
	}
	if s.Full == "" && q.pending >= q.max {
		s.Full = "count"
	}
	q.mu.Unlock()
	_ = q.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(findingPrefix)})
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		id, err := uuid.ParseBytes(it.Item().Key()[len(findingPrefix):])
		if err == nil && id.Version() == 7 {
			s.Oldest = time.Unix(id.Time().UnixTime())
		}
		return nil
	})
	return s
}

// Notify returns a channel that receives a value after each Put that
// stored a finding. It has a buffer of one, so several Puts between two
// receives wake the receiver once.
func (q *Queue) Notify() <-chan struct{} {
	return q.notify
}

// Close saves the drop counter. It does not close the database.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.saveDroppedLocked(); err != nil {
		return fmt.Errorf("spool: close: save drop counter: %w", err)
	}
	return nil
}

// findingKey returns the key of a finding id, which must be a UUIDv7.
func findingKey(id string) ([]byte, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, fmt.Errorf("finding id %q: %w", id, err)
	}
	if u.Version() != 7 {
		return nil, fmt.Errorf("finding id %q is a version %d UUID, want 7", id, u.Version())
	}
	return []byte(findingPrefix + u.String()), nil
}

// OpenDB opens (creating if needed) a badger database in dir with options
// sized for an agent: small memtables, value log files and caches, every
// write synced to disk, no badger logging, and no badger compactors: run
// a compact.Compactor beside it.
//
// The memtable is kept at 1 MiB so the disk reserves stay small (a flush
// writes at most about that much, and the memtable logs are that large);
// values over 64 KiB go to the value log so that one large finding still
// fits in the small memtable's batch limit.
func OpenDB(dir string) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(true).
		WithMemTableSize(memTableSize).
		WithValueThreshold(64 << 10).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(valueLogFileSize).
		// The spool is read in key order, once per finding, and holds
		// little: no block or index cache (each is a ristretto cache,
		// about 0.35 MiB of heap and goroutines however small its
		// budget), which badger allows only for tables without
		// compression. Tables written before are still read with the
		// compression the manifest names for them.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithNumCompactors(0).
		// Level 0 compacted on a clean stop, so that a restart finds
		// nothing to compact. Badger writes its tables through memory
		// maps, and a compaction on a disk that something else has
		// filled dies of SIGBUS: an agent restarted on a full disk must
		// not start by compacting.
		WithCompactL0OnClose(true).
		WithMetricsEnabled(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("spool: open database %s: %w", dir, err)
	}
	return db, nil
}
