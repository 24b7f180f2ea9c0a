package ingest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
)

// The ingest benchmarks store findings from benchAgents concurrent agents
// in batches of benchBatch, on a database opened exactly as the collector
// opens it (synchronous writes): BenchmarkIngestAppend through Store.Append,
// BenchmarkIngestRawBadger as bare badger transactions writing the same
// keys and value sizes, the ceiling ingest is measured against. Each
// reports findings/s; docs/benchmarks.md holds the figures.
const (
	benchAgents = 64
	benchBatch  = 100

	benchSingleAgents = 256
	benchBulk         = 2000
)

func benchDB(b *testing.B) *badger.DB {
	b.Helper()
	return benchDBWith(b, func(o badger.Options) badger.Options { return o })
}

func benchDBWith(b *testing.B, change func(badger.Options) badger.Options) *badger.DB {
	b.Helper()
	db, err := store.OpenWith(change(store.Options(b.TempDir(), quiet)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// startFindings resets the timer and returns the function that reports
// findings/s and, where the process's CPU time can be read, the CPU time
// spent per finding (user and system, all goroutines, badger's compactions
// included): on a shared machine the rate follows the load of others, the
// CPU time much less.
func startFindings(b *testing.B) func(n int64) {
	b.Helper()
	cpu0, ok := processCPU()
	b.ResetTimer()
	return func(n int64) {
		b.StopTimer()
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "findings/s")
		if cpu1, ok1 := processCPU(); ok && ok1 && n > 0 {
			b.ReportMetric((cpu1-cpu0)/float64(n)*1e6, "cpu-µs/finding")
		}
	}
}

func BenchmarkIngestAppend(b *testing.B) { benchAppend(b, benchAgents, benchBatch) }

// BenchmarkIngestAppendSingles stores findings one per Append from
// benchSingleAgents agents: what a fleet in its steady state sends, each
// agent forwarding a finding as soon as its spool holds one.
func BenchmarkIngestAppendSingles(b *testing.B) { benchAppend(b, benchSingleAgents, 1) }

// BenchmarkIngestOptions runs BenchmarkIngestAppend on databases opened
// with one setting of store.Options changed, to choose them by measure.
func BenchmarkIngestOptions(b *testing.B) {
	for _, v := range []struct {
		name   string
		change func(badger.Options) badger.Options
	}{
		{"store", func(o badger.Options) badger.Options { return o }},
		{"uncompressed", func(o badger.Options) badger.Options { return o.WithCompression(options.None) }},
		{"memtable=32MiB", func(o badger.Options) badger.Options { return o.WithMemTableSize(32 << 20) }},
		{"memtable=64MiB", func(o badger.Options) badger.Options { return o.WithMemTableSize(64 << 20) }},
		{"level0=6", func(o badger.Options) badger.Options {
			return o.WithNumLevelZeroTables(6).WithNumLevelZeroTablesStall(12)
		}},
		{"blockcache=0", func(o badger.Options) badger.Options { return o.WithBlockCacheSize(0).WithCompression(options.None) }},
		{"threshold=64", func(o badger.Options) badger.Options { return o.WithValueThreshold(64) }},
	} {
		b.Run(v.name, func(b *testing.B) { benchAppendDB(b, benchDBWith(b, v.change), benchAgents, benchBatch) })
	}
}

func benchAppend(b *testing.B, agents, size int) { benchAppendDB(b, benchDB(b), agents, size) }

func benchAppendDB(b *testing.B, db *badger.DB, agents, size int) {
	s, err := New(Config{DB: db}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var agent atomic.Int64
	var stored atomic.Int64
	b.SetParallelism(max(1, agents/max(1, testingProcs())))
	report := startFindings(b)
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("agent-%d", agent.Add(1))
		for pb.Next() {
			n, _, err := s.Append(ctx, id, batch(size))
			if err != nil {
				b.Error(err)
				return
			}
			stored.Add(int64(n))
		}
	})
	report(stored.Load())
}

func BenchmarkIngestRawBadger(b *testing.B) { benchRaw(b, benchAgents, benchBatch) }

// BenchmarkIngestRawBadgerSingles is the raw baseline of
// BenchmarkIngestAppendSingles: one transaction per finding.
func BenchmarkIngestRawBadgerSingles(b *testing.B) { benchRaw(b, benchSingleAgents, 1) }

// BenchmarkIngestRawBadgerBulk is the ceiling of the store itself: one
// writer puts the same keys in synchronous transactions of benchBulk
// findings, about the largest a group commit makes, with no concurrency
// and no reads.
func BenchmarkIngestRawBadgerBulk(b *testing.B) {
	db := benchDB(b)
	val := rawValue(b)
	report := startFindings(b)
	var seq uint64
	txn := db.NewTransaction(true)
	defer func() { txn.Discard() }()
	var w rawWrite
	for i := range b.N {
		for range benchBatch {
			if err := w.add(txn, seq, val); err != nil {
				b.Fatal(err)
			}
			seq++
		}
		if (i+1)%(benchBulk/benchBatch) == 0 || i == b.N-1 {
			if err := w.finish(txn); err != nil {
				b.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			txn = db.NewTransaction(true)
		}
	}
	report(int64(seq))
}

// rawValue is one finding as ingest stores it, encoded once: the raw
// writes pay for the bytes, not for building them.
func rawValue(b *testing.B) []byte {
	f, err := convert("agent-0", "", finding("high"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return encodeRecord(nil, f)
}

var (
	rawAgent    = agentIndex("agent-0")
	rawSeverity = severityIndex("high")
)

// rawWrite writes the keys ingest writes for findings of fresh ids, in
// the same blocks and postings, without reading anything.
type rawWrite struct {
	idx postings
	blk blockBuilder
}

func (w *rawWrite) add(txn *badger.Txn, seq uint64, val []byte) error {
	id := uuid.Must(uuid.NewV7()).String()
	w.blk.add(seq, val)
	if err := txn.Set(findingKey(id), ref4(seq, w.blk.first, "")); err != nil {
		return err
	}
	if w.blk.full() {
		if err := w.blk.flush(txn); err != nil {
			return err
		}
	}
	w.idx.add(rawAgent, seq)
	w.idx.add(rawSeverity, seq)
	return nil
}

// finish writes the last block and the postings; w is then empty.
func (w *rawWrite) finish(txn *badger.Txn) error {
	defer func() { *w = rawWrite{} }()
	if err := w.blk.flush(txn); err != nil {
		return err
	}
	return w.idx.set(txn)
}

func benchRaw(b *testing.B, agents, size int) {
	db := benchDB(b)
	val := rawValue(b)
	var seq, written atomic.Uint64
	b.SetParallelism(max(1, agents/max(1, testingProcs())))
	report := startFindings(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := seq.Add(uint64(size)) - uint64(size)
			err := db.Update(func(txn *badger.Txn) error {
				var w rawWrite
				for i := range uint64(size) {
					if err := w.add(txn, start+i, val); err != nil {
						return err
					}
				}
				return w.finish(txn)
			})
			if err != nil {
				b.Error(err)
				return
			}
			written.Add(uint64(size))
		}
	})
	report(int64(written.Load()))
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
