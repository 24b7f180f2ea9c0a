package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/cordon-edr/cordon/protocol"
)

// DefaultMaxPending is the queue bound when Options.MaxPending is zero.
const DefaultMaxPending = 100000

// Key layout. Everything the queue writes starts with prefix.
const (
	prefix        = "spool/"
	findingPrefix = prefix + "f/"
	// sevPrefix indexes pending findings by severity rank:
	// "spool/s/<rank>/<id>", so the oldest of the lowest severity is the
	// first key under its rank.
	sevPrefix  = prefix + "s/"
	droppedKey = prefix + "m/dropped"
)

const (
	// dropLogEvery is the least time between two logs about drops.
	dropLogEvery = 10 * time.Second
	// droppedSaveEvery is the least time between two writes of the drop
	// counter while findings keep being dropped; Close saves it too.
	droppedSaveEvery = time.Second
)

// Errors returned by Put.
var (
	// ErrFull means the queue held MaxPending findings and dropped the
	// new one.
	ErrFull = errors.New("spool: queue full, finding dropped")
	// ErrInvalid means the finding was nil or its id was not a UUIDv7.
	ErrInvalid = errors.New("spool: invalid finding")
)

// Options configure a Queue. The zero value is valid.
type Options struct {
	// MaxPending bounds the number of findings held; 0 means
	// DefaultMaxPending.
	MaxPending int
	// Logger receives drop and corruption reports; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a Queue.
type Stats struct {
	// Pending is the number of findings waiting for an Ack.
	Pending int
	// Dropped counts findings refused because the queue was full, since
	// the queue was first created.
	Dropped uint64
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

	mu           sync.Mutex // serializes writes and guards the fields below
	pending      int
	dropped      uint64
	droppedSaved uint64
	savedAt      time.Time
	loggedAt     time.Time
	unlogged     uint64 // drops since the last drop log
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
// is already queued is left as it was. When the queue is full, the most
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
	added := false
	var evicted string
	err = q.db.Update(func(txn *badger.Txn) error {
		added, evicted = false, ""
		_, err := txn.Get(key)
		if err == nil {
			return nil // already queued
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if q.pending >= q.max {
			victim, err := q.evict(txn, rank)
			if err != nil {
				return err
			}
			evicted = victim
		} else {
			added = true
		}
		if err := txn.SetEntry(badger.NewEntry(key, val).WithMeta(rank)); err != nil {
			return err
		}
		return txn.Set(sevKey(rank, key), nil)
	})
	if errors.Is(err, ErrFull) {
		q.dropLocked(f, "queue full, dropping new findings")
		return ErrFull
	}
	if err == nil && evicted != "" {
		q.dropLocked(&protocol.Finding{Id: evicted}, "queue full, evicting the oldest less severe finding")
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
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// evict deletes the oldest pending finding whose severity ranks below
// rank and returns its id; ErrFull when there is none.
func (q *Queue) evict(txn *badger.Txn, rank byte) (string, error) {
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
				return "", err
			}
			if err := txn.Delete(append(p, id...)); err != nil {
				return "", err
			}
			if err != nil {
				continue // an index entry left behind: gone now
			}
			if err := txn.Delete(fkey); err != nil {
				return "", err
			}
			return id, nil
		}
	}
	return "", ErrFull
}

// dropLocked counts a finding refused or evicted for want of room, saves
// the counter at most every droppedSaveEvery and logs at most every
// dropLogEvery.
func (q *Queue) dropLocked(f *protocol.Finding, what string) {
	q.dropped++
	q.unlogged++
	now := q.now()
	if now.Sub(q.savedAt) >= droppedSaveEvery {
		if err := q.saveDroppedLocked(); err != nil {
			q.log.Error("spool: save drop counter", "err", err)
		}
		q.savedAt = now
	}
	if now.Sub(q.loggedAt) >= dropLogEvery {
		q.log.Warn("spool: "+what,
			"rule_id", f.GetRule().GetId(), "finding_id", f.GetId(),
			"dropped_since_last_report", q.unlogged, "dropped_total", q.dropped,
			"max_pending", q.max)
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
	return q.sync()
}

// Stats returns the queue's counters and the age of its oldest finding.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Pending: q.pending, Dropped: q.dropped}
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
// write synced to disk, and no badger logging.
func OpenDB(dir string) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(true).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(16 << 20).
		WithBlockCacheSize(8 << 20).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("spool: open database %s: %w", dir, err)
	}
	return db, nil
}
