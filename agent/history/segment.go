package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cordon-edr/cordon/protocol/binenc"
)

// The history is a series of segment files, written in time order and
// deleted whole: the oldest when the store is over its size bound, any
// whose last event is older than the age bound. Nothing is rewritten, so
// the store needs no compaction and does nothing while no events come.
//
// A segment file, named by its sequence number in hex ("%016x.seg"):
//
//	header   "chseg" 0 0 1
//	records  each a block of events (block.go):
//	         len(4) crc(4) first(8) last(8) events(4) block value (len bytes)
//	         crc is the CRC-32C of what follows it in the record
//	footer   written when the segment is sealed:
//	         index   entries sorted by key: uvarint len, key,
//	                 uvarint len, refs; refs are, per block holding the key,
//	                 uvarint record offset, uvarint len, the positions in
//	                 the block (uvarints)
//	         dir     uvarint n, n × (uvarint len, first key of a chunk,
//	                 uvarint offset of the chunk from the index's start)
//	         trailer index start(8) dir start(8) first(8) last(8)
//	                 events(4) dir crc(4) crc of the trailer before it(4)
//	                 "cseg"
//
// The segment being written keeps its index in memory. One left without
// a footer (the agent was killed) is read up to its last whole record
// and sealed when the store opens; one whose footer could not be written
// (the disk was full) is scanned in place of an index lookup.
var (
	segMagic     = []byte("chseg\x00\x00\x01")
	trailerMagic = []byte("cseg")
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

const (
	recHeaderLen = 28
	trailerLen   = 48
	// dirChunk is about how many bytes of index entries one directory
	// entry covers: a lookup reads the directory and one chunk.
	dirChunk = 4 << 10
	// maxRecord bounds a record's value when reading (blocks are cut at
	// about blockBytes).
	maxRecord = 64 << 20
	// segIndexMax bounds the distinct index keys of the segment being
	// written, and so the memory its index takes.
	segIndexMax = 1 << 16
)

var (
	errSegment = errors.New("malformed history segment")
	// errChecksum is a record whose length is whole but whose content
	// does not match its CRC: what follows it can still be read.
	errChecksum = fmt.Errorf("%w: record checksum mismatch", errSegment)
)

// segment is one segment file as the store knows it.
type segment struct {
	seq         uint64
	path        string
	first, last int64 // Unix nanoseconds of the oldest and newest event
	events      int
	size        int64 // the file's size
	blocksEnd   int64 // the end of the records
	// dirStart is where the footer's directory starts; 0 when the
	// segment has no footer.
	dirStart int64

	// Of the segment being written only.
	f     *os.File
	index map[string][]byte
}

func segName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

// recHeader is a record's header.
type recHeader struct {
	size        int
	crc         uint32
	first, last int64
	events      int
}

func appendRecord(b []byte, first, last int64, events int, val []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(val)))
	crcAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	body := len(b)
	b = binary.BigEndian.AppendUint64(b, uint64(first))
	b = binary.BigEndian.AppendUint64(b, uint64(last))
	b = binary.BigEndian.AppendUint32(b, uint32(events))
	b = append(b, val...)
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[body:], castagnoli))
	return b
}

func parseRecHeader(h []byte) recHeader {
	return recHeader{
		size:   int(binary.BigEndian.Uint32(h)),
		crc:    binary.BigEndian.Uint32(h[4:]),
		first:  int64(binary.BigEndian.Uint64(h[8:])),
		last:   int64(binary.BigEndian.Uint64(h[16:])),
		events: int(binary.BigEndian.Uint32(h[24:])),
	}
}

// readRecord reads the record at off, checking its CRC, into buf (grown
// as needed); val points into buf.
func readRecord(r io.ReaderAt, off, end int64, buf []byte) (h recHeader, val, out []byte, err error) {
	if off+recHeaderLen > end {
		return h, nil, buf, fmt.Errorf("%w: record at %d: cut short", errSegment, off)
	}
	if cap(buf) < recHeaderLen {
		buf = make([]byte, recHeaderLen, 64<<10)
	}
	buf = buf[:recHeaderLen]
	if _, err := r.ReadAt(buf, off); err != nil {
		return h, nil, buf, fmt.Errorf("reading history record at %d: %w", off, err)
	}
	h = parseRecHeader(buf)
	if h.size > maxRecord || off+recHeaderLen+int64(h.size) > end {
		return h, nil, buf, fmt.Errorf("%w: record at %d: length %d past the end", errSegment, off, h.size)
	}
	n := recHeaderLen + h.size
	if cap(buf) < n {
		nb := make([]byte, n, max(n, 2*cap(buf)))
		copy(nb, buf[:recHeaderLen])
		buf = nb
	}
	buf = buf[:n]
	if _, err := r.ReadAt(buf[recHeaderLen:], off+recHeaderLen); err != nil {
		return h, nil, buf, fmt.Errorf("reading history record at %d: %w", off, err)
	}
	if crc32.Checksum(buf[8:], castagnoli) != h.crc {
		return h, nil, buf, fmt.Errorf("%w: record at %d", errChecksum, off)
	}
	return h, buf[recHeaderLen:], buf, nil
}

