package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// Postings.
//
// Since format 3, Append writes the agent and severity indexes as
// postings: one key per index and commit group, holding every log
// position of the group under that index, instead of one key per finding.
// A group commits a few thousand findings under load, most of them from a
// few agents with a few severities, so this writes two keys per finding
// fewer, and a key costs badger about as much as the bytes of a finding
// (write-ahead log, memtable, tables, compactions).
//
//	fidx/<index>/<first seq>   3, then runs of log positions
//
// The key holds the first position. The value is the format byte, the
// length of the first run (less one), then for each further run the gap
// since the last position of the previous one (less one) and its length
// (less one), all uvarints. An empty value (format 2, and the incident
// index still) or a format 1 finding id names the position in the key
// alone. The positions of one posting all come after its key's and before
// the key of the next posting of the same index, so a listing walks the
// keys backwards and each posting's positions backwards, newest first.
const formatPosting = 3

// maxRuns bounds the runs of one posting, so its value stays well under
// badger's value threshold (1 KiB), in the LSM tree with the key: at most
// 1 + maxRuns*2 uvarints of a commit group's positions.
const maxRuns = 64

// maxRunLen bounds the length of a run: a commit group holds no more
// positions than that, and a listing expands each run.
const maxRunLen = groupChunks * maxChunk

// run is the log positions start..last.
type run struct{ start, last uint64 }

// posting is the index entry being built for one index in one commit
// group.
type posting struct {
	prefix []byte
	first  uint64
	cur    run // the open run
	runs   int // runs so far, the open one included
	val    []byte
}

// add appends seq, greater than every position added before, and reports
// false when the posting is full and seq must start a new one.
func (p *posting) add(seq uint64) bool {
	if seq == p.cur.last+1 {
		p.cur.last = seq
		return true
	}
	if p.runs == maxRuns {
		return false
	}
	p.val = binary.AppendUvarint(p.val, p.cur.last-p.cur.start)
	p.val = binary.AppendUvarint(p.val, seq-p.cur.last-1)
	p.cur = run{seq, seq}
	p.runs++
	return true
}

// entry returns the posting's key and value.
func (p *posting) entry() (key, val []byte) {
	key = indexKey(p.prefix, p.first)
	if p.runs == 1 && p.cur.start == p.cur.last {
		return key, nil
	}
	return key, binary.AppendUvarint(p.val, p.cur.last-p.cur.start)
}

// postings builds the index entries of one commit group.
type postings struct {
	open map[string]*posting
	done []*posting
}

func (ps *postings) add(prefix []byte, seq uint64) {
	p := ps.open[string(prefix)]
	if p != nil && p.add(seq) {
		return
	}
	if p != nil {
		ps.done = append(ps.done, p)
	}
	if ps.open == nil {
		ps.open = make(map[string]*posting)
	}
	ps.open[string(prefix)] = &posting{
		prefix: prefix,
		first:  seq,
		cur:    run{seq, seq},
		runs:   1,
		val:    append(make([]byte, 0, 16), formatPosting),
	}
}

// set writes every posting into txn.
func (ps *postings) set(txn *badger.Txn) error {
	for _, p := range ps.done {
		if err := txn.Set(p.entry()); err != nil {
			return err
		}
	}
	for _, p := range ps.open {
		if err := txn.Set(p.entry()); err != nil {
			return err
		}
	}
	return nil
}

var errPosting = errors.New("malformed posting")

// decodePosting returns the runs of the index entry whose key holds first
// and whose value is val, appended to runs.
func decodePosting(runs []run, first uint64, val []byte) ([]run, error) {
	if len(val) == 0 || val[0] != formatPosting {
		return append(runs, run{first, first}), nil
	}
	val = val[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(val)
		if n <= 0 {
			return 0, false
		}
		val = val[n:]
		return v, true
	}
	n, ok := next()
	if !ok || n >= maxRunLen || n > math.MaxUint64-first {
		return runs, fmt.Errorf("%w: first run at %d", errPosting, first)
	}
	r := run{first, first + n}
	runs = append(runs, r)
	for len(val) > 0 {
		gap, ok1 := next()
		n, ok2 := next()
		room := math.MaxUint64 - r.last // positions left after the previous run
		if !ok1 || !ok2 || n >= maxRunLen || room == 0 || gap > room-1 || n > room-1-gap {
			return runs, fmt.Errorf("%w: run %d after %d", errPosting, len(runs)+1, r.last)
		}
		start := r.last + 1 + gap
		r = run{start, start + n}
		runs = append(runs, r)
	}
	return runs, nil
}

// expandPosting is decodePosting for newest: each position of the
// posting, holding nothing.
func expandPosting(dst []logEntry, first uint64, val []byte) ([]logEntry, error) {
	var buf [8]run
	runs, err := decodePosting(buf[:0], first, val)
	if err != nil {
		return dst, err
	}
	for _, r := range runs {
		for seq := r.start; ; seq++ {
			dst = append(dst, logEntry{seq: seq})
			if seq == r.last {
				break
			}
		}
	}
	return dst, nil
}
