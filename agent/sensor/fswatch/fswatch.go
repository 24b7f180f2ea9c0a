package fswatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// The sensor's modes, reported by Mode: fsnotify alone, or fanotify
// beside it for the folders it can mark, which names the process behind
// each change.
const (
	Mode         = "fsnotify"
	ModeFanotify = "fsnotify+fanotify"
)

// event.module of the events from each source.
const (
	ModuleFsnotify = "fsnotify"
	ModuleFanotify = "fanotify"
)

// event.action values.
const (
	ActionCreated    = "created"
	ActionUpdated    = "updated"
	ActionDeleted    = "deleted"
	ActionRenamed    = ecs.ActionRenamed
	ActionAttributes = "attributes_modified"
)

// Defaults for Options.
const (
	DefaultHashMaxBytes = 16 << 20
	DefaultMaxWatches   = 4096
	DefaultHashQueue    = 1024
	DefaultRetry        = 30 * time.Second
	DefaultChangeQueue  = 4096
)

// Log attribute keys.
const (
	logError = "error"
	logPath  = "path"
)

// Options configures a Sensor. The zero value watches DefaultPaths.
type Options struct {
	// Paths are the watched paths (see the package comment); empty means
	// DefaultPaths.
	Paths []string
	// Exclude lists folders whose events are ignored, such as the agent's
	// own state folder.
	Exclude []string
	// HashMaxBytes caps the size of the files hashed; larger files are
	// reported without a hash. 0 means DefaultHashMaxBytes; negative
	// turns hashing off.
	HashMaxBytes int64
	// MaxWatches caps the number of folders watched, DefaultMaxWatches by
	// default.
	MaxWatches int
	// HashQueue bounds the paths waiting for the hash worker; when full,
	// changes are reported without a hash. DefaultHashQueue by default.
	HashQueue int
	// Retry is how often paths that are missing or unreadable are tried
	// again, DefaultRetry by default.
	Retry time.Duration
	// NoFanotify keeps the sensor on fsnotify alone, without the process
	// behind each change.
	NoFanotify bool
	// ChangeQueue bounds the fanotify events read from the kernel and
	// waiting for the sensor's loop; when full, events are dropped and
	// counted as lost. DefaultChangeQueue by default.
	ChangeQueue int
	// Process describes a live process by pid, typically from the process
	// sensor's cache (its entity id, and its command line as read at
	// exec); when nil or when it does not know the pid, the sensor reads
	// what procfs says.
	Process func(pid int) (ecs.Parent, bool)
	// Lineage returns the parent and ancestors of a process by pid,
	// nearest first, and whether it knows the process, typically from the
	// process sensor; they become the event's process.parent and
	// process.ancestry. When nil, events carry neither.
	Lineage func(pid int) ([]ecs.Parent, bool)
	// Busy reports whether the process sensor is working through a burst
	// of the kernel's records; a change whose writer it did not know
	// after attributionWait waits for it while it is (see
	// completeProcess). Optional.
	Busy   func() bool
	Logger *slog.Logger
}

// Stats counts what the sensor emitted and what it missed.
type Stats struct {
	// Events is the number of events delivered on Run's channel.
	Events uint64
	// Lost counts kernel event queue overflows (each counts once, however
	// many events the kernel dropped), fanotify events dropped because
	// the sensor's own queue was full, and folders that could not be
	// watched because of the watch cap.
	Lost uint64
	// Unhashed counts changed regular files reported without a hash
	// because the hash queue was full or the file could not be read.
	Unhashed uint64
}

// Sensor is the file sensor. Create it with New and call Run once; Mode
// and Stats are safe to call from any goroutine.
type Sensor struct {
	opts    Options
	log     *slog.Logger
	specs   []spec
	exclude []string

	events, lost, unhashed atomic.Uint64
	// noHash turns hashing off for now (SetHashing), on top of
	// Options.HashMaxBytes.
	noHash atomic.Bool

	mu     sync.Mutex
	mode   string
	reason string

	// Owned by Run's event loop.
	w   *fsnotify.Watcher
	fan *fanSource
	// fanErr says why fanotify does not run, fanMarked which folders it
	// watches (the others are inotify's), fanRefused how many folders it
	// could not mark and fanRefusal the last reason.
	fanErr     error
	fanMarked  map[string]bool
	fanRefused int
	fanRefusal error
	watched    map[string]bool
	missing    map[string]error // spec pattern → why it is not watched
	// walks counts the trees walked (read by tests).
	walks  atomic.Uint64
	capped bool
	// degraded is what the last log said was degraded.
	degraded string
}

