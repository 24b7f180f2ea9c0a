package fswatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// hashItem is a change waiting for its hash.
type hashItem struct {
	path, typ, action string
	at                time.Time
	from              origin
}

// hashQueue holds the paths waiting for the hash worker, at most one item
// per path: a path written again while it waits is reported once, as a
// creation if it was created.
type hashQueue struct {
	mu      sync.Mutex
	pending map[string]*hashItem
	ch      chan string
	closed  bool
}

func newHashQueue(n int) *hashQueue {
	return &hashQueue{pending: make(map[string]*hashItem, n), ch: make(chan string, n)}
}

// push queues it, or merges it with the item waiting for the same path.
// It returns false when the queue is full.
func (q *hashQueue) push(it hashItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if p, ok := q.pending[it.path]; ok {
		created := p.typ == ecs.TypeCreation
		if it.typ == ecs.TypeCreation {
			p.typ, p.action = it.typ, it.action
		}
		if it.from.proc != nil && (p.from.proc == nil || !created || it.typ == ecs.TypeCreation) {
			// A creation names the process that created the file;
			// a change, the last one that wrote it.
			p.from = it.from
		}
		return true
	}
	if len(q.pending) >= cap(q.ch) {
		return false
	}
	q.pending[it.path] = &it
	q.ch <- it.path // never blocks: at most cap(q.ch) paths are pending
	return true
}

// pop takes the item for path off the queue.
func (q *hashQueue) pop(path string) (hashItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.pending[path]
	if !ok {
		return hashItem{}, false
	}
	delete(q.pending, path)
	return *it, true
}

func (q *hashQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// hashWorker hashes queued files and reports them, until the queue is
// closed or ctx is done.
func (s *Sensor) hashWorker(ctx context.Context, q *hashQueue, emit func(ecs.Event)) {
	buf := make([]byte, 64<<10)
	for {
		var path string
		select {
		case <-ctx.Done():
			return
		case p, ok := <-q.ch:
			if !ok {
				return
			}
			path = p
		}
		it, ok := q.pop(path)
		if !ok {
			continue
		}
		fi, sum, err := hashFile(path, s.opts.HashMaxBytes, buf)
		if err != nil {
			s.unhashed.Add(1)
			s.log.Debug("file sensor: cannot hash", logPath, path, logError, err)
		}
		ev := it.from.apply(fileEvent(it.at, it.typ, it.action, path, fi))
		if sum != "" {
			ev.File.Hash = &ecs.Hash{SHA256: sum}
		}
		emit(ev)
	}
}

// hashFile returns the file's information and, when it is a regular file
// no larger than max bytes, its SHA-256. The file is opened without
// following symbolic links or blocking on a FIFO swapped in for it.
func hashFile(path string, max int64, buf []byte) (fs.FileInfo, string, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, "", fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("reading attributes of %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > max {
		return fi, "", nil
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(f, max+1), buf)
	if err != nil {
		return fi, "", fmt.Errorf("reading %s: %w", path, err)
	}
	if n > max {
		// It grew past the cap while being read.
		return fi, "", nil
	}
	return fi, hex.EncodeToString(h.Sum(nil)), nil
}

// fileEvent builds a file event; fi may be nil when the file is gone.
func fileEvent(ts time.Time, typ, action, path string, fi fs.FileInfo) ecs.Event {
	f := &ecs.File{
		Path:      path,
		Name:      filepath.Base(path),
		Directory: filepath.Dir(path),
	}
	if fi != nil {
		m := fi.Mode()
		switch {
		case m.IsRegular():
			f.Type = "file"
		case m.IsDir():
			f.Type = "dir"
		case m&fs.ModeSymlink != 0:
			f.Type = "symlink"
		default:
			f.Type = "other"
		}
		if m.IsRegular() {
			size := fi.Size()
			f.Size = &size
		}
		f.Mode = modeString(m)
		f.UID, f.GID, f.Owner = owner(fi)
	}
	return ecs.Event{
		Timestamp: ts.UTC(),
		Event: ecs.Meta{
			Category: ecs.CategoryFile,
			Type:     typ,
			Action:   action,
			Module:   ModuleFsnotify,
		},
		File: f,
	}
}

// modeString renders permission bits with the setuid, setgid and sticky
// bits in octal, as chmod takes them: "4755", "0644".
func modeString(m fs.FileMode) string {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return fmt.Sprintf("%04o", bits)
}
