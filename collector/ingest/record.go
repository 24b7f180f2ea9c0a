package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol/binenc"
)

// Stored layout.
//
// Since format 2, a finding is stored once, in its log entry, in a small
// binary encoding (encodeRecord), which format 4 keeps for each finding
// of a block. Format 2 wrote one log entry per finding:
//
//	log/<seq>           2, then the finding (encodeRecord)
//	finding/<id>        2, then <seq>: the idempotency key, and lookup by id
//	fidx/.../<seq>      empty: the log entry is found by the <seq> in the key
//
// Since format 4 (block.go) the log holds blocks of many findings and
// the finding key names the block and the incident; since format 3
// (posting.go) the agent and severity indexes are postings of many
// positions. The incident index, written one finding at a time, stays as
// above.
//
// Format 1, written before, kept the finding as JSON under its id and
// pointed to it from the log and the indexes:
//
//	finding/<id>        JSON record (with "seq")
//	log/<seq>, fidx/... the finding id
//
// All are read; nothing is rewritten in bulk. Attach, the only change
// ever made to a stored finding, writes its key in format 4 (and a
// format 1 finding's record into its log entry). The first byte tells
// the values apart: a format 1 log or index value is a UUID string and a
// format 1 finding value a JSON object, neither of which starts with 2,
// 3 or 4.
const format2 = 2

// recordV1 is a finding as format 1 stored it, with its log position.
type recordV1 struct {
	Finding
	Seq uint64 `json:"seq"`
}

// encodeRecord appends the format 2 encoding of f to b: the format byte,
// then each field in a fixed order, strings and byte slices prefixed by
// their length, lists by their count, times as seconds and nanoseconds
// since the epoch (UTC), all as varints (the pieces are binenc's).
func encodeRecord(b []byte, f *Finding) []byte {
	b = append(b, format2)
	for _, s := range []string{f.ID, f.AgentID, f.Hostname, f.Rule.ID, f.Rule.Name, f.Rule.Version, f.Rule.Author, f.Rule.License, f.Severity, f.Summary, f.IncidentID} {
		b = binenc.AppendString(b, s)
	}
	for _, l := range [][]string{f.Rule.References, f.Attack.Tactics, f.Attack.Techniques} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = binenc.AppendString(b, s)
		}
	}
	b = binenc.AppendBytes(b, f.Evidence)
	for _, t := range []time.Time{f.ObservedAt, f.DetectedAt, f.ReceivedAt} {
		b = binenc.AppendUTC(b, t)
	}
	if f.Drill {
		return append(b, 1)
	}
	return append(b, 0)
}

// recordSize is about the length of f's encoding, to size the buffer once.
func recordSize(f *Finding) int {
	n := 64 + len(f.ID) + len(f.AgentID) + len(f.Hostname) + len(f.Rule.ID) + len(f.Rule.Name) + len(f.Rule.Version) +
		len(f.Rule.Author) + len(f.Rule.License) + len(f.Severity) + len(f.Summary) + len(f.IncidentID) + len(f.Evidence)
	for _, l := range [][]string{f.Rule.References, f.Attack.Tactics, f.Attack.Techniques} {
		for _, s := range l {
			n += len(s) + 2
		}
	}
	return n
}

// errCorrupt is wrapped by every decoding error of a stored record.
var errCorrupt = errors.New("corrupt stored finding")