// SetHashing turns the hashing of changed files off (on=false) or back
// on, as configured, while the sensor runs: the agent sheds it first when
// over its resource budget. Changes are still reported, without a hash.
// It is safe to call from any goroutine.
func (s *Sensor) SetHashing(on bool) { s.noHash.Store(!on) }

// New returns a file sensor configured by opts, or an error naming a bad
// path.
func New(opts Options) (*Sensor, error) {
	if len(opts.Paths) == 0 {
		opts.Paths = DefaultPaths()
	}
	if opts.HashMaxBytes == 0 {
		opts.HashMaxBytes = DefaultHashMaxBytes
	}
	if opts.MaxWatches <= 0 {
		opts.MaxWatches = DefaultMaxWatches
	}
	if opts.HashQueue <= 0 {
		opts.HashQueue = DefaultHashQueue
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.ChangeQueue <= 0 {
		opts.ChangeQueue = DefaultChangeQueue
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sensor{opts: opts, log: log}
	for _, p := range opts.Paths {
		sp, err := parseSpec(p)
		if err != nil {
			return nil, err
		}
		s.specs = append(s.specs, sp)
	}
	for _, e := range opts.Exclude {
		if e == "" {
			continue
		}
		abs, err := filepath.Abs(e)
		if err != nil {
			return nil, fmt.Errorf("excluded path %q: %w", e, err)
		}
		s.exclude = append(s.exclude, abs)
	}
	return s, nil
}

// Mode reports the sensor's mode and what degraded it (paths missing or
// denied, the watch cap). Both are empty until Run has set its watches.
func (s *Sensor) Mode() (mode, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode, s.reason
}

// Stats returns the sensor's counters.
func (s *Sensor) Stats() Stats {
	return Stats{Events: s.events.Load(), Lost: s.lost.Load(), Unhashed: s.unhashed.Load()}
}

// Run emits file events on out until ctx is done, then returns nil. It
// returns an error only when no watcher can be created at all; missing
// paths and denied folders are logged, named by Mode and retried.
func (s *Sensor) Run(ctx context.Context, out chan<- ecs.Event) error {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	defer w.Close()
	s.w = w
	s.watched = make(map[string]bool)
	s.missing = make(map[string]error)
	s.fanMarked = make(map[string]bool)
	changes := make(chan change, s.opts.ChangeQueue)
	if s.opts.NoFanotify {
		s.fanErr = errors.New("turned off")
	} else if fan, err := newFanSource(); err != nil {
		s.fanErr = err
	} else {
		s.fan = fan
		defer fan.close()
	}

	hq := newHashQueue(s.opts.HashQueue)
	emit := func(ev ecs.Event) {
		select {
		case out <- ev:
			s.events.Add(1)
		case <-ctx.Done():
		}
	}
	for _, sp := range s.specs {
		s.addSpec(sp, nil, false)
	}
	s.updateMode()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.hashWorker(ctx, hq, emit)
		return nil
	})
	if s.fan != nil {
		g.Go(func() error { return s.readFanotify(ctx, changes) })
	}
	g.Go(func() error {
		defer hq.close()
		retry := time.NewTicker(s.opts.Retry)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev, ok := <-w.Events:
				if !ok {
					return nil
				}
				s.handle(ctx, ev.Name, ev.Op, origin{module: ModuleFsnotify}, hq, emit)
			case c := <-changes:
				s.handle(ctx, c.path, c.op, c.from, hq, emit)
			case err, ok := <-w.Errors:
				if !ok {
					return nil
				}
				if errors.Is(err, fsnotify.ErrEventOverflow) {
					s.lost.Add(1)
					s.log.Warn("file sensor: kernel event queue overflowed, events lost")
					continue
				}
				s.log.Warn("file sensor: watcher error", logError, err)
			case <-retry.C:
				for _, sp := range s.specs {
					s.addSpec(sp, nil, true)
				}
				s.updateMode()
			}
		}
	})
	return g.Wait()
}

