package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// build runs seqs, ascending, through a postings builder for one index
// and returns its entries: first position and value.
func build(seqs []uint64) (firsts []uint64, vals [][]byte) {
	var ps postings
	prefix := agentIndex("a1")
	for _, s := range seqs {
		ps.add(prefix, s)
	}
	for _, p := range append(ps.done, ps.open[string(prefix)]) {
		key, val := p.entry()
		first, err := store.ParseU64(key[len(prefix):])
		if err != nil {
			panic(err)
		}
		firsts = append(firsts, first)
		vals = append(vals, val)
	}
	return firsts, vals
}

func expand(t testing.TB, firsts []uint64, vals [][]byte) []uint64 {
	t.Helper()
	var seqs []uint64
	for i, first := range firsts {
		runs, err := decodePosting(nil, first, vals[i])
		if err != nil {
			t.Fatalf("posting %d (%x): %v", first, vals[i], err)
		}
		for _, r := range runs {
			for s := r.start; ; s++ {
				seqs = append(seqs, s)
				if s == r.last {
					break
				}
			}
		}
	}
	return seqs
}

func TestPostingRoundTrip(t *testing.T) {
	every := func(n, step uint64) []uint64 {
		var s []uint64
		for i := range n {
			s = append(s, 10+i*step)
		}
		return s
	}
	tests := []struct {
		name     string
		seqs     []uint64
		postings int
		val      string // hex of the first value, when checked
	}{
		{"one position", []uint64{7}, 1, ""},
		{"one run", []uint64{7, 8, 9}, 1, "0302"},
		{"two runs", []uint64{7, 8, 12}, 1, "03010300"},
		{"gaps of one", []uint64{1, 3, 5}, 1, "030001000100"},
		{"maxRuns runs", every(maxRuns, 2), 1, ""},
		{"one run more", every(maxRuns+1, 2), 2, ""},
		{"long runs stay one posting", every(10*maxRuns, 1), 1, ""},
		{"many runs", every(5*maxRuns, 3), 5, ""},
		{"big gaps", []uint64{1, 1 << 20, 1 << 40, math.MaxUint64 - 1, math.MaxUint64}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firsts, vals := build(tt.seqs)
			if len(firsts) != tt.postings {
				t.Errorf("%d postings, want %d", len(firsts), tt.postings)
			}
			if tt.val != "" && fmt.Sprintf("%x", vals[0]) != tt.val {
				t.Errorf("value %x, want %s", vals[0], tt.val)
			}
			for i, v := range vals {
				if len(v) >= 1<<10 {
					t.Errorf("posting %d is %d bytes, not under badger's value threshold", i, len(v))
				}
				if i > 0 && firsts[i] <= firsts[i-1] {
					t.Errorf("posting keys %d then %d", firsts[i-1], firsts[i])
				}
			}
			if got := expand(t, firsts, vals); !slices.Equal(got, tt.seqs) {
				t.Errorf("positions %v, want %v", got, tt.seqs)
			}
		})
	}
}

func TestDecodePostingRefuses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first uint64
		val   []byte
	}{
		{"no first run", 1, []byte{formatPosting}},
		{"truncated uvarint", 1, []byte{formatPosting, 0x80}},
		{"gap without length", 1, []byte{formatPosting, 0, 4}},
		{"first run past the end", math.MaxUint64 - 1, []byte{formatPosting, 5}},
		{"gap past the end", math.MaxUint64 - 10, []byte{formatPosting, 0, 20, 0}},
		{"a run after the last position", math.MaxUint64 - 3, []byte{formatPosting, 3, 0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if runs, err := decodePosting(nil, tt.first, tt.val); !errors.Is(err, errPosting) {
				t.Errorf("decoded %v, %v; want a malformed posting", runs, err)
			}
		})
	}
	// An empty value and a format 1 finding id name the key's position.
	for _, val := range [][]byte{nil, []byte("01938a4e-0000-7000-8000-000000000001")} {
		if runs, err := decodePosting(nil, 9, val); err != nil || len(runs) != 1 || runs[0] != (run{9, 9}) {
			t.Errorf("value %q: %v, %v", val, runs, err)
		}
	}
}

func FuzzDecodePosting(f *testing.F) {
	for _, seqs := range [][]uint64{{1}, {1, 2, 3}, {5, 9, 10, 300}} {
		firsts, vals := build(seqs)
		f.Add(firsts[0], vals[0])
	}
	f.Add(uint64(math.MaxUint64), []byte{formatPosting, 1})
	f.Fuzz(func(t *testing.T, first uint64, val []byte) {
		runs, err := decodePosting(nil, first, val)
		if err != nil {
			if !errors.Is(err, errPosting) {
				t.Fatalf("error %v is not a malformed posting", err)
			}
			return
		}
		prev := first
		for i, r := range runs {
			if r.last < r.start || (i == 0 && r.start != first) || (i > 0 && r.start <= prev) {
				t.Fatalf("runs %v out of order", runs)
			}
			prev = r.last
		}
	})
}

// TestListPostings lists findings written by big batches, several
// postings per index, page by page, and checks each page against the
// log itself.
func TestListPostings(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	defer db.Close()
	s := newStore(t, db)
	sevs := []string{"high", "low", "high", "critical", "high", "medium", "low"}
	for round := range 3 {
		for _, agent := range []string{"a1", "a2"} {
			var fs []*protocol.Finding
			for i := range 300 + round {
				fs = append(fs, finding(sevs[(i*(round+1))%len(sevs)]))
			}
			if _, _, err := s.Append(ctx, agent, fs); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The keys: fewer postings than findings, more than one per index.
	keys := map[string]int{}
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = store.Prefix("fidx")
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			keys[string(k[:len(k)-8])]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each Append of 300 commits in two chunks (maxChunk), each its own
	// group; "high" comes every other finding in the first round, more
	// runs than one posting holds.
	if n := keys[string(agentIndex("a1"))]; n != 6 {
		t.Errorf("agent a1 has %d index entries, want 6 (one per chunk)", n)
	}
	if n := keys[string(severityIndex("high"))]; n <= 12 || n > 30 {
		t.Errorf("severity high has %d index entries, want 13 to 30 (more than one per group, far fewer than findings)", n)
	}

	recs, _, err := s.Read(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{
		{Agent: "a1"},
		{Agent: "a2", Severity: "low"},
		{Severity: "high"},
		{Severity: "critical"},
		{},
	} {
		var want []string
		for i := len(recs) - 1; i >= 0; i-- {
			f := recs[i].Finding
			if (q.Agent == "" || f.AgentID == q.Agent) && (q.Severity == "" || f.Severity == q.Severity) {
				want = append(want, f.ID)
			}
		}
		for _, limit := range []int{1, 7, 64, 1000} {
			q := q
			q.Limit = limit
			var got []string
			for pages := 0; ; pages++ {
				page, next, err := s.List(ctx, q)
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				if len(page) > limit {
					t.Fatalf("%+v: page of %d", q, len(page))
				}
				for _, f := range page {
					got = append(got, f.ID)
				}
				if next == "" {
					break
				}
				if pages > len(want) {
					t.Fatalf("%+v: more pages than findings", q)
				}
				q.Cursor = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v, limit %d: %d findings listed, want %d, or in another order", q, limit, len(got), len(want))
			}
		}
	}
	for _, cursor := range []string{"!", "AAAA", "AAAAAAAAAAAAAAA"} {
		if _, _, err := s.List(ctx, Query{Agent: "a1", Page: store.Page{Cursor: cursor}}); err == nil {
			t.Errorf("cursor %q accepted", cursor)
		}
	}
}
