package spool

import (
	"runtime"
	"testing"
)

// heapAlloc is the live heap after two collections.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkOpenDBHeap reports the Go heap an open, empty spool database
// holds (memtable arena, caches, badger's own tables), which the agent
// carries for its whole life.
func BenchmarkOpenDBHeap(b *testing.B) {
	var sum uint64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		before := heapAlloc()
		db, err := OpenDB(dir)
		if err != nil {
			b.Fatal(err)
		}
		after := heapAlloc()
		sum += after - before
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(sum)/float64(b.N)/(1<<20), "heap_MiB")
}
