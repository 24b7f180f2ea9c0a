package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/groupcommit"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// Agents names the hosts findings come from.
type Agents interface {
	Lookup(agentID string) (hostname string, tags map[string]string, ok bool)
}

// Config configures a Store.
type Config struct {
	DB *badger.DB
	// Agents fills in the hostname of each finding; optional.
	Agents Agents
	// Now is the clock for received_at; time.Now when nil.
	Now func() time.Time
}

// Stats counts what Append did since the Store was created.
type Stats struct {
	Stored, Duplicates, Rejected uint64
}

// Store is the badger implementation of Log, and the findings read model.
type Store struct {
	db     *badger.DB
	agents Agents
	now    func() time.Time
	log    *slog.Logger
	seqs   seqs

	mu     sync.Mutex
	notify chan struct{}

	writes *groupcommit.Queue[*pending]

	stored, duplicates, rejected atomic.Uint64
}

var _ Log = (*Store)(nil)

// New returns a Store over cfg.DB, continuing its log after the last
// stored entry.
func New(cfg Config, log *slog.Logger) (*Store, error) {
	s := &Store{db: cfg.DB, agents: cfg.Agents, now: cfg.Now, log: log, notify: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	s.writes = groupcommit.New(s.commitGroup, groupcommit.Limits[*pending]{Items: groupChunks, Size: pendingSize, Bytes: groupBytes})
	last, err := s.lastSeq()
	if err != nil {
		return nil, err
	}
	s.seqs.next = last + 1
	return s, nil
}

func (s *Store) lastSeq() (uint64, error) {
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := store.ReverseIterator(txn, logPrefix)
		defer it.Close()
		it.Seek(append(logPrefix[:len(logPrefix):len(logPrefix)], 0xff))
		if !it.Valid() {
			return nil
		}
		item := it.Item()
		first, err := store.ParseU64(item.Key()[len(logPrefix):])
		if err != nil {
			return err
		}
		return item.Value(func(val []byte) error {
			es, err := decodeLog(nil, first, val)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", first, err)
			}
			last = es[len(es)-1].seq
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("finding the end of the findings log: %w", err)
	}
	return last, nil
}

var (
	logPrefix = store.Prefix("log")
)

func findingKey(id string) []byte      { return store.Key("finding", id) }
func logKey(seq uint64) []byte         { return store.Key("log", store.U64(seq)) }
func agentIndex(agentID string) []byte { return store.Prefix("fidx", "agent", agentID) }
func severityIndex(sev string) []byte  { return store.Prefix("fidx", "sev", sev) }
func incidentIndex(id string) []byte   { return store.Prefix("fidx", "inc", id) }

func indexKey(prefix []byte, seq uint64) []byte {
	return append(prefix[:len(prefix):len(prefix)], store.U64(seq)...)
}

// maxChunk is the most findings of one Append written in one transaction.
const maxChunk = 256

// Append implements Log.
func (s *Store) Append(ctx context.Context, agentID string, fs []*protocol.Finding) (stored, duplicates int, err error) {
	if agentID == "" {
		return 0, 0, errors.New("storing findings: no agent id")
	}
	var hostname string
	if s.agents != nil {
		hostname, _, _ = s.agents.Lookup(agentID)
	}
	received := s.now().UTC()
	items := make([]entry, 0, len(fs))
	seen := make(map[string]bool, len(fs))
	agentIdx := agentIndex(agentID)
	for _, pf := range fs {
		f, err := convert(agentID, hostname, pf, received)
		if err != nil {
			s.rejected.Add(1)
			s.log.Warn("rejected invalid finding", "agent", agentID, "finding", pf.GetId(), "err", err)
			continue
		}
		if seen[f.ID] {
			duplicates++
			continue
		}
		seen[f.ID] = true
		items = append(items, entry{
			key:      findingKey(f.ID),
			rec:      encodeRecord(make([]byte, 0, recordSize(f)), f),
			agentIdx: agentIdx,
			sevIdx:   severityIndex(f.Severity),
		})
	}
	defer func() {
		s.stored.Add(uint64(stored))
		s.duplicates.Add(uint64(duplicates))
		if stored > 0 {
			s.wake()
		}
	}()
	chunk := maxChunk
	for i := 0; i < len(items); {
		if err := ctx.Err(); err != nil {
			return stored, duplicates, fmt.Errorf("storing %d findings of agent %s: %w", len(items)-i, agentID, err)
		}
		n := min(chunk, len(items)-i)
		p := &pending{entries: items[i : i+n]}
		s.writes.Do(p)
		if errors.Is(p.err, badger.ErrTxnTooBig) && n > 1 {
			chunk = n / 2
			continue
		}
		if p.err != nil {
			return stored, duplicates, fmt.Errorf("storing %d findings of agent %s: %w", len(items)-i, agentID, p.err)
		}
		stored += p.stored
		duplicates += p.duplicates
		i += n
	}
	return stored, duplicates, nil
}

// entry is a finding ready to be written.
type entry struct {
	key              []byte // finding/<id>
	rec              []byte // encodeRecord
	agentIdx, sevIdx []byte // index prefixes
}

func (e entry) size() int { return len(e.key) + len(e.rec) + len(e.agentIdx) + len(e.sevIdx) + 64 }

// pending is one chunk of an Append waiting to be committed, and, once
// it is, the outcome.
type pending struct {
	entries            []entry
	stored, duplicates int
	err                error
}

// Group commit. Badger syncs its write-ahead log once per transaction,
// and concurrent transactions each pay for their own sync. So concurrent
// Appends share transactions: their chunks queue, and one writer commits
// everything waiting (up to groupBytes) in one synchronous transaction
// and hands each chunk its outcome. Every chunk is committed by exactly
// one transaction, and its Append returns only after that transaction is
// on disk, so acknowledging a batch still means it is stored.
const (
	groupChunks = 1024
	groupBytes  = 1 << 20
)

func pendingSize(p *pending) int {
	n := 0
	for _, e := range p.entries {
		n += e.size()
	}
	return n
}

// commitGroup writes the findings of group not yet stored (fill) in one
// transaction and sets each chunk's outcome. A group too big for one
// transaction is committed chunk by chunk.
func (s *Store) commitGroup(group []*pending) {
	n := 0
	for _, p := range group {
		n += len(p.entries)
	}
	start := s.seqs.reserve(n)
	defer s.seqs.release(start)
	err := store.Update(context.Background(), s.db, func(txn *badger.Txn) error { return s.fill(txn, group, start) })
	if errors.Is(err, badger.ErrTxnTooBig) && len(group) > 1 {
		for _, p := range group {
			s.commitGroup([]*pending{p})
		}
		return
	}
	for _, p := range group {
		if err != nil {
			p.stored, p.duplicates, p.err = 0, 0, err
		}
	}
}

// fill writes into txn the findings of group not stored yet, at log
// positions from start on, in blocks (block.go), with their keys and
// postings, and counts each chunk's stored findings and duplicates.
func (s *Store) fill(txn *badger.Txn, group []*pending, start uint64) error {
	var (
		idx postings
		blk blockBuilder
	)
	seq := start
	for _, p := range group {
		p.stored, p.duplicates = 0, 0
		for _, e := range p.entries {
			exists, err := store.Exists(txn, e.key)
			if err != nil {
				return err
			}
			if exists {
				p.duplicates++
				seq++
				continue
			}
			blk.add(seq, e.rec)
			if err := txn.Set(e.key, ref4(seq, blk.first, "")); err != nil {
				return err
			}
			if blk.full() {
				if err := blk.flush(txn); err != nil {
					return err
				}
			}
			idx.add(e.agentIdx, seq)
			idx.add(e.sevIdx, seq)
			p.stored++
			seq++
		}
	}
	if err := blk.flush(txn); err != nil {
		return err
	}
	return idx.set(txn)
}

// Notify implements Log.
func (s *Store) Notify() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func (s *Store) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.notify)
	s.notify = make(chan struct{})
}

