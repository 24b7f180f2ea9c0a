package ingest

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Log blocks.
//
// Since format 4, a commit group's findings are stored in blocks: one
// log entry holds the records of up to blockBytes of consecutive log
// positions, under the first of them, and each finding's key says which
// block holds it.
//
//	log/<first seq>  4, then per finding: the uvarint gap since the
//	                 previous position (0 for the first), the uvarint
//	                 length of its record, the record (format 2)
//	finding/<id>     4, <seq>, <first seq of its block>, then the id of
//	                 the incident it is attached to (none at first)
//
// A block of one finding is written as a format 2 record under its own
// position, which a format 4 finding key then names as its own block.
//
// A block is above badger's value threshold, so badger keeps it in its
// value log, written once, with only a pointer in the LSM tree; a
// finding stored alone (280 bytes here) is copied through the write-ahead
// log, the memtable, the level 0 table and every compaction after. With
// the postings, that took the CPU time per stored finding from 24 to 9 µs
// here (docs/benchmarks.md). A block is never rewritten: Attach records
// the incident in the finding's key.
const (
	formatBlock = 4
	formatRef4  = 4
	// blockBytes bounds the records of one block: a read of one finding
	// reads its whole block.
	blockBytes = 64 << 10
)

// ref4 is the value of finding/<id> in format 4.
func ref4(seq, first uint64, incidentID string) []byte {
	b := make([]byte, 17, 17+len(incidentID))
	b[0] = formatRef4
	binary.BigEndian.PutUint64(b[1:], seq)
	binary.BigEndian.PutUint64(b[9:], first)
	return append(b, incidentID...)
}

// ref is a finding key's value decoded: where the finding is, and the
// incident Attach recorded there.
type ref struct {
	seq, first uint64
	incidentID string
	format     int
}

// parseRef decodes a format 2 or 4 finding key value; ok is false for
// anything else (format 1 JSON).
func parseRef(val []byte) (r ref, ok bool) {
	switch {
	case len(val) == 9 && val[0] == format2:
		seq := binary.BigEndian.Uint64(val[1:])
		return ref{seq: seq, first: seq, format: format2}, true
	case len(val) >= 17 && val[0] == formatRef4:
		return ref{
			seq:        binary.BigEndian.Uint64(val[1:]),
			first:      binary.BigEndian.Uint64(val[9:]),
			incidentID: string(val[17:]),
			format:     formatRef4,
		}, true
	}
	return ref{}, false
}

// blockBuilder gathers the records of one block.
type blockBuilder struct {
	first, last uint64
	n           int
	one         []byte // the first record, written alone in a block of one
	val         []byte
}

// add appends the record of seq, greater than the last one added.
func (b *blockBuilder) add(seq uint64, rec []byte) {
	if b.n == 0 {
		b.first, b.last, b.one = seq, seq, rec
		b.val = append(make([]byte, 0, 4<<10), formatBlock)
	}
	b.val = binary.AppendUvarint(b.val, seq-b.last)
	b.val = binary.AppendUvarint(b.val, uint64(len(rec)))
	b.val = append(b.val, rec...)
	b.last = seq
	b.n++
}

func (b *blockBuilder) full() bool { return len(b.val) >= blockBytes }

// flush writes the block into txn, if it holds anything, and starts the
// next one.
func (b *blockBuilder) flush(txn *badger.Txn) error {
	first, val := b.first, b.val
	switch b.n {
	case 0:
		return nil
	case 1:
		val = b.one
	}
	*b = blockBuilder{}
	return txn.Set(logKey(first), val)
}

// logEntry is one finding of a log entry: its position and its value
// there (a format 2 record, or a format 1 finding id).
type logEntry struct {
	seq uint64
	val []byte
}

var errBlock = errors.New("malformed log block")

// decodeLog appends to dst the findings of the log entry whose key holds
// first and whose value is val: a block, or one finding. The values
// returned point into val.
func decodeLog(dst []logEntry, first uint64, val []byte) ([]logEntry, error) {
	if len(val) == 0 || val[0] != formatBlock {
		return append(dst, logEntry{first, val}), nil
	}
	b := val[1:]
	seq, n := first, 0
	for len(b) > 0 {
		gap, k := binary.Uvarint(b)
		if k <= 0 || (n == 0 && gap != 0) || (n > 0 && gap == 0) || gap > math.MaxUint64-seq {
			return dst, fmt.Errorf("%w: position of finding %d after %d", errBlock, n+1, seq)
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return dst, fmt.Errorf("%w: length of finding %d at %d", errBlock, n+1, seq+gap)
		}
		seq += gap
		dst = append(dst, logEntry{seq, b[k : k+int(size)]})
		b = b[k+int(size):]
		n++
	}
	if n == 0 {
		return dst, fmt.Errorf("%w: empty block at %d", errBlock, first)
	}
	return dst, nil
}

