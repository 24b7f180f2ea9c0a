package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Entry is one recorded API call.
type Entry struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// ActorID and Actor are the API key's id and name; Role its role.
	// A call refused for want of a valid key has actor "anonymous".
	ActorID string `json:"actor_id,omitempty"`
	Actor   string `json:"actor"`
	Role    string `json:"role,omitempty"`
	// Action names the call, such as "incident.update".
	Action string `json:"action"`
	// Target is the object acted on, such as an incident id, when known.
	Target string `json:"target,omitempty"`
	Source string `json:"source"`
	// Status is the HTTP status code of the answer; Outcome is
	// "success" for 2xx and "failure" otherwise.
	Status  int    `json:"status"`
	Outcome string `json:"outcome"`
	// Detail is a short human note, such as the error of a refused call.
	Detail string `json:"detail,omitempty"`
	// Prev is the Hash of the previous entry ("" for the first); Hash is
	// the hex SHA-256 of this entry with Hash empty.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// digest returns the hash an entry must carry: the SHA-256 of its JSON
// form with Hash empty. Field order is fixed by the struct, so the
// encoding is canonical.
func digest(e Entry) string {
	e.Hash = ""
	b, _ := json.Marshal(e) // an Entry always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

var headKey = store.Key("meta", "audit-head")

func entryKey(seq uint64) []byte { return store.Key("audit", store.U64(seq)) }

// Config configures a Log.
type Config struct {
	DB *badger.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Log is the audit trail.
type Log struct {
	db  *badger.DB
	now func() time.Time
	log *slog.Logger

	// mu serializes appends, so that each links to the one before.
	mu sync.Mutex
}

// New returns a Log over cfg.DB.
func New(cfg Config, log *slog.Logger) *Log {
	l := &Log{db: cfg.DB, now: cfg.Now, log: log}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Append records e, filling in Seq, At (when zero), Outcome, Prev and
// Hash, and returns the stored entry.
func (l *Log) Append(ctx context.Context, e Entry) (*Entry, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC()
	e.Outcome = OutcomeFailure
	if e.Status >= 200 && e.Status <= 299 {
		e.Outcome = OutcomeSuccess
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := store.Update(ctx, l.db, func(txn *badger.Txn) error {
		var h head
		if err := store.Get(txn, headKey, &h); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e.Seq, e.Prev = h.Seq+1, h.Hash
		e.Hash = digest(e)
		if err := store.Put(txn, entryKey(e.Seq), &e); err != nil {
			return err
		}
		return store.Put(txn, headKey, head{Seq: e.Seq, Hash: e.Hash})
	})
	if err != nil {
		return nil, fmt.Errorf("recording audit entry %s by %s: %w", e.Action, e.Actor, err)
	}
	return &e, nil
}

// Query selects entries; empty fields match everything.
type Query struct {
	Actor   string
	Action  string
	Target  string
	Outcome string
	Page    store.Page
}

// List returns entries newest first, and the cursor of the next page.
func (l *Log) List(ctx context.Context, q Query) ([]*Entry, string, error) {
	if q.Outcome != "" && q.Outcome != OutcomeSuccess && q.Outcome != OutcomeFailure {
		return nil, "", store.Invalid("outcome", "want %s or %s", OutcomeSuccess, OutcomeFailure)
	}
	var (
		items []*Entry
		next  string
	)
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, store.Prefix("audit"), q.Page, func(_, val []byte) (*Entry, bool, error) {
			var e Entry
			if err := store.Decode(val, &e); err != nil {
				return nil, false, err
			}
			ok := (q.Actor == "" || q.Actor == e.Actor || q.Actor == e.ActorID) &&
				(q.Action == "" || q.Action == e.Action) &&
				(q.Target == "" || q.Target == e.Target) &&
				(q.Outcome == "" || q.Outcome == e.Outcome)
			return &e, ok, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing audit entries: %w", err)
	}
	return items, next, nil
}

// Verification is the result of Verify.
type Verification struct {
	OK bool `json:"ok"`
	// Entries is the number of entries checked.
	Entries uint64 `json:"entries"`
	// FirstBadSeq is the sequence number of the first entry that fails,
	// 0 when OK.
	FirstBadSeq uint64 `json:"first_bad_seq,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Verify walks the whole chain from the first entry and checks that
// sequence numbers have no gap, that every entry's hash is its own and
// links to the previous one, and that the chain ends at the recorded
// head. It reports the first entry that fails.
func (l *Log) Verify(ctx context.Context) (*Verification, error) {
	v := &Verification{OK: true}
	bad := func(seq uint64, format string, args ...any) {
		v.OK, v.FirstBadSeq, v.Reason = false, seq, fmt.Sprintf(format, args...)
	}
	err := l.db.View(func(txn *badger.Txn) error {
		var h head
		if err := store.Get(txn, headKey, &h); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		prefix := store.Prefix("audit")
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		var prev string
		var want uint64 = 1
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			seq, err := store.ParseU64(item.Key()[len(prefix):])
			if err != nil {
				bad(want, "entry key %q is not a sequence number", item.Key())
				return nil
			}
			if seq != want {
				bad(want, "entry %d is missing (the next stored entry is %d)", want, seq)
				return nil
			}
			var e Entry
			if err := item.Value(func(val []byte) error { return json.Unmarshal(val, &e) }); err != nil {
				bad(seq, "entry %d cannot be decoded: %v", seq, err)
				return nil
			}
			switch {
			case e.Seq != seq:
				bad(seq, "entry %d says it is entry %d", seq, e.Seq)
			case e.Hash != digest(e):
				bad(seq, "entry %d was edited: its content does not match its hash", seq)
			case e.Prev != prev:
				bad(seq, "entry %d does not link to entry %d: the previous entry was replaced", seq, seq-1)
			}
			if !v.OK {
				return nil
			}
			v.Entries++
			prev = e.Hash
			want++
		}
		switch {
		case h.Seq >= want:
			bad(want, "entries %d to %d are missing from the end of the trail", want, h.Seq)
		case h.Seq+1 < want:
			bad(h.Seq+1, "entry %d is beyond the recorded end of the trail (%d)", h.Seq+1, h.Seq)
		case h.Hash != prev:
			bad(h.Seq, "entry %d does not match the recorded end of the trail", h.Seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verifying the audit trail: %w", err)
	}
	if !v.OK {
		l.log.Warn("audit trail verification failed", "seq", strconv.FormatUint(v.FirstBadSeq, 10), "reason", v.Reason)
	}
	return v, nil
}
