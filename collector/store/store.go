package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Open opens (creating it if needed) the badger database in dir with
// modest memory settings. Writes are synchronous: a committed transaction
// is on disk, which is what lets ingest acknowledge a batch once Append
// returns.
func Open(dir string, log *slog.Logger) (*badger.DB, error) {
	return OpenWith(Options(dir, log))
}

// OpenWith opens the badger database with opts, which are Options with
// changes (benchmarks compare settings this way).
func OpenWith(opts badger.Options) (*badger.DB, error) {
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("opening database in %s: %w", opts.Dir, err)
	}
	return db, nil
}

// Options are the settings Open uses.
func Options(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithNumCompactors(2).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(64 << 20).
		WithMetricsEnabled(false)
}

// RunGC reclaims value-log space every ten minutes until ctx ends.
func RunGC(ctx context.Context, db *badger.DB, log *slog.Logger) error {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			err := db.RunValueLogGC(0.5)
			if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
				break
			}
			if err != nil {
				log.Warn("value log garbage collection", "err", err)
				break
			}
		}
	}
}

// Update runs fn in a read-write transaction and commits it, running fn
// again (in a new transaction) when the commit conflicts with a
// concurrent one. fn must therefore have no effects outside txn.
func Update(ctx context.Context, db *badger.DB, fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) || attempt == 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.IntN(1000*(attempt+1))) * time.Microsecond):
		}
	}
}

// Get decodes the JSON value at key into v. A missing key is ErrNotFound.
func Get(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	return item.Value(func(val []byte) error {
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		return nil
	})
}

// Put stores v as JSON at key.
func Put(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if err := txn.Set(key, b); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is present.
func Exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	return true, nil
}

// Key joins parts with '/'. A part may itself be binary (see U64).
func Key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, '/')
		}
		k = append(k, p...)
	}
	return k
}

// Prefix is Key(parts...) followed by '/': the prefix of every key below
// those parts.
func Prefix(parts ...string) []byte {
	return append(Key(parts...), '/')
}

// U64 encodes n big-endian, so that keys sort numerically.
func U64(n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return string(b[:])
}

// ParseU64 decodes what U64 encoded.
func ParseU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("sequence number of %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// badgerLogger sends badger's log lines to slog; its chatty info lines go
// to debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error(trim(f, a), "component", "badger") }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn(trim(f, a), "component", "badger") }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug(trim(f, a), "component", "badger") }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debug(trim(f, a), "component", "badger") }

func trim(f string, a []any) string {
	s := fmt.Sprintf(f, a...)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

// Decode decodes a stored JSON value.
func Decode(val []byte, v any) error {
	if err := json.Unmarshal(val, v); err != nil {
		return fmt.Errorf("decoding a stored %T: %w", v, err)
	}
	return nil
}
