// Package compact compacts a badger database on demand, in place of
// badger's own compactors.
//
// Badger's compactors each wake every 50 ms to look for work, whether or
// not anything was written, and badger has no setting for it: on an
// idle host that polling was most of the agent's CPU. The agent opens
// the database of its spool and command journal without compactors and
// runs a Compactor beside it, woken by the spool's writes (Kick) and by
// a slow check; when level 0 has gathered tables, it merges the tree
// into a single level with badger's Flatten. That database is small, its
// keys are written in time order and deleted oldest first, so a merge
// meets mostly the newest and the oldest tables, and the deletes meet
// what they delete. (The event history is not a badger database: it is
// written in segment files that need no compaction, see agent/history.)
package compact

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// checkEvery is how often a Compactor looks at the database
// without being kicked: it catches a memtable flush that ended after the
// last write, and writers that do not kick.
const checkEvery = 10 * time.Second

// Compactor compacts one badger database opened with no compactors.
//
// A compaction writes new tables through memory maps, and a filesystem
// that fills under a memory-mapped write kills the process with SIGBUS:
// the Compactor compacts only while the free space exceeds Reserve by
// twice the size of the levels above the last (the last level is
// rewritten only where they overlap it), and otherwise waits, logging
// once.
type Compactor struct {
	db      *badger.DB
	name    string
	free    func() (uint64, error)
	reserve uint64
	log     *slog.Logger
	kick    chan struct{}

	// mu serializes the compactions and what runs through Exclusive.
	mu sync.Mutex

	runs    atomic.Uint64
	skipped atomic.Uint64
	// waiting says the last look found work and too little free space;
	// its changes are logged, so a wait is logged once.
	waiting atomic.Bool
}

// DefaultReserve is Options.Reserve when zero.
const DefaultReserve = 4 << 20

// Options configure a Compactor. The zero value is valid.
type Options struct {
	// Name names the database in logs ("agent database").
	Name string
	// FreeSpace, when set, reports the free bytes of the database's
	// filesystem; it is read before each compaction.
	FreeSpace func() (uint64, error)
	// Reserve is the free space a compaction leaves at least;
	// DefaultReserve when zero.
	Reserve uint64
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// New returns a Compactor of db, which must have been opened with
// NumCompactors 0. Run runs it.
func New(db *badger.DB, opts Options) *Compactor {
	if opts.Reserve == 0 {
		opts.Reserve = DefaultReserve
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Name == "" {
		opts.Name = "database"
	}
	return &Compactor{db: db, name: opts.Name, free: opts.FreeSpace, reserve: opts.Reserve, log: opts.Logger, kick: make(chan struct{}, 1)}
}

// Kick asks for a look at the database soon; it never blocks. Writers
// call it after each write.
func (c *Compactor) Kick() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run compacts when kicked or every checkEvery until ctx ends.
func (c *Compactor) Run(ctx context.Context) error {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		if err := c.Compact(); err != nil {
			c.log.Error(c.name+": compacting", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-t.C:
		}
	}
}

// Stats counts a Compactor's work.
type Stats struct {
	// Runs counts compactions, Skipped the looks that found work but
	// too little free space to do it.
	Runs, Skipped uint64
	// Waiting says the last look found work and too little free space.
	Waiting bool
}

// Stats returns the counters.
func (c *Compactor) Stats() Stats {
	return Stats{Runs: c.runs.Load(), Skipped: c.skipped.Load(), Waiting: c.waiting.Load()}
}

// Compact merges the tree into one level when level 0 holds more than
// two tables or more than one level holds data, and there is room for
// it. Run calls it; it is exported for tests and tools.
func (c *Compactor) Compact() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	levels := c.db.Levels()
	var upper int64 // the size of the levels above the last
	nonEmpty := 0
	for i, l := range levels {
		if i < len(levels)-1 {
			upper += l.Size
		}
		if l.NumTables > 0 {
			nonEmpty++
		}
	}
	// Two tables in level 0 alone are no work: badger's Flatten leaves a
	// tree of one level as it is unless that level is over its bound.
	if nonEmpty <= 1 && (len(levels) == 0 || levels[0].NumTables <= 2) {
		return nil
	}
	if c.free != nil {
		free, err := c.free()
		if err != nil {
			return fmt.Errorf("reading the free space: %w", err)
		}
		if need := c.reserve + 2*uint64(upper); free < need {
			c.skipped.Add(1)
			if !c.waiting.Swap(true) {
				c.log.Warn(c.name+": compaction waits for disk space", "free_bytes", free, "needed_bytes", need, "level0_tables", levels[0].NumTables)
			}
			return nil
		}
		if c.waiting.Swap(false) {
			c.log.Info(c.name+": compacting again", "free_bytes", free)
		}
	}
	if err := c.db.Flatten(1); err != nil {
		return err
	}
	c.runs.Add(1)
	return nil
}

// Exclusive runs fn while no compaction runs, for other calls that
// compact (badger's DropPrefix). A nil Compactor just runs fn.
func (c *Compactor) Exclusive(fn func() error) error {
	if c == nil {
		return fn()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return fn()
}
