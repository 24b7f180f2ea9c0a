package store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func openDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestNewest(t *testing.T) {
	db := openDB(t)
	err := db.Update(func(txn *badger.Txn) error {
		for i := range 7 {
			if err := Put(txn, Key("item", fmt.Sprintf("%02d", i)), i); err != nil {
				return err
			}
		}
		// Neighbours that share the prefix's letters but not the prefix.
		if err := Put(txn, Key("items"), 99); err != nil {
			return err
		}
		return Put(txn, Key("iten", "00"), 98)
	})
	if err != nil {
		t.Fatal(err)
	}
	all := func(_, val []byte) (int, bool, error) {
		var n int
		return n, true, Decode(val, &n)
	}
	even := func(_, val []byte) (int, bool, error) {
		var n int
		err := Decode(val, &n)
		return n, n%2 == 0, err
	}
	tests := []struct {
		name   string
		limit  int
		filter func(_, val []byte) (int, bool, error)
		want   []string // pages
	}{
		{"one page", 0, all, []string{"[6 5 4 3 2 1 0]"}},
		{"exact pages", 7, all, []string{"[6 5 4 3 2 1 0]"}},
		{"pages of three", 3, all, []string{"[6 5 4]", "[3 2 1]", "[0]"}},
		{"filtered", 2, even, []string{"[6 4]", "[2 0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			cursor := ""
			for range 10 {
				var items []int
				var next string
				err := db.View(func(txn *badger.Txn) error {
					var err error
					items, next, err = Newest(txn, Prefix("item"), Page{Limit: tt.limit, Cursor: cursor}, tt.filter)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprint(items))
				if next == "" {
					break
				}
				cursor = next
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("pages %v, want %v", got, tt.want)
			}
		})
	}

	err = db.View(func(txn *badger.Txn) error {
		_, _, err := Newest(txn, Prefix("item"), Page{Cursor: "!!"}, all)
		return err
	})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "cursor" {
		t.Errorf("bad cursor: got %v, want a FieldError on cursor", err)
	}
}

func TestSecret(t *testing.T) {
	s, h := NewSecret("cdk_")
	if len(s) != 4+32 || !WellFormedSecret("cdk_", s) {
		t.Fatalf("secret %q is not well formed", s)
	}
	if HashSecret(strings.ToUpper(s[:4])+strings.ToUpper(s[4:])) != h {
		t.Error("hash depends on case")
	}
	for _, bad := range []string{"", "cdk_", s[:len(s)-1], "cdt_" + s[4:], s + "a", "cdk_" + strings.Repeat("1", 32)} {
		if WellFormedSecret("cdk_", bad) {
			t.Errorf("%q passes as well formed", bad)
		}
	}
}

func TestFieldErrorKinds(t *testing.T) {
	if !errors.Is(Conflict("status", "x"), ErrConflict) || errors.Is(Conflict("status", "x"), ErrNotFound) {
		t.Error("Conflict does not match (only) ErrConflict")
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", Missing("id", "x")), ErrNotFound) {
		t.Error("Missing does not match ErrNotFound")
	}
	if errors.Is(Invalid("f", "x"), ErrConflict) || errors.Is(Invalid("f", "x"), ErrNotFound) {
		t.Error("Invalid matches a kind")
	}
}
