package iocset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/ioc"
	"github.com/cordon-edr/cordon/protocol"
)

// Info describes a stored set, as the REST API shows it.
type Info struct {
	Version    string         `json:"version"`
	Indicators int            `json:"indicators"`
	Types      map[string]int `json:"types"`
	Name       string         `json:"name,omitempty"`
	Digest     string         `json:"sha256"`
	PushedBy   string         `json:"pushed_by"`
	PushedAt   time.Time      `json:"pushed_at"`
}

type record struct {
	Info
	Seq        uint64          `json:"seq"`
	Indicators []ioc.Indicator `json:"list"`
}

var currentKey = store.Key("meta", "iocset-current")

func setKey(seq uint64) []byte { return store.Key("iocset", store.U64(seq)) }

// Store holds the pushed indicator sets.
type Store struct {
	db  *badger.DB
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	waiters map[chan struct{}]struct{}
	cur     *protocol.IndicatorSet
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

// digest is the SHA-256 of the normalized indicators in a fixed order, so
// the same indicators pushed again, from CSV or STIX, are the same set.
func digest(inds []ioc.Indicator) string {
	sorted := append([]ioc.Indicator(nil), inds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	h := sha256.New()
	for _, i := range sorted {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", i.Type, i.Value, i.Severity, i.Note)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Push parses content (CSV or a STIX 2.1 bundle) and, when every
// indicator is valid, stores the set as the new current version and wakes
// the gateway. A bad set returns an *ioc.Error and changes nothing.
// Pushing the indicators of the current version again returns it
// unchanged.
func (s *Store) Push(ctx context.Context, name string, content []byte, pushedBy string) (*Info, error) {
	inds, err := ioc.Parse(content)
	if err != nil {
		return nil, err
	}
	sum := digest(inds)
	var out *record
	err = store.Update(ctx, s.db, func(txn *badger.Txn) error {
		cur, err := s.load(txn)
		if err != nil {
			return err
		}
		if cur != nil && cur.Digest == sum {
			out = cur
			return nil
		}
		seq := uint64(1)
		if cur != nil {
			seq = cur.Seq + 1
		}
		types := map[string]int{}
		for _, i := range inds {
			types[i.Type]++
		}
		rec := &record{Seq: seq, Indicators: inds, Info: Info{
			Version:    fmt.Sprintf("%d-%s", seq, sum[:12]),
			Indicators: len(inds),
			Types:      types,
			Name:       name,
			Digest:     sum,
			PushedBy:   pushedBy,
			PushedAt:   s.now().UTC(),
		}}
		if err := store.Put(txn, setKey(seq), rec); err != nil {
			return err
		}
		out = rec
		return store.Put(txn, currentKey, seq)
	})
	if err != nil {
		return nil, fmt.Errorf("storing the indicator set: %w", err)
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
	s.log.Info("indicator set pushed", "version", out.Version, "indicators", out.Indicators, "by", pushedBy)
	info := out.Info
	return &info, nil
}

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
		return nil, fmt.Errorf("indicator set %d: %w", seq, err)
	}
	return &rec, nil
}

func (s *Store) read() (*record, error) {
	var rec *record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.load(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the current indicator set: %w", err)
	}
	return rec, nil
}

// Info returns the current set's description, or a store.ErrNotFound
// error when nothing was pushed yet.
func (s *Store) Info(ctx context.Context) (*Info, error) {
	rec, err := s.read()
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("no indicator set was pushed yet: %w", store.ErrNotFound)
	}
	return &rec.Info, nil
}

// Current returns the current set in its wire form, nil when nothing was
// pushed yet. The gateway calls it for every hello and push.
func (s *Store) Current(ctx context.Context) (*protocol.IndicatorSet, error) {
	s.mu.Lock()
	if s.loaded {
		defer s.mu.Unlock()
		return s.cur, nil
	}
	s.mu.Unlock()
	rec, err := s.read()
	if err != nil {
		return nil, err
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

func wire(rec *record) *protocol.IndicatorSet {
	if rec == nil {
		return nil
	}
	set := &protocol.IndicatorSet{Version: rec.Version, PushedBy: rec.PushedBy, PushedUnixNano: rec.PushedAt.UnixNano()}
	for _, i := range rec.Indicators {
		set.Indicators = append(set.Indicators, &protocol.Indicator{Type: i.Type, Value: i.Value, Severity: i.Severity, Note: i.Note})
	}
	return set
}
