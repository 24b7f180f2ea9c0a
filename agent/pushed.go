package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/certs"
)

// pushedWire is what every set the collector pushes carries besides its
// content.
type pushedWire interface {
	GetVersion() string
	GetPushedBy() string
	GetPushedUnixNano() int64
}

// pushKind is what differs between the kinds of set the collector pushes
// (rule sets, indicator sets): W is a set on the wire, C its content as
// the state folder keeps it (a struct, whose fields sit beside the
// version's in the stored file), B what detection runs of it.
type pushKind[W pushedWire, C, B any] struct {
	name     string // in messages: "rule set"
	file     string // where the state folder keeps the set
	what     string // what the set holds, for the log: "rules"
	fallback string // what runs without a stored set: "running the built-in pack"
	content  func(W) C
	// build makes what detection runs of a set's content; an error
	// refuses the set.
	build func(version string, c C) (B, error)
	batch func(B) detectors.Batch
	size  func(B) int
}

// pushedSets runs one kind of set the collector pushes, whole or not at
// all, and keeps the set it runs in the state folder so that a restart
// runs it again before the collector is reachable. Apply is called by
// one goroutine at a time (the uplink's); the getters from anywhere.
type pushedSets[W pushedWire, C, B any] struct {
	kind pushKind[W, C, B]
	path string
	log  *slog.Logger
	// swapped, when set, hears of each set swapped in, with what ran
	// before it.
	swapped func(prev, next B, c C)

	mu      sync.Mutex
	version string // of the pushed set running, "" before any
	cur     B
	refused string // why the last set was refused
}

// newPushedSets returns the sets of kind kept in stateDir; empty is what
// runs before any set is pushed.
func newPushedSets[W pushedWire, C, B any](kind pushKind[W, C, B], stateDir string, empty B, log *slog.Logger) *pushedSets[W, C, B] {
	return &pushedSets[W, C, B]{kind: kind, path: filepath.Join(stateDir, kind.file), log: log, cur: empty}
}

// storedSet is a pushed set as the state folder keeps it.
type storedSet[C any] struct {
	setHeader
	Content C
}

type setHeader struct {
	Version  string    `json:"version"`
	PushedBy string    `json:"pushed_by,omitempty"`
	PushedAt time.Time `json:"pushed_at,omitzero"`
}

// MarshalJSON writes the header's fields and the content's in one
// object.
func (s storedSet[C]) MarshalJSON() ([]byte, error) {
	h, err := json.Marshal(s.setHeader)
	if err != nil {
		return nil, err
	}
	c, err := json.Marshal(s.Content)
	if err != nil {
		return nil, err
	}
	if len(c) < 2 || c[0] != '{' {
		return nil, fmt.Errorf("the content of a pushed set is not a JSON object: %.20s", c)
	}
	if len(c) == 2 {
		return h, nil
	}
	return append(append(h[:len(h)-1:len(h)-1], ','), c[1:]...), nil
}

func (s *storedSet[C]) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &s.setHeader); err != nil {
		return err
	}
	return json.Unmarshal(b, &s.Content)
}

// initial returns what to run at start: the stored set, or what ran
// before any push when none is stored or the stored one no longer
// builds (then the collector sends its set again after the hello).
func (s *pushedSets[W, C, B]) initial() B {
	b, err := os.ReadFile(s.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("reading the stored "+s.kind.name+"; "+s.kind.fallback, "file", s.path, "err", err)
		}
		return s.current()
	}
	var st storedSet[C]
	if err := json.Unmarshal(b, &st); err != nil {
		s.log.Error("decoding the stored "+s.kind.name+"; "+s.kind.fallback, "file", s.path, "err", err)
		return s.current()
	}
	next, err := s.kind.build(st.Version, st.Content)
	if err != nil {
		s.log.Error("the stored "+s.kind.name+" is not valid; "+s.kind.fallback, "version", st.Version, "err", err)
		return s.current()
	}
	s.mu.Lock()
	s.version, s.cur = st.Version, next
	s.mu.Unlock()
	s.log.Info("running the stored "+s.kind.name, "version", st.Version, s.kind.what, s.kind.size(next))
	return next
}

// persist stores set so that a restart runs it.
func (s *pushedSets[W, C, B]) persist(set W, c C) error {
	st := storedSet[C]{setHeader: setHeader{Version: set.GetVersion(), PushedBy: set.GetPushedBy()}, Content: c}
	if n := set.GetPushedUnixNano(); n != 0 {
		st.PushedAt = time.Unix(0, n).UTC()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", s.kind.name, set.GetVersion(), err)
	}
	if err := certs.WriteFileAtomic(s.path, b, 0o600); err != nil {
		return fmt.Errorf("storing %s %s: %w", s.kind.name, set.GetVersion(), err)
	}
	return nil
}

// current returns what runs.
func (s *pushedSets[W, C, B]) current() B {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// state returns the version running, the size of what runs and the
// last refusal.
func (s *pushedSets[W, C, B]) state() (version string, size int, refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.kind.size(s.cur), s.refused
}

// applySet runs a set pushed by the collector, whole or not at all: it
// builds the set, stores it in the state folder, then has the detection
// goroutine swap it in for batch id between two events. On any error
// what ran before keeps running and the error says why. It returns the
// size of what runs.
func applySet[W pushedWire, C, B any](ctx context.Context, a *Agent, s *pushedSets[W, C, B], id detectors.BatchID, set W) (int, error) {
	n, err := s.swap(ctx, a, id, set)
	if err != nil {
		s.mu.Lock()
		s.refused = fmt.Sprintf("refused %s %s: %v", s.kind.name, set.GetVersion(), err)
		s.mu.Unlock()
		a.log.Warn(s.kind.name+" refused; the previous one keeps running", "version", set.GetVersion(), "err", err)
		return 0, err
	}
	a.log.Info(s.kind.name+" applied", "version", set.GetVersion(), s.kind.what, n, "pushed_by", set.GetPushedBy())
	return n, nil
}

func (s *pushedSets[W, C, B]) swap(ctx context.Context, a *Agent, id detectors.BatchID, set W) (int, error) {
	if set.GetVersion() == "" {
		return 0, errors.New(s.kind.name + " has no version")
	}
	c := s.kind.content(set)
	next, err := s.kind.build(set.GetVersion(), c)
	if err != nil {
		return 0, err
	}
	if err := s.persist(set, c); err != nil {
		return 0, err
	}
	if err := a.swapBatch(ctx, id, s.kind.batch(next)); err != nil {
		return 0, fmt.Errorf("swapping in %s %s: %w", s.kind.name, set.GetVersion(), err)
	}
	s.mu.Lock()
	prev := s.cur
	s.version, s.cur, s.refused = set.GetVersion(), next, ""
	s.mu.Unlock()
	if s.swapped != nil {
		s.swapped(prev, next, c)
	}
	return s.kind.size(next), nil
}

// batchSwap asks the detection goroutine to put batch in the place of
// the batch id (the Sigma set or the indicator set); done is closed once
// it does.
type batchSwap struct {
	id    detectors.BatchID
	batch detectors.Batch
	done  chan struct{}
}

// swapBatch has the detection goroutine put b in the place of batch id.
func (a *Agent) swapBatch(ctx context.Context, id detectors.BatchID, b detectors.Batch) error {
	sw := batchSwap{id: id, batch: b, done: make(chan struct{})}
	select {
	case a.swaps <- sw:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-sw.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
