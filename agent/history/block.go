package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/protocol/binenc"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Events are stored in blocks: the events of one write that fall within
// blockSpan of the block's first, up to blockEvents of them and about
// blockBytes. A block is one record of a segment (segment.go); the older
// badger history held one per entry (legacy.go). Block value:
//
//	"cb" 1                                          magic and version
//	uvarint n, n × (uvarint len, index key prefix,  the block's index
//	               uvarint len of that entry's value) entries (only in the
//	                                                badger history, for its
//	                                                sweeper; n is 0 in
//	                                                segments)
//	uvarint m, m × (time(8), uvarint len, event)    the events, in time order
//	                                                (codec.go)
var blockMagic = []byte{'c', 'b', 1}

const (
	blockSpan   = time.Second
	blockEvents = 512
	blockBytes  = 256 << 10
)

// blockIndex is one index entry of a block being built.
type blockIndex struct {
	prefix []byte // the index key: code value 0x00
	pos    []byte // uvarint positions
}

// blockWriter builds blocks, reusing its buffers from one to the next.
type blockWriter struct {
	events  bytes.Buffer // the events' section
	scratch []byte       // one event's binary form
	key     []byte       // an index key prefix being looked up
	first   time.Time
	n       int
	index   []blockIndex
	byValue map[string]int // index key → position in index
}

func newBlockWriter() *blockWriter {
	return &blockWriter{byValue: map[string]int{}}
}

func (w *blockWriter) reset() {
	w.events.Reset()
	w.n = 0
	w.index = w.index[:0]
	clear(w.byValue)
}

// full reports whether an event at t would not belong in the block.
func (w *blockWriter) full(t time.Time) bool {
	return w.n > 0 && (w.n >= blockEvents || w.events.Len() >= blockBytes || t.Sub(w.first) >= blockSpan)
}

// add appends ev to the block.
func (w *blockWriter) add(ev *ecs.Event) {
	w.scratch = appendEvent(w.scratch[:0], ev)
	js := w.scratch
	var hdr [8 + binary.MaxVarintLen64]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(ev.Timestamp.UnixNano()))
	n := binary.PutUvarint(hdr[8:], uint64(len(js)))
	w.events.Write(hdr[:8+n])
	w.events.Write(js)
	if w.n == 0 {
		w.first = ev.Timestamp
	}
	forIndexed(ev, func(field, v string) {
		w.key = appendIndexKeyPrefix(w.key[:0], nil, field, v)
		i, ok := w.byValue[string(w.key)]
		if !ok {
			i = len(w.index)
			p := bytes.Clone(w.key)
			w.byValue[string(p)] = i
			w.index = append(w.index, blockIndex{prefix: p})
		}
		w.index[i].pos = binary.AppendUvarint(w.index[i].pos, uint64(w.n))
	})
	w.n++
}

// value appends the block's value, without an index section (the
// segment's index holds w.index), to v.
func (w *blockWriter) value(v []byte) []byte {
	v = append(v, blockMagic...)
	v = binary.AppendUvarint(v, 0)
	v = binary.AppendUvarint(v, uint64(w.n))
	return append(v, w.events.Bytes()...)
}

// block is a decoded block value: its index section and its events,
// not yet decoded.
type block struct {
	// index lists the block's index key prefixes and the length of each
	// entry's value.
	index []struct {
		prefix []byte
		size   int
	}
	// events holds each event's time and binary form, in the block's order.
	events []blockEvent
}

type blockEvent struct {
	time int64
	data []byte
}

var errBlock = errors.New("malformed history block")

// parseBlock decodes a block value; its slices point into v. wantEvents
// false skips the events' section.
func parseBlock(v []byte, wantEvents bool) (block, error) {
	var b block
	if !bytes.HasPrefix(v, blockMagic) {
		return b, fmt.Errorf("%w: unknown version", errBlock)
	}
	d := binenc.NewDecoder(v[len(blockMagic):], errBlock)
	d.Part("index")
	n := d.Count(2) // each entry takes at least its two lengths
	b.index = make([]struct {
		prefix []byte
		size   int
	}, 0, n)
	for i := range n {
		p, size := d.Bytes(), d.Uvarint()
		if size > 1<<30 {
			d.Fail("entry %d: size %d", i, size)
		}
		if err := d.Err(); err != nil {
			return b, err
		}
		b.index = append(b.index, struct {
			prefix []byte
			size   int
		}{p, int(size)})
	}
	if !wantEvents {
		return b, d.Err()
	}
	d.Part("events")
	m := d.Count(9) // each event takes at least its time and length
	b.events = make([]blockEvent, 0, m)
	for range m {
		t, data := int64(d.Uint64()), d.Bytes()
		if err := d.Err(); err != nil {
			return b, err
		}
		b.events = append(b.events, blockEvent{time: t, data: data})
	}
	return b, d.Finish()
}

// parsePositions decodes an index entry's value.
func parsePositions(v []byte) ([]int, error) {
	var out []int
	d := binenc.NewDecoder(v, errBlock)
	d.Part("positions")
	for d.Len() > 0 {
		p := d.Uvarint()
		if p > blockEvents*16 {
			d.Fail("position %d", p)
		}
		if err := d.Err(); err != nil {
			return nil, err
		}
		out = append(out, int(p))
	}
	return out, nil
}