// trailer is a sealed segment's trailer.
type trailer struct {
	indexStart, dirStart int64
	first, last          int64
	events               int
	dirCRC               uint32
}

func appendTrailer(b []byte, t trailer) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, uint64(t.indexStart))
	b = binary.BigEndian.AppendUint64(b, uint64(t.dirStart))
	b = binary.BigEndian.AppendUint64(b, uint64(t.first))
	b = binary.BigEndian.AppendUint64(b, uint64(t.last))
	b = binary.BigEndian.AppendUint32(b, uint32(t.events))
	b = binary.BigEndian.AppendUint32(b, t.dirCRC)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return append(b, trailerMagic...)
}

// parseTrailer decodes the last trailerLen bytes of a segment of size.
func parseTrailer(b []byte, size int64) (trailer, error) {
	if len(b) != trailerLen || !bytes.Equal(b[44:], trailerMagic) {
		return trailer{}, fmt.Errorf("%w: no trailer", errSegment)
	}
	if crc32.Checksum(b[:40], castagnoli) != binary.BigEndian.Uint32(b[40:]) {
		return trailer{}, fmt.Errorf("%w: trailer checksum mismatch", errSegment)
	}
	t := trailer{
		indexStart: int64(binary.BigEndian.Uint64(b)),
		dirStart:   int64(binary.BigEndian.Uint64(b[8:])),
		first:      int64(binary.BigEndian.Uint64(b[16:])),
		last:       int64(binary.BigEndian.Uint64(b[24:])),
		events:     int(binary.BigEndian.Uint32(b[32:])),
		dirCRC:     binary.BigEndian.Uint32(b[36:]),
	}
	if t.indexStart < int64(len(segMagic)) || t.dirStart < t.indexStart || t.dirStart > size-trailerLen {
		return trailer{}, fmt.Errorf("%w: trailer offsets %d, %d in %d bytes", errSegment, t.indexStart, t.dirStart, size)
	}
	return t, nil
}

