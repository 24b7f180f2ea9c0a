package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Defaults of Options.
const (
	DefaultMaxAge   = 72 * time.Hour
	DefaultMaxBytes = 512 << 20
	DefaultQueue    = 8192
	// DefaultReserve is the free space under which the history stops
	// writing: the spool's 8 MiB reserve plus 16 MiB, twice the largest
	// segment (8 MiB) with its index, so the history stops well before
	// findings are refused.
	DefaultReserve = 24 << 20
)

const (
	// flushEvery and flushMax bound how long and how many events wait in
	// memory before they are written.
	flushEvery = 250 * time.Millisecond
	flushMax   = 2000
	// sweepEvery is how often expired and excess segments are deleted;
	// a sweep only looks at the segments' times and sizes in memory.
	sweepEvery = 30 * time.Second
	// A segment holds at most 1/segParts of the size bound (and segMax),
	// so a full store keeps at least (segParts-1)/segParts of it; it
	// spans at most 1/ageParts of the age bound (within spanMin and
	// spanMax), so events go at most that long after they expire.
	segParts = 32
	ageParts = 48
	segMin   = 64 << 10
	segMax   = 8 << 20
	spanMin  = time.Second
	spanMax  = 2 * time.Hour
	dirPerm  = 0o700
	filePerm = 0o600
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
	// MaxBytes bounds the segment files (and an older agent's database,
	// see LegacyDir); DefaultMaxBytes when zero.
	MaxBytes int64
	// Queue is how many events may wait for the writer; DefaultQueue when
	// zero.
	Queue int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// FreeSpace, when set, reports the free bytes of the store's
	// filesystem; it is read before each write, and under Reserve
	// (DefaultReserve when zero) the events are skipped and counted
	// instead of written.
	FreeSpace func() (uint64, error)
	Reserve   uint64
	// LegacyDir is where agents before segment files kept the history,
	// in a badger database. When one is there it is counted and searched
	// with the rest, never written, and deleted whole when its newest
	// event is past MaxAge or, as the oldest part, when the store is over
	// MaxBytes (legacy.go).
	LegacyDir string
	Logger    *slog.Logger
}

// Stats is a snapshot of a Store.
type Stats struct {
	Events int64 `json:"events"`
	// Bytes is what the store counts against its size bound.
	Bytes int64 `json:"bytes"`
	// DiskBytes is what the store takes on disk.
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
	// Segments counts the segment files.
	Segments int `json:"segments"`
}

// Store is the history. Add, Search and Stats are safe for concurrent
// use; Run owns the writer and sweeper.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	in   queue

	dropped atomic.Uint64
	skipped atomic.Uint64
	// Written by the writer only, read by Stats.
	diskLow   atomic.Bool
	freeBytes atomic.Uint64
	freeErr   string

	// wmu is held by whoever writes or sweeps (Run, or Flush and Sweep
	// called beside it): it guards the block builder, the record
	// buffers and the segment being written.
	wmu sync.Mutex
	// The writer's: its block builder and record buffer, and when it
	// cuts a segment.
	bw         *blockWriter
	val, rec   []byte
	segBytes   int64
	segSpan    int64
	sweepEvery time.Duration

	// mu guards the segment list and the segment being written's counts
	// and index; the writer alone changes them, and does its file I/O
	// outside mu.
	mu      sync.RWMutex
	segs    []*segment // in sequence order
	active  *segment   // the last of segs while it is written, or nil
	nextSeq uint64
	legacy  *legacy
	// unreadable lists the segments Open could not read, in sequence
	// order; Sweep deletes each once it deletes a newer segment.
	unreadable []uint64
}

