package store

import (
	"bytes"
	"encoding/base64"

	"github.com/dgraph-io/badger/v4"
)

// Page asks for one page of a listing.
type Page struct {
	// Limit is the page size; values below 1 mean DefaultLimit and values
	// above MaxLimit mean MaxLimit.
	Limit int
	// Cursor is the Next of the previous page, empty for the first.
	Cursor string
}

// Page sizes of the REST API's listings.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Size returns the page size Limit asks for: DefaultLimit below 1,
// MaxLimit above it.
func (p Page) Size() int {
	switch {
	case p.Limit < 1:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// Newest lists the keys under prefix from the greatest down, starting
// after p.Cursor. load decodes one entry and says whether it belongs to
// the listing (a filter). It returns at most p.Limit items and the cursor
// of the next page, empty when no matching entry is left.
func Newest[T any](txn *badger.Txn, prefix []byte, p Page, load func(key, val []byte) (T, bool, error)) ([]T, string, error) {
	start, _, err := p.Start(prefix)
	if err != nil {
		return nil, "", err
	}
	it := ReverseIterator(txn, prefix)
	defer it.Close()

	limit := p.Size()
	var items []T
	var last []byte
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if p.Cursor != "" && bytes.Equal(key, start) {
			continue
		}
		var (
			v  T
			ok bool
		)
		err := item.Value(func(val []byte) error {
			var err error
			v, ok, err = load(key, val)
			return err
		})
		if err != nil {
			return nil, "", err
		}
		if !ok {
			continue
		}
		if len(items) == limit {
			return items, EncodeCursor(last[len(prefix):]), nil
		}
		items = append(items, v)
		last = item.KeyCopy(last)
	}
	return items, "", nil
}

// Start returns the key a listing of the keys under prefix, from the
// greatest down, seeks to for this page, and the cursor's suffix of it
// (nil on the first page). A cursor not made by EncodeCursor is a field
// error.
func (p Page) Start(prefix []byte) (start, suffix []byte, err error) {
	if p.Cursor == "" {
		return append(bytes.Clone(prefix), 0xff), nil, nil
	}
	suffix, err = base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil || len(suffix) == 0 {
		return nil, nil, Invalid("cursor", "not a cursor returned by this listing")
	}
	return append(bytes.Clone(prefix), suffix...), suffix, nil
}

// EncodeCursor returns the cursor of a page whose last item is the key
// prefix+suffix.
func EncodeCursor(suffix []byte) string { return base64.RawURLEncoding.EncodeToString(suffix) }

// ReverseIterator returns an iterator over the keys under prefix, from
// the greatest down, that does not prefetch values.
func ReverseIterator(txn *badger.Txn, prefix []byte) *badger.Iterator {
	opts := badger.DefaultIteratorOptions
	opts.Reverse = true
	opts.Prefix = prefix
	opts.PrefetchValues = false
	return txn.NewIterator(opts)
}