// appendFooter appends the footer of a segment whose records end at
// indexStart, with index, to b (which starts at file offset
// indexStart).
func appendFooter(b []byte, indexStart int64, index map[string][]byte, first, last int64, events int) ([]byte, trailer) {
	keys := make([]string, 0, len(index))
	for k := range index {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	type chunk struct {
		key string
		off int
	}
	var dir []chunk
	start := len(b)
	chunkAt := -dirChunk
	for _, k := range keys {
		if len(b)-start-chunkAt >= dirChunk {
			chunkAt = len(b) - start
			dir = append(dir, chunk{k, chunkAt})
		}
		b = binenc.AppendString(b, k)
		b = binenc.AppendBytes(b, index[k])
	}
	dirStart := indexStart + int64(len(b)-start)
	d := len(b)
	b = binary.AppendUvarint(b, uint64(len(dir)))
	for _, c := range dir {
		b = binenc.AppendString(b, c.key)
		b = binary.AppendUvarint(b, uint64(c.off))
	}
	tr := trailer{
		indexStart: indexStart, dirStart: dirStart, first: first, last: last, events: events,
		dirCRC: crc32.Checksum(b[d:], castagnoli),
	}
	return appendTrailer(b, tr), tr
}

// dirEntry is one chunk of a sealed segment's index.
type dirEntry struct {
	key string
	off int64 // from the file's start
}

// segDir is what a lookup in a sealed segment needs: its directory.
type segDir struct {
	entries []dirEntry
	end     int64 // the end of the index entries
}

// readDir reads the directory of sealed segment g from r.
func readDir(r io.ReaderAt, g *segment) (segDir, error) {
	var sd segDir
	t := make([]byte, trailerLen)
	if _, err := r.ReadAt(t, g.size-trailerLen); err != nil {
		return sd, fmt.Errorf("reading the trailer of history segment %s: %w", g.path, err)
	}
	tr, err := parseTrailer(t, g.size)
	if err != nil {
		return sd, err
	}
	raw := make([]byte, g.size-trailerLen-tr.dirStart)
	if _, err := r.ReadAt(raw, tr.dirStart); err != nil {
		return sd, fmt.Errorf("reading the index of history segment %s: %w", g.path, err)
	}
	if crc32.Checksum(raw, castagnoli) != tr.dirCRC {
		return sd, fmt.Errorf("%w: directory checksum mismatch", errSegment)
	}
	d := binenc.NewDecoder(raw, errSegment)
	d.Part("directory")
	n := d.Count(2)
	sd.entries = make([]dirEntry, 0, n)
	prev := int64(-1)
	for range n {
		k, off := d.Str(), d.Uvarint()
		if err := d.Err(); err != nil {
			return sd, err
		}
		o := tr.indexStart + int64(off)
		if off > uint64(tr.dirStart) || o <= prev || o > tr.dirStart {
			return sd, fmt.Errorf("%w: directory entry at %d out of order", errSegment, off)
		}
		prev = o
		sd.entries = append(sd.entries, dirEntry{k, o})
	}
	sd.end = tr.dirStart
	return sd, d.Finish()
}

// lookup returns the refs of key in a sealed segment, nil when it has
// none.
func (sd segDir) lookup(r io.ReaderAt, key string) ([]byte, error) {
	i := sort.Search(len(sd.entries), func(i int) bool { return sd.entries[i].key > key }) - 1
	if i < 0 {
		return nil, nil
	}
	end := sd.end
	if i+1 < len(sd.entries) {
		end = sd.entries[i+1].off
	}
	chunk := make([]byte, end-sd.entries[i].off)
	if _, err := r.ReadAt(chunk, sd.entries[i].off); err != nil {
		return nil, fmt.Errorf("reading a history index chunk: %w", err)
	}
	return findKey(chunk, key)
}

// findKey finds key among a chunk's sorted index entries.
func findKey(chunk []byte, key string) ([]byte, error) {
	d := binenc.NewDecoder(chunk, errSegment)
	d.Part("index")
	for d.Len() > 0 {
		k, refs := d.Bytes(), d.Bytes()
		if err := d.Err(); err != nil {
			return nil, err
		}
		switch c := strings.Compare(string(k), key); {
		case c == 0:
			return refs, nil
		case c > 0:
			return nil, nil
		}
	}
	return nil, nil
}

// ref is an event in a segment: its block's record offset and its
// position in the block.
type ref struct {
	off int64
	pos int
}

// appendRefs decodes refs and appends them to out.
func appendRefs(out []ref, refs []byte) ([]ref, error) {
	d := binenc.NewDecoder(refs, errSegment)
	d.Part("refs")
	for d.Len() > 0 {
		off, pos := d.Uvarint(), d.Bytes()
		if err := d.Err(); err != nil {
			return out, err
		}
		if off > 1<<62 {
			return out, fmt.Errorf("%w: offset %d", errSegment, off)
		}
		ps, err := parsePositions(pos)
		if err != nil {
			return out, err
		}
		for _, p := range ps {
			out = append(out, ref{int64(off), p})
		}
	}
	return out, nil
}

// appendRef appends a block's positions for one key to refs.
func appendRef(refs []byte, off int64, pos []byte) []byte {
	refs = binary.AppendUvarint(refs, uint64(off))
	return binenc.AppendBytes(refs, pos)
}

// scanRecords reads f's records from the header to end, calling fn with
// each and skipping those whose CRC does not match; it returns the end of
// the last whole record and the error that stopped it before end, if any.
func scanRecords(f io.ReaderAt, end int64, fn func(off int64, h recHeader, val []byte) error) (int64, error) {
	off := int64(len(segMagic))
	var buf []byte
	for off < end {
		h, val, b, err := readRecord(f, off, end, buf)
		buf = b
		if errors.Is(err, errChecksum) {
			off += recHeaderLen + int64(h.size)
			continue
		}
		if err != nil {
			return off, err
		}
		if err := fn(off, h, val); err != nil {
			return off, err
		}
		off += recHeaderLen + int64(h.size)
	}
	return off, nil
}

// listSegments returns the segment files of dir in sequence order.
// Whatever has a segment's name is listed, so that the writer never
// takes its number; openSegment refuses what is not a regular file.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing history segments: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		if seq, ok := parseSegName(e.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// openSegment reads a segment's trailer, or recovers and seals a segment
// that has none. It returns nil for a segment that holds no events (and
// removes its file).
func openSegment(dir string, seq uint64) (*segment, error) {
	g := &segment{seq: seq, path: filepath.Join(dir, segName(seq))}
	if fi, err := os.Lstat(g.path); err != nil {
		return nil, fmt.Errorf("opening history segment: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("opening history segment %s: not a regular file (%s)", g.path, fi.Mode().Type())
	}
	f, err := os.OpenFile(g.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening history segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening history segment: %w", err)
	}
	g.size = fi.Size()
	if g.size >= int64(len(segMagic))+trailerLen {
		t := make([]byte, trailerLen)
		if _, err := f.ReadAt(t, g.size-trailerLen); err != nil {
			return nil, fmt.Errorf("reading history segment %s: %w", g.path, err)
		}
		if tr, err := parseTrailer(t, g.size); err == nil {
			g.first, g.last, g.events = tr.first, tr.last, tr.events
			g.blocksEnd, g.dirStart = tr.indexStart, tr.dirStart
			return g, nil
		}
	}
	hdr := make([]byte, len(segMagic))
	if _, err := f.ReadAt(hdr, 0); err != nil || !bytes.Equal(hdr, segMagic) {
		// Not ours, or cut before its header: nothing to keep.
		return nil, removeEmpty(g)
	}
	// No footer: the writer was stopped. Keep the whole records, index
	// them and seal the segment.
	g.index = map[string][]byte{}
	end, err := scanRecords(f, g.size, func(off int64, h recHeader, val []byte) error {
		blk, err := parseBlock(val, true)
		if err != nil {
			return nil // whole but unreadable: skipped, as searches do
		}
		g.note(off, h, indexEvents(blk.events))
		return nil
	})
	if err != nil && !errors.Is(err, errSegment) {
		return nil, err
	}
	if g.events == 0 {
		return nil, removeEmpty(g)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("cutting history segment %s to its last whole record: %w", g.path, err)
	}
	g.size, g.blocksEnd = end, end
	if size, dirStart, err := writeFooter(f, g); err == nil {
		g.size, g.dirStart = size, dirStart
	}
	// Without a footer it is scanned instead.
	g.index = nil
	return g, nil
}

func removeEmpty(g *segment) error {
	if err := os.Remove(g.path); err != nil {
		return fmt.Errorf("removing empty history segment: %w", err)
	}
	return nil
}

// note counts a block written at off into the segment and adds its
// index entries (one per distinct indexed value, with the value's
// positions in the block) to the segment's index.
func (g *segment) note(off int64, h recHeader, index []blockIndex) {
	if g.events == 0 || h.first < g.first {
		g.first = h.first
	}
	if g.events == 0 || h.last > g.last {
		g.last = h.last
	}
	g.events += h.events
	for _, x := range index {
		g.index[string(x.prefix)] = appendRef(g.index[string(x.prefix)], off, x.pos)
	}
}

// indexEvents rebuilds the index entries of a block's events.
func indexEvents(evs []blockEvent) []blockIndex {
	var out []blockIndex
	at := map[string]int{}
	for i, be := range evs {
		ev, err := decodeEvent(be.data)
		if err != nil {
			continue
		}
		forIndexed(&ev, func(field, v string) {
			k := string(appendIndexKeyPrefix(nil, nil, field, v))
			j, ok := at[k]
			if !ok {
				j = len(out)
				at[k] = j
				out = append(out, blockIndex{prefix: []byte(k)})
			}
			out[j].pos = binary.AppendUvarint(out[j].pos, uint64(i))
		})
	}
	return out
}

// writeFooter writes g's footer after its records and returns the
// segment's size and where its directory starts. On an error the file is
// cut back to its records.
func writeFooter(f *os.File, g *segment) (size, dirStart int64, err error) {
	b, tr := appendFooter(make([]byte, 0, 64<<10), g.blocksEnd, g.index, g.first, g.last, g.events)
	if _, err := f.WriteAt(b, g.blocksEnd); err != nil {
		f.Truncate(g.blocksEnd)
		return 0, 0, fmt.Errorf("sealing history segment %s: %w", g.path, err)
	}
	return g.blocksEnd + int64(len(b)), tr.dirStart, nil
}