// addSpec watches what sp names now. Newly found entries are reported
// through found, when not nil.
//
// With onlyNew, roots already watched are left alone rather than walked
// again: the retry timer looks for paths that appeared (a missing path,
// a new glob match, a root that was removed and made again), and the
// folders below a watched root come as events. Walking /etc every
// retry cost more than the rest of an idle agent's file sensor.
func (s *Sensor) addSpec(sp spec, found func(path string, d fs.DirEntry), onlyNew bool) {
	roots := []string{sp.pattern}
	if hasGlob(sp.pattern) {
		m, err := filepath.Glob(sp.pattern)
		if err != nil || len(m) == 0 {
			s.missing[sp.pattern] = fs.ErrNotExist
			return
		}
		roots = m
	}
	var errs []error
	for _, r := range roots {
		if onlyNew && s.watched[r] {
			continue
		}
		if err := s.addTree(r, sp.recursive, found); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(roots) && len(errs) > 0 {
		s.missing[sp.pattern] = errs[0]
		return
	}
	delete(s.missing, sp.pattern)
}

// addTree watches root, or the folder of root when it is a file, and
// when recursive every folder below it. It returns an error only when
// root itself cannot be watched.
func (s *Sensor) addTree(root string, recursive bool, found func(path string, d fs.DirEntry)) error {
	if s.excluded(root) {
		return nil
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		// A single file: watch it directly.
		return s.watch(root, false)
	}
	if err := s.watch(root, true); err != nil {
		return err
	}
	if !recursive && found == nil {
		return nil
	}
	s.walks.Add(1)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			return nil
		}
		if err != nil {
			s.log.Debug("file sensor: cannot read folder", logPath, p, logError, err)
			return nil
		}
		if s.excluded(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if found != nil {
			found(p, d)
		}
		if !d.IsDir() {
			return nil
		}
		if !recursive {
			return fs.SkipDir
		}
		if err := s.watch(p, true); err != nil {
			s.log.Debug("file sensor: cannot watch folder", logPath, p, logError, err)
			if errors.Is(err, errWatchCap) {
				return fs.SkipAll
			}
			return fs.SkipDir
		}
		return nil
	})
	return nil
}

var errWatchCap = errors.New("watch cap reached")

// watch watches p: a folder with fanotify when it runs and can mark it,
// otherwise (and a single file always) with inotify.
func (s *Sensor) watch(p string, dir bool) error {
	if s.watched[p] {
		return nil
	}
	if len(s.watched) >= s.opts.MaxWatches {
		if !s.capped {
			s.capped = true
			s.lost.Add(1)
			s.log.Warn("file sensor: watch cap reached, some folders are not watched", "cap", s.opts.MaxWatches)
		}
		return errWatchCap
	}
	if dir && s.fan != nil {
		err := s.fan.add(p)
		if err == nil {
			s.watched[p], s.fanMarked[p] = true, true
			return nil
		}
		s.fanRefused++
		s.fanRefusal = err
		s.log.Debug("file sensor: fanotify cannot mark folder, watching it with inotify", logPath, p, logError, err)
	}
	if err := s.w.Add(p); err != nil {
		return fmt.Errorf("watching %s: %w", p, err)
	}
	s.watched[p] = true
	return nil
}

func (s *Sensor) excluded(p string) bool {
	for _, e := range s.exclude {
		if under(p, e) {
			return true
		}
	}
	return false
}

