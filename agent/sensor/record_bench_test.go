package sensor

import (
	"testing"
	"time"
)

// BenchmarkHandleRecord measures what the sensor does in user space for
// one short-lived process in the ebpf mode: its fork, exec and exit
// records parsed and turned into events, under a shell whose ancestry
// the cache knows (three levels).
func BenchmarkHandleRecord(b *testing.B) {
	p := NewProcess(Options{NoEBPF: true})
	p.users.lookup = func(uid string) (string, error) { return "root", nil }
	p.bootID = "b00t"
	p.boot = time.Unix(1_700_000_000, 0)
	wall := func(ns uint64) time.Time { return p.boot.Add(time.Duration(ns)) }
	for pid, ppid := range map[int]int{1: 0, 100: 1, 200: 100} {
		p.cache.put(&proc{pid: pid, ppid: ppid, entityID: "e", exe: "/bin/sh", name: "sh", cmdline: "sh -c loop", image: true})
	}
	fork := shortRec(recordFork, 300, 200, 0)
	exec := execRec(300, 200, 0, 12_340_000_000, 0, "/usr/bin/true", "/root", []byte("/bin/true\x00cordon-storm-1-0-12345\x00"))
	exit := shortRec(recordExit, 300, 200, 0)
	var r kernelRecord
	events := 0
	for b.Loop() {
		for _, rec := range [][]byte{fork, exec, exit} {
			if err := parseRecord(rec, &r); err != nil {
				b.Fatal(err)
			}
			if _, ok := p.handleRecord(&r, wall); ok {
				events++
			}
		}
	}
	if events != 2*b.N {
		b.Fatalf("%d events for %d processes, want a start and an end each", events, b.N)
	}
}

// BenchmarkLineage measures what the file and network sensors pay per
// event for a process's parent and ancestry: a writer that exited, under
// a shell that exited too, below two live levels. The lookup of the
// writer itself, which every such event already made, is the baseline.
func BenchmarkLineage(b *testing.B) {
	p := NewProcess(Options{NoEBPF: true})
	for pid, ppid := range map[int]int{1: 0, 100: 1, 200: 100, 300: 200} {
		p.cache.put(&proc{pid: pid, ppid: ppid, entityID: "e", exe: "/bin/sh", name: "sh", cmdline: "sh -c loop", image: true})
	}
	p.cache.remove(300)
	p.cache.remove(200)
	b.Run("lookup", func(b *testing.B) {
		for b.Loop() {
			if _, ok := p.Lookup(300); !ok {
				b.Fatal("Lookup(300) found nothing")
			}
		}
	})
	b.Run("lineage", func(b *testing.B) {
		for b.Loop() {
			if l, ok := p.Lineage(300); !ok || len(l) != 3 {
				b.Fatalf("Lineage(300) = %+v, %v; want three ancestors", l, ok)
			}
		}
	})
}
