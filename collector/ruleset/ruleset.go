package ruleset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/protocol"
)

// Info describes a stored rule set, as the REST API shows it.
type Info struct {
	Version  string    `json:"version"`
	Rules    int       `json:"rules"`
	Files    []string  `json:"files"`
	Digest   string    `json:"sha256"`
	PushedBy string    `json:"pushed_by"`
	PushedAt time.Time `json:"pushed_at"`
}

// File is one rule file of a set.
type File struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// record is a stored version.
type record struct {
	Info
	Seq     uint64 `json:"seq"`
	Sources []File `json:"sources"`
}

var currentKey = store.Key("meta", "ruleset-current")

func setKey(seq uint64) []byte { return store.Key("ruleset", store.U64(seq)) }

// Store holds the pushed rule sets.
type Store struct {
	db  *badger.DB
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	waiters map[chan struct{}]struct{}
	cur     *protocol.RuleSet // cached current set; nil before the first read
	loaded  bool
}

// New returns a Store over db; now is the clock (time.Now when nil).
func New(db *badger.DB, now func() time.Time, log *slog.Logger) *Store {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{db: db, now: now, log: log, waiters: map[chan struct{}]struct{}{}}
}

// Push compiles files and, when every rule compiles, stores them as the
// new current version and wakes the gateway. A set that does not
// compile returns a *rules.SetError and changes nothing. Pushing the
// files of the current version again returns it unchanged.
func (s *Store) Push(ctx context.Context, files []File, pushedBy string) (*Info, error) {
	rf := make([]rules.File, len(files))
	for i, f := range files {
		rf[i] = rules.File{Name: f.Name, Content: f.Content}
	}
	compiled, err := rules.CompilePushed(rf)
	if err != nil {
		return nil, err
	}
	digest := rules.Digest(rf)
	var out *record
	err = store.Update(ctx, s.db, func(txn *badger.Txn) error {
		cur, err := s.load(txn)
		if err != nil {
			return err
		}
		if cur != nil && cur.Digest == digest {
			out = cur
			return nil
		}
		seq := uint64(1)
		if cur != nil {
			seq = cur.Seq + 1
		}
		rec := &record{Seq: seq, Sources: files, Info: Info{
			// The digest in the version tells sets apart even across a
			// collector whose store was started afresh.
			Version:  fmt.Sprintf("%d-%s", seq, digest[:12]),
			Rules:    len(compiled),
			Digest:   digest,
			PushedBy: pushedBy,
			PushedAt: s.now().UTC(),
		}}
		for _, f := range files {
			rec.Info.Files = append(rec.Info.Files, f.Name)
		}
		if err := store.Put(txn, setKey(seq), rec); err != nil {
			return err
		}
		out = rec
		return store.Put(txn, currentKey, seq)
	})
	if err != nil {
		return nil, fmt.Errorf("storing the rule set: %w", err)
	}
	s.mu.Lock()
	s.cur, s.loaded = wire(out), true
	for ch := range s.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	s.log.Info("rule set pushed", "version", out.Version, "rules", out.Rules, "files", len(out.Files), "by", pushedBy)
	info := out.Info
	return &info, nil
}

// load reads the current record; nil when nothing was pushed yet.
func (s *Store) load(txn *badger.Txn) (*record, error) {
	var seq uint64
	err := store.Get(txn, currentKey, &seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := store.Get(txn, setKey(seq), &rec); err != nil {
		return nil, fmt.Errorf("rule set %d: %w", seq, err)
	}
	return &rec, nil
}

// Info returns the current set's description, or a store.ErrNotFound
// error when nothing was pushed yet.
func (s *Store) Info(ctx context.Context) (*Info, error) {
	var rec *record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.load(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the current rule set: %w", err)
	}
	if rec == nil {
		return nil, fmt.Errorf("no rule set was pushed yet: %w", store.ErrNotFound)
	}
	return &rec.Info, nil
}

// Current returns the current set in its wire form, nil when nothing was
// pushed yet. The gateway calls it for every hello and push.
func (s *Store) Current(ctx context.Context) (*protocol.RuleSet, error) {
	s.mu.Lock()
	if s.loaded {
		defer s.mu.Unlock()
		return s.cur, nil
	}
	s.mu.Unlock()
	var rec *record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.load(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the current rule set: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		s.cur, s.loaded = wire(rec), true
	}
	return s.cur, nil
}

// Wait returns a channel that gets a value when a new set is pushed, and
// a function to stop waiting.
func (s *Store) Wait() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.waiters, ch)
		s.mu.Unlock()
	}
}

func wire(rec *record) *protocol.RuleSet {
	if rec == nil {
		return nil
	}
	rs := &protocol.RuleSet{Version: rec.Version, PushedBy: rec.PushedBy, PushedUnixNano: rec.PushedAt.UnixNano()}
	for _, f := range rec.Sources {
		rs.Files = append(rs.Files, &protocol.RuleFile{Name: f.Name, Content: f.Content})
	}
	return rs
}