// Open opens (creating it if needed) the history in dir: it reads each
// segment's trailer, and seals a segment the writer left without one.
// Close releases it.
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
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("history: making its folder: %w", err)
	}
	s := &Store{
		dir: dir, opts: opts, log: opts.Logger, in: queue{max: opts.Queue, kick: make(chan struct{}, 1)},
		segBytes: min(max(opts.MaxBytes/segParts, segMin), segMax),
		segSpan:  int64(min(max(opts.MaxAge/ageParts, spanMin), spanMax)),

		sweepEvery: sweepEvery,
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	for _, seq := range seqs {
		s.nextSeq = seq + 1
		g, err := openSegment(dir, seq)
		if err != nil {
			// The agent runs on without it; the file stays for a look
			// until the history it keeps is all newer (Sweep).
			s.log.Error("history: skipping a segment it cannot read", "segment", segName(seq), "err", err)
			s.unreadable = append(s.unreadable, seq)
			continue
		}
		if g != nil {
			s.segs = append(s.segs, g)
		}
	}
	if opts.LegacyDir != "" {
		l, err := openLegacy(opts.LegacyDir, s.log)
		if err != nil {
			s.log.Error("history: the history of an older agent cannot be read; it is left as it is", "err", err)
		}
		s.legacy = l
	}
	return s, nil
}

// Close seals the segment being written and closes an older agent's
// database; call it after Run returned.
func (s *Store) Close() error {
	s.wmu.Lock()
	err := s.sealActive()
	s.wmu.Unlock()
	s.mu.Lock()
	l := s.legacy
	s.mu.Unlock()
	if l != nil {
		err = errors.Join(err, l.close())
	}
	return err
}

// Add queues ev for the history without waiting: when the queue is full
// the event is dropped and counted. It reports whether ev was queued.
func (s *Store) Add(ev ecs.Event) bool {
	if s.in.add(ev) {
		return true
	}
	if s.dropped.Add(1) == 1 {
		s.log.Warn("history events dropped: the writer falls behind")
	}
	return false
}

// queue holds the events waiting for the writer, at most max. add wakes
// the writer only when the queue was empty (to start its flush timer) or
// reaches flushMax: a channel woke it once per event, and in an exec
// storm each wakeup cost about as much as writing the event.
type queue struct {
	mu   sync.Mutex
	evs  []ecs.Event
	max  int
	kick chan struct{} // capacity 1
}

func (q *queue) add(ev ecs.Event) bool {
	q.mu.Lock()
	if len(q.evs) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.evs = append(q.evs, ev)
	n := len(q.evs)
	q.mu.Unlock()
	if n == 1 || n == flushMax {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns the waiting events and leaves spare, emptied, in their
// place.
func (q *queue) take(spare []ecs.Event) []ecs.Event {
	clear(spare)
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = spare[:0]
	return evs
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.evs)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Dropped: s.dropped.Load(), SkippedDiskFull: s.skipped.Load(),
		DiskLow: s.diskLow.Load(), FreeBytes: s.freeBytes.Load(),
		MaxAge: s.opts.MaxAge, MaxBytes: s.opts.MaxBytes,
	}
	s.mu.RLock()
	var oldest, newest int64
	see := func(events, first, last int64) {
		if events == 0 {
			return
		}
		if st.Events == 0 || first < oldest {
			oldest = first
		}
		if st.Events == 0 || last > newest {
			newest = last
		}
		st.Events += events
	}
	l := s.legacy
	if l != nil {
		see(l.events, l.oldest, l.newest)
		st.Bytes += l.bytes
	}
	for _, g := range s.segs {
		see(int64(g.events), g.first, g.last)
		st.Bytes += g.size
	}
	st.Segments = len(s.segs)
	s.mu.RUnlock()
	st.DiskBytes = st.Bytes
	if l != nil {
		st.DiskBytes += l.diskSize() - l.bytes
	}
	if st.Events > 0 {
		st.Oldest, st.Newest = time.Unix(0, oldest).UTC(), time.Unix(0, newest).UTC()
	}
	return st
}