// decodeRecord decodes what encodeRecord encoded, copying everything out
// of b (badger owns it).
func decodeRecord(b []byte) (*Finding, error) {
	d := binenc.NewDecoder(b, errCorrupt)
	if v := d.Byte(); d.Err() == nil && v != format2 {
		d.Fail("format %d, want %d", v, format2)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	f := new(Finding)
	for i, s := range []*string{&f.ID, &f.AgentID, &f.Hostname, &f.Rule.ID, &f.Rule.Name, &f.Rule.Version, &f.Rule.Author, &f.Rule.License, &f.Severity, &f.Summary, &f.IncidentID} {
		d.Part(recordStrings[i])
		*s = d.Str()
	}
	for i, l := range []*[]string{&f.Rule.References, &f.Attack.Tactics, &f.Attack.Techniques} {
		d.Part(recordLists[i])
		n := d.Count(1)
		*l = make([]string, 0, n)
		for range n {
			*l = append(*l, d.Str())
		}
	}
	d.Part("evidence")
	if ev := d.Bytes(); len(ev) > 0 {
		f.Evidence = json.RawMessage(append([]byte(nil), ev...))
	}
	for i, t := range []*time.Time{&f.ObservedAt, &f.DetectedAt, &f.ReceivedAt} {
		d.Part(recordTimes[i])
		*t = d.UTC()
	}
	d.Part("drill")
	switch d.Byte() {
	case 0:
	case 1:
		f.Drill = true
	default:
		d.Fail("flag not 0 or 1")
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return f, nil
}

// The names of a record's fields, in the order encodeRecord writes them,
// for decoding errors.
var (
	recordStrings = [...]string{"id", "agent_id", "hostname", "rule.id", "rule.name", "rule.version", "rule.author", "rule.license", "severity", "summary", "incident_id"}
	recordLists   = [...]string{"rule.references", "attack.tactics", "attack.techniques"}
	recordTimes   = [...]string{"observed_at", "detected_at", "received_at"}
)

// stored is a finding read back, with its log position, the first
// position of its block and the format of its key.
type stored struct {
	*Finding
	Seq, First uint64
	Format     int
}

// loadRef reads the key of finding id: where it is stored and the
// incident recorded there (formats 2 and 4), or, for a format 1 finding,
// only its format. A missing finding is store.ErrNotFound.
func loadRef(txn *badger.Txn, id string) (ref, error) {
	item, err := txn.Get(findingKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ref{}, store.ErrNotFound
	}
	if err != nil {
		return ref{}, fmt.Errorf("reading finding %s: %w", id, err)
	}
	rf := ref{format: 1}
	err = item.Value(func(val []byte) error {
		if r, ok := parseRef(val); ok {
			rf = r
		}
		return nil
	})
	if err != nil {
		return ref{}, fmt.Errorf("reading finding %s: %w", id, err)
	}
	return rf, nil
}

// loadByID reads the finding stored under id, in any format. A missing
// finding is store.ErrNotFound.
func loadByID(txn *badger.Txn, id string) (stored, error) {
	rf, err := loadRef(txn, id)
	if err != nil {
		return stored{}, err
	}
	if rf.format == 1 {
		var v1 recordV1
		if err := store.Get(txn, findingKey(id), &v1); err != nil {
			return stored{}, fmt.Errorf("reading finding %s: %w", id, err)
		}
		return stored{Finding: &v1.Finding, Seq: v1.Seq, First: v1.Seq, Format: 1}, nil
	}
	lr := newLogReader(txn)
	defer lr.Close()
	e, err := lr.entry(rf.seq, rf.first, true)
	if err != nil {
		return stored{}, fmt.Errorf("finding %s: %w", id, err)
	}
	f, err := decodeRecord(e.val)
	if err != nil {
		return stored{}, fmt.Errorf("log entry %d of finding %s: %w", rf.seq, id, err)
	}
	if rf.incidentID != "" {
		f.IncidentID = rf.incidentID
	}
	return stored{Finding: f, Seq: rf.seq, First: rf.first, Format: rf.format}, nil
}

// logValue decodes the value of log position seq: the finding itself
// (format 2) or its id (format 1).
func logValue(txn *badger.Txn, seq uint64, val []byte) (*Finding, error) {
	if len(val) > 0 && val[0] == format2 {
		f, err := decodeRecord(val)
		if err != nil {
			return nil, fmt.Errorf("log entry %d: %w", seq, err)
		}
		return f, nil
	}
	id := string(val)
	r, err := loadByID(txn, id)
	if err != nil {
		return nil, fmt.Errorf("finding %s of log entry %d: %w", id, seq, err)
	}
	if r.Format != 1 {
		return nil, fmt.Errorf("log entry %d names finding %s, stored at %d", seq, id, r.Seq)
	}
	return r.Finding, nil
}
