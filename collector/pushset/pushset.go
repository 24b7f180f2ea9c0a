package pushset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/collector/wake"
)

// Kind is what a Store needs to know of one kind of set: R is a stored
// version, W its form on the wire.
type Kind[R, W any] struct {
	// Name names the kind in messages, e.g. "rule set".
	Name string
	// Prefix starts the keys of its versions, e.g. "ruleset".
	Prefix string
	// Seq and Digest read a stored version's sequence number and the
	// digest of its content.
	Seq    func(*R) uint64
	Digest func(*R) string
	// Wire returns a stored version as the gateway sends it.
	Wire func(*R) W
}

// Store holds the pushed versions of one kind of set.
type Store[R, W any] struct {
	db   *badger.DB
	kind Kind[R, W]
	now  func() time.Time
	cur  []byte // key of the current version's sequence number

	waiters wake.Waiters // all under one key

	mu     sync.Mutex
	wire   W // the current set on the wire; valid once loaded
	loaded bool
}

// New returns a Store of kind over db; now is the clock (time.Now when
// nil).
func New[R, W any](db *badger.DB, kind Kind[R, W], now func() time.Time) *Store[R, W] {
	if now == nil {
		now = time.Now
	}
	return &Store[R, W]{db: db, kind: kind, now: now, cur: store.Key("meta", kind.Prefix+"-current")}
}

func (s *Store[R, W]) setKey(seq uint64) []byte { return store.Key(s.kind.Prefix, store.U64(seq)) }

// Version is the version string of the set numbered seq with digest:
// the digest tells sets apart even across a collector whose store was
// started afresh.
func Version(seq uint64, digest string) string {
	return fmt.Sprintf("%d-%s", seq, digest[:min(12, len(digest))])
}

// Push stores a set whose content has digest as the new current version
// and wakes the waiters: build makes its record from the sequence
// number, the version string and the time of the push. When the current
// version has the same digest, Push returns it unchanged and build is
// not called.
func (s *Store[R, W]) Push(ctx context.Context, digest string, build func(seq uint64, version string, at time.Time) *R) (*R, error) {
	var rec *R
	err := store.Update(ctx, s.db, func(txn *badger.Txn) error {
		cur, err := s.load(txn)
		if err != nil {
			return err
		}
		if cur != nil && s.kind.Digest(cur) == digest {
			rec = cur
			return nil
		}
		seq := uint64(1)
		if cur != nil {
			seq = s.kind.Seq(cur) + 1
		}
		next := build(seq, Version(seq, digest), s.now().UTC())
		if err := store.Put(txn, s.setKey(seq), next); err != nil {
			return err
		}
		rec = next
		return store.Put(txn, s.cur, seq)
	})
	if err != nil {
		return nil, fmt.Errorf("storing the %s: %w", s.kind.Name, err)
	}
	s.mu.Lock()
	s.wire, s.loaded = s.toWire(rec), true
	s.mu.Unlock()
	s.waiters.Wake("")
	return rec, nil
}

// load reads the current version; nil when nothing was pushed yet.
func (s *Store[R, W]) load(txn *badger.Txn) (*R, error) {
	var seq uint64
	err := store.Get(txn, s.cur, &seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec R
	if err := store.Get(txn, s.setKey(seq), &rec); err != nil {
		return nil, fmt.Errorf("%s %d: %w", s.kind.Name, seq, err)
	}
	return &rec, nil
}

func (s *Store[R, W]) read() (*R, error) {
	var rec *R
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.load(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the current %s: %w", s.kind.Name, err)
	}
	return rec, nil
}

// Latest returns the current version, or a store.ErrNotFound error when
// nothing was pushed yet.
func (s *Store[R, W]) Latest(ctx context.Context) (*R, error) {
	rec, err := s.read()
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("no %s was pushed yet: %w", s.kind.Name, store.ErrNotFound)
	}
	return rec, nil
}

// Current returns the current set in its wire form, the zero W (nil)
// when nothing was pushed yet. The gateway calls it for every hello and
// push.
func (s *Store[R, W]) Current(ctx context.Context) (W, error) {
	s.mu.Lock()
	if s.loaded {
		defer s.mu.Unlock()
		return s.wire, nil
	}
	s.mu.Unlock()
	rec, err := s.read()
	if err != nil {
		var zero W
		return zero, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		s.wire, s.loaded = s.toWire(rec), true
	}
	return s.wire, nil
}

func (s *Store[R, W]) toWire(rec *R) W {
	if rec == nil {
		var zero W
		return zero
	}
	return s.kind.Wire(rec)
}

// Notify has f called whenever a new set is pushed, until stop is called
// (see wake.Waiters.Notify).
func (s *Store[R, W]) Notify(f func()) (stop func()) { return s.waiters.Notify("", f) }