// Run writes queued events and sweeps expired ones until ctx ends, then
// writes what is still queued.
func (s *Store) Run(ctx context.Context) error {
	// The flush timer runs only while events wait, so that an idle
	// store wakes only to sweep.
	flush := time.NewTimer(flushEvery)
	flush.Stop()
	var flushC <-chan time.Time
	sweep := time.NewTicker(s.sweepEvery)
	defer sweep.Stop()
	s.sweepNow()
	var spare []ecs.Event
	write := func() {
		flush.Stop()
		flushC = nil
		pending := s.in.take(spare)
		spare = pending
		if len(pending) == 0 {
			return
		}
		if err := s.write(pending); err != nil {
			s.log.Warn("writing history", "events", len(pending), "err", err)
		}
		if s.over() {
			s.sweepNow()
		}
	}
	for {
		select {
		case <-ctx.Done():
			write()
			return nil
		case <-s.in.kick:
			if s.in.len() >= flushMax {
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
		}
	}
}

// over reports whether the store is over its size bound.
func (s *Store) over() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sizeLocked() > s.opts.MaxBytes
}

func (s *Store) sizeLocked() int64 {
	var n int64
	if s.legacy != nil {
		n += s.legacy.bytes
	}
	for _, g := range s.segs {
		n += g.size
	}
	return n
}

func (s *Store) sweepNow() {
	n, err := s.Sweep()
	if err != nil {
		s.log.Warn("sweeping history", "err", err)
	} else if n > 0 {
		s.log.Debug("history swept", "deleted", n)
	}
}

