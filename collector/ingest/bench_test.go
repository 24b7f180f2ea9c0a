package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
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
)

func benchDB(b *testing.B) *badger.DB {
	b.Helper()
	db, err := store.Open(b.TempDir(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func reportFindings(b *testing.B, n int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "findings/s")
}

func BenchmarkIngestAppend(b *testing.B) {
	db := benchDB(b)
	s, err := New(Config{DB: db}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var agent atomic.Int64
	var stored atomic.Int64
	b.SetParallelism(max(1, benchAgents/max(1, testingProcs())))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("agent-%d", agent.Add(1))
		for pb.Next() {
			n, _, err := s.Append(ctx, id, batch(benchBatch))
			if err != nil {
				b.Error(err)
				return
			}
			stored.Add(int64(n))
		}
	})
	reportFindings(b, stored.Load())
}

func BenchmarkIngestRawBadger(b *testing.B) {
	db := benchDB(b)
	// One finding as ingest stores it, encoded once: the raw writes pay
	// for the bytes, not for building them.
	f, err := convert("agent-0", "", finding("high"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	val, err := json.Marshal(record{Finding: *f, Seq: 1})
	if err != nil {
		b.Fatal(err)
	}
	var seq, written atomic.Uint64
	b.SetParallelism(max(1, benchAgents/max(1, testingProcs())))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := seq.Add(benchBatch) - benchBatch
			err := db.Update(func(txn *badger.Txn) error {
				for i := range uint64(benchBatch) {
					id := []byte(uuid.Must(uuid.NewV7()).String())
					s := start + i
					for _, kv := range [][2][]byte{
						{findingKey(string(id)), val},
						{logKey(s), id},
						{indexKey(agentIndex("agent-0"), s), id},
						{indexKey(severityIndex("high"), s), id},
					} {
						if err := txn.Set(kv[0], kv[1]); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
			written.Add(benchBatch)
		}
	})
	reportFindings(b, int64(written.Load()))
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