// updateMode sets the mode and the degraded reason from the watch state.
func (s *Sensor) updateMode() {
	// b holds what degraded; the count of folders goes in front of it.
	var b strings.Builder
	if len(s.missing) > 0 {
		keys := make([]string, 0, len(s.missing))
		for k := range s.missing {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var missing, denied, other []string
		for _, k := range keys {
			switch err := s.missing[k]; {
			case errors.Is(err, fs.ErrNotExist):
				missing = append(missing, k)
			case errors.Is(err, fs.ErrPermission):
				denied = append(denied, k)
			default:
				other = append(other, k+" ("+err.Error()+")")
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(&b, "; missing: %s", strings.Join(missing, ", "))
		}
		if len(denied) > 0 {
			fmt.Fprintf(&b, "; permission denied: %s", strings.Join(denied, ", "))
		}
		if len(other) > 0 {
			fmt.Fprintf(&b, "; failed: %s", strings.Join(other, ", "))
		}
	}
	if s.capped {
		fmt.Fprintf(&b, "; watch cap of %d reached", s.opts.MaxWatches)
	}
	degraded := strings.TrimPrefix(b.String(), "; ")
	mode := Mode
	reason := fmt.Sprintf("watching %d folders", len(s.watched))
	if s.fan != nil {
		mode = ModeFanotify
		reason += fmt.Sprintf(", %d with fanotify", len(s.fanMarked))
		if s.fanRefused > 0 {
			reason += fmt.Sprintf("; fanotify refused %d folders, watched with inotify alone: %v", s.fanRefused, s.fanRefusal)
		}
	} else if s.fanErr != nil {
		reason += "; fanotify: " + s.fanErr.Error()
	}
	if degraded != "" {
		reason += "; " + degraded
	}
	s.mu.Lock()
	first := s.mode == ""
	s.mode, s.reason = mode, reason
	s.mu.Unlock()
	// Log when the sensor starts and when what is degraded changes, not
	// each time a folder is added.
	if first || degraded != s.degraded {
		s.degraded = degraded
		// Missing default paths are common (no cron spool, no user
		// with .ssh): say so without alarm.
		s.log.Info("file sensor: watching", "mode", mode, "folders", len(s.watched), "fanotify_folders", len(s.fanMarked), "fanotify_error", s.fanErr, "degraded", degraded)
	}
}

// handleOrder is the order in which the operations of one event are
// handled when it holds several (fanotify merges a creation and the
// writes that follow it).
var (
	handleOrder    = []fsnotify.Op{fsnotify.Create, fsnotify.Write, fsnotify.Chmod, fsnotify.Rename, fsnotify.Remove}
	handleReplaced = []fsnotify.Op{fsnotify.Rename, fsnotify.Remove, fsnotify.Create, fsnotify.Write, fsnotify.Chmod}
)

// handle turns one watcher event into file events.
func (s *Sensor) handle(ctx context.Context, path string, ops fsnotify.Op, from origin, hq *hashQueue, emit func(ecs.Event)) {
	if path == "" || s.excluded(path) {
		return
	}
	now := time.Now()
	from = s.completeProcess(ctx, from)
	out := func(ev ecs.Event) { emit(from.apply(ev)) }
	order := handleOrder
	if ops.Has(fsnotify.Create) && ops.Has(fsnotify.Remove) {
		if _, err := os.Lstat(path); err == nil {
			// Removed, then created again (a file replaced): the
			// creation is what holds now.
			order = handleReplaced
		}
	}
	for _, op := range order {
		if !ops.Has(op) {
			continue
		}
		switch op {
		case fsnotify.Create:
			fi, err := os.Lstat(path)
			if err != nil {
				// Gone already: report what is known.
				out(fileEvent(now, ecs.TypeCreation, ActionCreated, path, nil))
				continue
			}
			if fi.IsDir() {
				s.newFolder(path, hq, emit, func() { out(fileEvent(now, ecs.TypeCreation, ActionCreated, path, fi)) })
				continue
			}
			s.changed(hq, emit, from, now, ecs.TypeCreation, ActionCreated, path, fi)
		case fsnotify.Write:
			fi, err := os.Lstat(path)
			if err != nil {
				out(fileEvent(now, ecs.TypeChange, ActionUpdated, path, nil))
				continue
			}
			s.changed(hq, emit, from, now, ecs.TypeChange, ActionUpdated, path, fi)
		case fsnotify.Remove:
			s.forget(path)
			out(fileEvent(now, ecs.TypeDeletion, ActionDeleted, path, nil))
		case fsnotify.Rename:
			s.forget(path)
			out(fileEvent(now, ecs.TypeChange, ActionRenamed, path, nil))
		case fsnotify.Chmod:
			fi, _ := os.Lstat(path)
			out(fileEvent(now, ecs.TypeChange, ActionAttributes, path, fi))
		}
	}
}

// changed reports a created or written file, through the hash worker
// when it is a regular file to hash.
func (s *Sensor) changed(hq *hashQueue, emit func(ecs.Event), from origin, now time.Time, typ, action, path string, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() || s.opts.HashMaxBytes < 0 || s.noHash.Load() {
		emit(from.apply(fileEvent(now, typ, action, path, fi)))
		return
	}
	if !hq.push(hashItem{path: path, typ: typ, action: action, at: now, from: from}) {
		s.unhashed.Add(1)
		emit(from.apply(fileEvent(now, typ, action, path, fi)))
	}
}

// newFolder watches a folder created below a watched one when a spec
// covers it, and reports what was created in it before the watch was
// set. It calls announce, which reports the folder's creation, once the
// folder is watched and before what is found in it: whoever sees the
// folder's event may write in it and be seen.
func (s *Sensor) newFolder(path string, hq *hashQueue, emit func(ecs.Event), announce func()) {
	announced := false
	once := func() {
		if !announced {
			announced = true
			announce()
		}
	}
	defer once()
	now := time.Now()
	for _, sp := range s.specs {
		if !sp.matches(path) && !(sp.recursive && sp.covers(path)) {
			continue
		}
		before := len(s.watched)
		_ = s.addTree(path, sp.recursive, func(p string, d fs.DirEntry) {
			once()
			fi, err := d.Info()
			if err != nil {
				return
			}
			// Found by reading the folder: which process made them
			// is not known.
			if fi.IsDir() {
				emit(fileEvent(now, ecs.TypeCreation, ActionCreated, p, fi))
				return
			}
			s.changed(hq, emit, origin{module: ModuleFsnotify}, now, ecs.TypeCreation, ActionCreated, p, fi)
		})
		once()
		if len(s.watched) != before {
			delete(s.missing, sp.pattern)
			s.updateMode()
		}
		return
	}
}

// forget drops the watches of a folder that was removed or renamed, and
// of the folders below it.
func (s *Sensor) forget(path string) {
	if !s.watched[path] {
		return
	}
	for p := range s.watched {
		if under(p, path) {
			if s.fanMarked[p] {
				s.fan.remove(p)
				delete(s.fanMarked, p)
			} else {
				_ = s.w.Remove(p)
			}
			delete(s.watched, p)
		}
	}
}

// origin is where an event came from: the source's event.module and,
// from fanotify, the process that made the change.
type origin struct {
	module string
	proc   *ecs.Process
	// lineage is set once proc's parent and ancestry are known.
	lineage bool
	// read is when a fanotify event was read.
	read time.Time
}

func (o origin) apply(ev ecs.Event) ecs.Event {
	if o.module != "" {
		ev.Event.Module = o.module
	}
	if o.proc != nil {
		p := *o.proc
		ev.Process = &p
	}
	return ev
}

// change is a fanotify event on its way from the reader to the loop.
type change struct {
	path string
	op   fsnotify.Op
	from origin
}

// readFanotify reads the fanotify group and queues each change, with
// its process described at once (the writer of a file is often gone a
// moment later), for the event loop. It never blocks on the loop: when
// the queue is full the change is dropped and counted as lost.
func (s *Sensor) readFanotify(ctx context.Context, changes chan<- change) error {
	var full atomic.Bool
	got := func(path string, op fsnotify.Op, pid int) {
		from := origin{module: ModuleFanotify, proc: s.process(pid), read: time.Now()}
		if from.proc != nil {
			from.lineage = s.lineage(from.proc)
		}
		c := change{path: path, op: op, from: from}
		select {
		case changes <- c:
			full.Store(false)
		default:
			s.lost.Add(1)
			if !full.Swap(true) {
				s.log.Warn("file sensor: fanotify events dropped, the sensor falls behind", "queue", cap(changes))
			}
		}
	}
	lost := func(why string) {
		s.lost.Add(1)
		s.log.Warn("file sensor: fanotify events lost", "why", why)
	}
	if err := s.fan.run(ctx, got, lost); err != nil {
		return fmt.Errorf("file sensor: %w", err)
	}
	return nil
}

// attributionWait is how long after it was read a change whose writer
// is still unknown waits for the process sensor to catch up with it: the
// sensor reads the kernel's exec records as they come, but every 25 ms
// during a burst, and then has a queue to work through. While the
// process sensor is still busy with a burst (Options.Busy) the change
// asks again every attributionStep, up to attributionMax after its read:
// on a loaded host the sensor can be further behind than attributionWait.
// The waits run from the read, so a burst of such changes waits once.
const (
	attributionWait = 75 * time.Millisecond
	attributionStep = 25 * time.Millisecond
	attributionMax  = time.Second
)

// completeProcess asks the process sensor once more about a process
// that was gone from procfs when its change was read, or whose fork the
// sensor had not read yet: the sensor may have seen its exec by now, or
// will have within attributionWait (it remembers processes for a while
// after they exit), or once the burst it works through is behind it.
func (s *Sensor) completeProcess(ctx context.Context, from origin) origin {
	if from.proc == nil {
		return from
	}
	name := from.proc.Executable == "" && s.opts.Process != nil
	lineage := !from.lineage && s.opts.Lineage != nil
	if !name && !lineage {
		return from
	}
	for wait := time.Until(from.read.Add(attributionWait)); ; wait = attributionStep {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		p := *from.proc
		named := !name
		if name {
			if ref, ok := s.opts.Process(p.PID); ok && ref.Executable != "" {
				p.Executable, p.Name, p.CommandLine = ref.Executable, ref.Name, ref.CommandLine
				if ref.EntityID != "" {
					p.EntityID = ref.EntityID
				}
				if p.Name == "" {
					p.Name = filepath.Base(p.Executable)
				}
				named = true
			}
		}
		known := !lineage || s.lineage(&p)
		if named && known || s.opts.Busy == nil || !s.opts.Busy() ||
			time.Since(from.read) >= attributionMax || ctx.Err() != nil {
			from.lineage = from.lineage || lineage && known
			from.proc = &p
			return from
		}
	}
}

// lineage fills in p's parent and ancestry from the process sensor and
// reports whether the sensor knew p and its parent: a parent named by its
// pid alone is one the sensor has not read yet.
func (s *Sensor) lineage(p *ecs.Process) bool {
	if s.opts.Lineage == nil {
		return false
	}
	l, ok := s.opts.Lineage(p.PID)
	if len(l) > 0 {
		p.Parent = &l[0]
		p.Ancestry = nil
		if len(l) > 1 {
			p.Ancestry = l[1:]
		}
	}
	return ok && (len(l) == 0 || l[0].EntityID != "" || l[0].Executable != "")
}

// process describes the process with the given pid, from the process
// sensor when it knows it, otherwise from procfs; a process gone before
// it could be read is named by its pid alone.
func (s *Sensor) process(pid int) *ecs.Process {
	if pid <= 0 {
		return nil
	}
	p := &ecs.Process{PID: pid}
	ref, ok := ecs.Parent{}, false
	if s.opts.Process != nil {
		ref, ok = s.opts.Process(pid)
	}
	if !ok || ref.Executable == "" {
		if r, found := describeProc(pid); found {
			if ref.EntityID != "" && r.EntityID == "" {
				r.EntityID = ref.EntityID
			}
			ref, ok = r, true
		}
	}
	if ok {
		p.EntityID, p.Executable, p.Name, p.CommandLine = ref.EntityID, ref.Executable, ref.Name, ref.CommandLine
		if p.Name == "" && p.Executable != "" {
			p.Name = filepath.Base(p.Executable)
		}
	}
	return p
}