// Flush writes the queued events at once (for tests and benchmarks); it
// may be called while Run runs.
func (s *Store) Flush() error {
	return s.write(s.in.take(nil))
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

// write writes evs in blocks to the segment being written, cutting a
// new one when it is full or spans segSpan. Events not written are
// counted as dropped.
func (s *Store) write(evs []ecs.Event) error {
	if len(evs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.room() {
		s.skipped.Add(uint64(len(evs)))
		return nil
	}
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
	written := 0
	var last time.Time
	emit := func() error {
		if w.n == 0 {
			return nil
		}
		n := w.n
		err := s.writeBlock(w, last)
		w.reset()
		if err != nil {
			return err
		}
		written += n
		return nil
	}
	var err error
	for i := range evs {
		ev := &evs[i]
		if w.full(ev.Timestamp) {
			if err = emit(); err != nil {
				break
			}
		}
		w.add(ev)
		last = ev.Timestamp
	}
	if err == nil {
		err = emit()
	}
	if err != nil {
		s.dropped.Add(uint64(len(evs) - written))
	}
	return err
}

// writeBlock writes w's block, whose last event is at last, as a record
// of the segment being written.
func (s *Store) writeBlock(w *blockWriter, last time.Time) error {
	first, lastN := w.first.UnixNano(), last.UnixNano()
	s.val = w.value(s.val[:0])
	s.rec = appendRecord(s.rec[:0], first, lastN, w.n, s.val)
	if g := s.active; g != nil && g.events > 0 &&
		(g.blocksEnd+int64(len(s.rec)) > s.segBytes || first-g.first >= s.segSpan || len(g.index) >= segIndexMax) {
		if err := s.sealActive(); err != nil {
			s.log.Warn("history: a segment is kept without its index and will be scanned", "err", err)
		}
	}
	if s.active == nil {
		if err := s.newSegment(); err != nil {
			return err
		}
	}
	g := s.active
	if _, err := g.f.WriteAt(s.rec, g.blocksEnd); err != nil {
		g.f.Truncate(g.blocksEnd)
		return fmt.Errorf("writing history segment %s: %w", g.path, err)
	}
	h := recHeader{size: len(s.rec) - recHeaderLen, first: first, last: lastN, events: w.n}
	s.mu.Lock()
	g.note(g.blocksEnd, h, w.index)
	g.blocksEnd += int64(len(s.rec))
	g.size = g.blocksEnd
	s.mu.Unlock()
	return nil
}

// newSegment creates the next segment file and makes it the one written.
func (s *Store) newSegment() error {
	seq := s.nextSeq
	g := &segment{seq: seq, path: s.dir + string(os.PathSeparator) + segName(seq), index: map[string][]byte{}}
	f, err := os.OpenFile(g.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("creating history segment: %w", err)
	}
	if _, err := f.Write(segMagic); err != nil {
		f.Close()
		os.Remove(g.path)
		return fmt.Errorf("creating history segment %s: %w", g.path, err)
	}
	s.nextSeq++
	g.f, g.blocksEnd, g.size = f, int64(len(segMagic)), int64(len(segMagic))
	s.mu.Lock()
	s.segs = append(s.segs, g)
	s.active = g
	s.mu.Unlock()
	return nil
}

// sealActive writes the footer of the segment being written, if any,
// and closes it. A segment whose footer could not be written stays,
// without an index; searches scan it.
func (s *Store) sealActive() error {
	g := s.active
	if g == nil {
		return nil
	}
	size, dirStart, err := writeFooter(g.f, g)
	if cerr := g.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing history segment %s: %w", g.path, cerr)
	}
	s.mu.Lock()
	if err == nil {
		g.size, g.dirStart = size, dirStart
	}
	g.f, g.index = nil, nil
	s.active = nil
	s.mu.Unlock()
	return err
}

// Sweep deletes the segments whose events are all older than the age
// bound, then the oldest while the store is over its size bound, and
// returns how many events it deleted. An older agent's database counts
// as the oldest segment. Run sweeps on its own; Sweep may also be called
// beside it.
func (s *Store) Sweep() (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cutoff := s.opts.Now().Add(-s.opts.MaxAge).UnixNano()
	var (
		victims []*segment
		oldDB   *legacy
		n       int
	)
	s.mu.Lock()
	size := s.sizeLocked()
	// A hunt reading the older database holds it; the sweep then leaves
	// it for the next round rather than wait.
	if l := s.legacy; l != nil && (l.events == 0 || l.newest < cutoff || size > s.opts.MaxBytes) && l.mu.TryLock() {
		oldDB, s.legacy = l, nil
		size -= l.bytes
		n += int(l.events)
	}
	keep := make([]*segment, 0, len(s.segs))
	for _, g := range s.segs {
		if g.last < cutoff || g.events == 0 && g != s.active {
			victims = append(victims, g)
			size -= g.size
			n += g.events
			continue
		}
		keep = append(keep, g)
	}
	for len(keep) > 0 && size > s.opts.MaxBytes {
		g := keep[0]
		keep = keep[1:]
		victims = append(victims, g)
		size -= g.size
		n += g.events
	}
	s.segs = keep
	var f *os.File
	for _, g := range victims {
		if g == s.active {
			f, s.active = g.f, nil
		}
	}
	// A segment that could not be read goes once a newer one went: what
	// it held was older still.
	var unreadable []uint64
	if len(victims) > 0 {
		newest := victims[0].seq
		for _, g := range victims {
			newest = max(newest, g.seq)
		}
		i := 0
		for i < len(s.unreadable) && s.unreadable[i] < newest {
			i++
		}
		unreadable = slices.Clone(s.unreadable[:i])
		s.unreadable = s.unreadable[i:]
	}
	s.mu.Unlock()
	var errs []error
	if f != nil {
		f.Close()
	}
	for _, g := range victims {
		if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting history segment: %w", err))
		}
	}
	for _, seq := range unreadable {
		err := os.Remove(filepath.Join(s.dir, segName(seq)))
		switch {
		case err == nil:
			s.log.Info("history: deleted a segment it could not read, older than the history it deleted", "segment", segName(seq))
		case !errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("deleting a history segment it could not read: %w", err))
		}
	}
	if oldDB != nil {
		if err := oldDB.removeLocked(); err != nil {
			errs = append(errs, err)
		} else {
			s.log.Info("history: deleted the history of an older agent", "events", oldDB.events)
		}
	}
	return n, errors.Join(errs...)
}
