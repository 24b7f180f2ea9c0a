package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

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
// read; otherwise every event since since is. Events come oldest segment
// first, and in time order within one.
func (s *Store) Search(ctx context.Context, q *query.Query, since time.Time, fn func(ev ecs.Event) bool) (SearchStats, error) {
	var st SearchStats
	eq := q.Equalities()
	for _, f := range indexOrder {
		if vals := eq[f]; len(vals) > 0 {
			st.Index = f
			break
		}
	}
	var vals, keys []string
	if st.Index != "" {
		vals = slices.Clone(eq[st.Index])
		slices.Sort(vals)
		vals = slices.Compact(vals)
		for _, v := range vals {
			keys = append(keys, string(appendIndexKeyPrefix(nil, nil, st.Index, v)))
		}
	}
	s.mu.RLock()
	l := s.legacy
	s.mu.RUnlock()
	if l != nil {
		more, err := l.search(ctx, q, since, st.Index, vals, &st, fn)
		if err != nil || !more {
			return st, err
		}
	}
	sinceN := int64(0)
	if !since.IsZero() {
		sinceN = since.UnixNano()
	}
	for _, v := range s.views(sinceN, keys) {
		more, err := s.searchSegment(ctx, v, q, since, keys, &st, fn)
		if err != nil || !more {
			return st, err
		}
	}
	return st, nil
}

// segView is what a search reads of a segment: its state when the
// search began and, for the segment being written, the refs of the keys
// looked up.
type segView struct {
	segment
	active bool
	refs   [][]byte
}

// views returns the segments with events at or after since.
func (s *Store) views(since int64, keys []string) []segView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]segView, 0, len(s.segs))
	for _, g := range s.segs {
		if g.events == 0 || g.last < since {
			continue
		}
		v := segView{segment: *g, active: g == s.active}
		// The writer's file and index are not the search's to use.
		v.f, v.index = nil, nil
		if v.active {
			for _, k := range keys {
				if r := g.index[k]; len(r) > 0 {
					v.refs = append(v.refs, slices.Clone(r))
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// errStop ends a scan of records early.
var errStop = errors.New("stop")

// searchSegment searches one segment: through its index when keys are
// given and it has one, otherwise by reading all its records.
func (s *Store) searchSegment(ctx context.Context, v segView, q *query.Query, since time.Time, keys []string, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	f, err := os.Open(v.path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // swept since the search began
	}
	if err != nil {
		return false, fmt.Errorf("searching history: %w", err)
	}
	defer f.Close()
	sinceN := since.UnixNano()
	if len(keys) > 0 && (v.active || v.dirStart > 0) {
		refs, err := s.lookup(f, &v, keys)
		if err == nil {
			return s.readRefs(ctx, f, &v, refs, q, since, st, fn)
		}
		s.log.Debug("history: scanning a segment whose index cannot be read", "segment", v.path, "err", err)
	}
	more := true
	_, err = scanRecords(f, v.blocksEnd, func(off int64, h recHeader, val []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !since.IsZero() && h.last < sinceN {
			return nil
		}
		blk, err := parseBlock(val, true)
		if err != nil {
			s.log.Debug("skipping a malformed history block", "segment", v.path, "offset", off, "err", err)
			return nil
		}
		for i := range blk.events {
			if i%256 == 255 && ctx.Err() != nil {
				return ctx.Err()
			}
			if more = testEvent(s.log, blk.events[i], q, since, st, fn); !more {
				return errStop
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return false, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, errSegment):
		s.log.Debug("history: a segment's records end early", "segment", v.path, "err", err)
	case err != nil:
		return false, err
	}
	return true, nil
}

// lookup returns the events of a segment with any of keys, in the
// segment's order.
func (s *Store) lookup(f *os.File, v *segView, keys []string) ([]ref, error) {
	var out []ref
	var err error
	if v.active {
		for _, r := range v.refs {
			if out, err = appendRefs(out, r); err != nil {
				return nil, err
			}
		}
	} else {
		dir, err := readDir(f, &v.segment)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			r, err := dir.lookup(f, k)
			if err != nil {
				return nil, err
			}
			if out, err = appendRefs(out, r); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b ref) int {
		if a.off != b.off {
			return cmp.Compare(a.off, b.off)
		}
		return cmp.Compare(a.pos, b.pos)
	})
	return slices.Compact(out), nil
}

// readRefs reads and tests the events at refs.
func (s *Store) readRefs(ctx context.Context, f *os.File, v *segView, refs []ref, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) (bool, error) {
	var buf []byte
	for i := 0; i < len(refs); {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		off := refs[i].off
		j := i
		for j < len(refs) && refs[j].off == off {
			j++
		}
		h, val, b, err := readRecord(f, off, v.blocksEnd, buf)
		buf = b
		group := refs[i:j]
		i = j
		if err != nil {
			if errors.Is(err, errSegment) {
				s.log.Debug("skipping a history record an index points at", "segment", v.path, "offset", off, "err", err)
				continue
			}
			return false, err
		}
		if !since.IsZero() && h.last < since.UnixNano() {
			continue
		}
		blk, err := parseBlock(val, true)
		if err != nil {
			s.log.Debug("skipping a malformed history block", "segment", v.path, "offset", off, "err", err)
			continue
		}
		for _, r := range group {
			if r.pos >= len(blk.events) {
				continue
			}
			if !testEvent(s.log, blk.events[r.pos], q, since, st, fn) {
				return false, nil
			}
		}
	}
	return true, nil
}

// testEvent decodes and tests one event of a block, unless it is before
// since.
func testEvent(log *slog.Logger, be blockEvent, q *query.Query, since time.Time, st *SearchStats, fn func(ecs.Event) bool) bool {
	if !since.IsZero() && be.time < since.UnixNano() {
		return true
	}
	st.Scanned++
	ev, err := decodeEvent(be.data)
	if err != nil {
		log.Debug("skipping an undecodable history event", "err", err)
		return true
	}
	if !q.Match(&ev) {
		return true
	}
	return fn(ev)
}