// findEntry returns the entry of seq in es, ascending.
func findEntry(es []logEntry, seq uint64) (logEntry, bool) {
	i, ok := slices.BinarySearchFunc(es, seq, func(e logEntry, seq uint64) int { return cmp.Compare(e.seq, seq) })
	if !ok {
		return logEntry{}, false
	}
	return es[i], true
}

// logReader reads findings by log position inside one transaction,
// keeping the last log entry it read, since listings read the findings
// of one block one after another.
type logReader struct {
	txn *badger.Txn
	it  *badger.Iterator // reverse, over log/, made when first needed

	first, last uint64
	val         []byte
	entries     []logEntry
}

func newLogReader(txn *badger.Txn) *logReader { return &logReader{txn: txn} }

// Close releases the iterator. It must be called before the transaction
// opens another (badger allows one per read-write transaction).
func (lr *logReader) Close() {
	if lr.it != nil {
		lr.it.Close()
		lr.it = nil
	}
}

// keep reads the log entry under first and keeps it decoded.
func (lr *logReader) keep(first uint64, item *badger.Item) error {
	val, err := item.ValueCopy(lr.val[:0])
	if err != nil {
		return fmt.Errorf("reading log entry %d: %w", first, err)
	}
	es, err := decodeLog(lr.entries[:0], first, val)
	if err != nil {
		lr.entries = lr.entries[:0]
		return fmt.Errorf("log entry %d: %w", first, err)
	}
	lr.val, lr.entries, lr.first, lr.last = val, es, first, es[len(es)-1].seq
	return nil
}

// entry returns the value of position seq, in the log entry under first
// when first is known (from a finding's key), else in the log entry at or
// before seq.
func (lr *logReader) entry(seq, first uint64, firstKnown bool) (logEntry, error) {
	if len(lr.entries) > 0 && lr.first <= seq && seq <= lr.last && (!firstKnown || first == lr.first) {
		if e, ok := findEntry(lr.entries, seq); ok {
			return e, nil
		}
		return logEntry{}, fmt.Errorf("log entry %d: %w", seq, store.ErrNotFound)
	}
	if firstKnown {
		item, err := lr.txn.Get(logKey(first))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return logEntry{}, fmt.Errorf("log entry %d (block %d): %w", seq, first, store.ErrNotFound)
		}
		if err != nil {
			return logEntry{}, fmt.Errorf("reading log entry %d: %w", first, err)
		}
		if err := lr.keep(first, item); err != nil {
			return logEntry{}, err
		}
	} else {
		if lr.it == nil {
			lr.it = store.ReverseIterator(lr.txn, logPrefix)
		}
		lr.it.Seek(logKey(seq))
		if !lr.it.Valid() {
			return logEntry{}, fmt.Errorf("log entry %d: %w", seq, store.ErrNotFound)
		}
		item := lr.it.Item()
		first, err := store.ParseU64(item.Key()[len(logPrefix):])
		if err != nil {
			return logEntry{}, fmt.Errorf("log entry %q: %w", item.Key(), err)
		}
		if err := lr.keep(first, item); err != nil {
			return logEntry{}, err
		}
	}
	if e, ok := findEntry(lr.entries, seq); ok {
		return e, nil
	}
	return logEntry{}, fmt.Errorf("log entry %d: %w", seq, store.ErrNotFound)
}

// finding returns the finding at position seq, with the incident it is
// attached to. first is the first position of its block, when known.
func (lr *logReader) finding(seq, first uint64, firstKnown bool) (*Finding, error) {
	e, err := lr.entry(seq, first, firstKnown)
	if err != nil {
		return nil, err
	}
	return logFinding(lr.txn, e)
}

// logFinding decodes the finding of log entry e (logValue) and sets the
// incident it is attached to, which Attach records in the finding's key
// since format 4 (before, it rewrote the record).
func logFinding(txn *badger.Txn, e logEntry) (*Finding, error) {
	f, err := logValue(txn, e.seq, e.val)
	if err != nil || f.IncidentID != "" {
		return f, err
	}
	rf, err := loadRef(txn, f.ID)
	if err != nil {
		return nil, fmt.Errorf("finding %s of log entry %d: %w", f.ID, e.seq, err)
	}
	f.IncidentID = rf.incidentID
	return f, nil
}