// Read implements Log.
func (s *Store) Read(ctx context.Context, from uint64, limit int) ([]Record, uint64, error) {
	if from == 0 {
		from = 1
	}
	complete := s.seqs.complete()
	if from >= complete || limit <= 0 {
		return nil, from, nil
	}
	var recs []Record
	next := from
	err := s.db.View(func(txn *badger.Txn) error {
		// The log entry holding from (a block) starts at or before it.
		start := logKey(from)
		rit := store.ReverseIterator(txn, logPrefix)
		if rit.Seek(start); rit.Valid() {
			start = rit.Item().KeyCopy(nil)
		}
		rit.Close()

		opts := badger.DefaultIteratorOptions
		opts.Prefix = logPrefix
		opts.PrefetchValues = false // blocks are read one at a time, up to limit
		it := txn.NewIterator(opts)
		defer it.Close()
		var (
			val     []byte
			entries []logEntry
		)
		for it.Seek(start); it.Valid() && len(recs) < limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			first, err := store.ParseU64(item.Key()[len(logPrefix):])
			if err != nil {
				return err
			}
			if first >= complete {
				break
			}
			if val, err = item.ValueCopy(val[:0]); err != nil {
				return fmt.Errorf("reading log entry %d: %w", first, err)
			}
			if entries, err = decodeLog(entries[:0], first, val); err != nil {
				return fmt.Errorf("log entry %d: %w", first, err)
			}
			for _, e := range entries {
				if e.seq < from {
					continue
				}
				if e.seq >= complete || len(recs) == limit {
					return nil
				}
				f, err := logFinding(txn, e)
				if err != nil {
					return err
				}
				recs = append(recs, Record{Seq: e.seq, Finding: f})
				next = e.seq + 1
			}
		}
		return nil
	})
	if err != nil {
		return nil, from, fmt.Errorf("reading the findings log from %d: %w", from, err)
	}
	if len(recs) < limit {
		// Read to the end: every position below complete is stored or
		// abandoned (a duplicate's, a failed transaction's), so the next
		// read starts there, past any gap at the end.
		next = max(next, complete)
	}
	return recs, next, nil
}

// End returns the log position after the last one written: every
// position below it is stored or abandoned.
func (s *Store) End() uint64 { return s.seqs.complete() }

// Stats returns the counters of Append.
func (s *Store) Stats() Stats {
	return Stats{Stored: s.stored.Load(), Duplicates: s.duplicates.Load(), Rejected: s.rejected.Load()}
}
