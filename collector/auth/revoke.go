package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Revoke marks a key revoked: Authenticate refuses it from then on.
// Revoking a revoked key changes nothing. An unknown id is a
// *store.FieldError of kind store.ErrNotFound naming "id".
func (k *Keys) Revoke(ctx context.Context, id string) (*Key, error) {
	var rec keyRecord
	err := store.Update(ctx, k.db, func(txn *badger.Txn) error {
		rec = keyRecord{}
		if err := store.Get(txn, keyKey(id), &rec); err != nil {
			return err
		}
		if rec.Revoked {
			return nil
		}
		rec.Revoked = true
		return store.Put(txn, keyKey(id), &rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Missing("id", "no API key %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("revoking API key %s: %w", id, err)
	}
	k.log.Info("API key revoked", "key", rec.ID, "name", rec.Name)
	return &rec.Key, nil
}

// Active reports whether the key with id exists and is not revoked.
func (k *Keys) Active(ctx context.Context, id string) (bool, error) {
	var rec keyRecord
	err := k.db.View(func(txn *badger.Txn) error { return store.Get(txn, keyKey(id), &rec) })
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up API key %s: %w", id, err)
	}
	return !rec.Revoked, nil
}
