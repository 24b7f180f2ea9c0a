package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
)

// KeyPrefix starts every API key.
const KeyPrefix = "cdk_"

// Role is what a key may do.
type Role string

// Roles, each allowed what the previous one is.
const (
	RoleViewer    Role = "viewer"
	RoleResponder Role = "responder"
	RoleAdmin     Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleResponder:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Known reports whether r is a role.
func (r Role) Known() bool { return r.rank() > 0 }

// Allows reports whether r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.Known() && r.rank() >= need.rank() }

// ErrUnknownKey is returned by Authenticate for a key that is not stored,
// or revoked.
var ErrUnknownKey = errors.New("unknown API key")

// Key is an API key as listed; the secret itself is shown only when it is
// created.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

type keyRecord struct {
	Key
	Hash string `json:"hash"`
}

// Config configures Keys.
type Config struct {
	DB *badger.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Keys is the API key store.
type Keys struct {
	db  *badger.DB
	now func() time.Time
	log *slog.Logger
}

// New returns Keys over cfg.DB.
func New(cfg Config, log *slog.Logger) *Keys {
	k := &Keys{db: cfg.DB, now: cfg.Now, log: log}
	if k.now == nil {
		k.now = time.Now
	}
	return k
}

func keyKey(id string) []byte    { return store.Key("apikey", id) }
func hashKey(hash string) []byte { return store.Key("apikey-hash", hash) }

var adminMarker = store.Key("meta", "admin-key")

// Create stores a new key and returns it with its secret.
func (k *Keys) Create(ctx context.Context, name string, role Role) (*Key, string, error) {
	rec, secret, err := k.newKey(name, role)
	if err != nil {
		return nil, "", err
	}
	if err := store.Update(ctx, k.db, func(txn *badger.Txn) error { return put(txn, rec) }); err != nil {
		return nil, "", fmt.Errorf("storing API key %q: %w", name, err)
	}
	k.log.Info("API key created", "key", rec.ID, "name", rec.Name, "role", rec.Role)
	return &rec.Key, secret, nil
}

func (k *Keys) newKey(name string, role Role) (*keyRecord, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return nil, "", store.Invalid("name", "must be 1 to 128 characters")
	}
	if !role.Known() {
		return nil, "", store.Invalid("role", "%q is not one of viewer, responder, admin", role)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", fmt.Errorf("minting an API key id: %w", err)
	}
	secret, hash := store.NewSecret(KeyPrefix)
	return &keyRecord{
		Key:  Key{ID: id.String(), Name: name, Role: role, CreatedAt: k.now().UTC()},
		Hash: hash,
	}, secret, nil
}

func put(txn *badger.Txn, rec *keyRecord) error {
	if err := store.Put(txn, keyKey(rec.ID), rec); err != nil {
		return err
	}
	return txn.Set(hashKey(rec.Hash), []byte(rec.ID))
}

// Authenticate returns the key a secret names, or ErrUnknownKey.
func (k *Keys) Authenticate(ctx context.Context, secret string) (*Key, error) {
	if !store.WellFormedSecret(KeyPrefix, secret) {
		return nil, ErrUnknownKey
	}
	var rec keyRecord
	err := k.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(hashKey(store.HashSecret(secret)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrUnknownKey
		}
		if err != nil {
			return err
		}
		id, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return store.Get(txn, keyKey(string(id)), &rec)
	})
	if errors.Is(err, ErrUnknownKey) {
		return nil, ErrUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating an API key: %w", err)
	}
	if rec.Revoked {
		return nil, ErrUnknownKey
	}
	return &rec.Key, nil
}

// List returns keys newest first, and the cursor of the next page.
func (k *Keys) List(ctx context.Context, p store.Page) ([]*Key, string, error) {
	var (
		items []*Key
		next  string
	)
	err := k.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, store.Prefix("apikey"), p, func(_, val []byte) (*Key, bool, error) {
			var rec keyRecord
			if err := store.Decode(val, &rec); err != nil {
				return nil, false, err
			}
			return &rec.Key, true, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing API keys: %w", err)
	}
	return items, next, nil
}

// AdminTokenFile is the file in the data directory that holds the first
// admin key.
const AdminTokenFile = "admin.token"

// EnsureAdmin creates the first admin key when the database has never
// had one: it writes the key to dataDir/admin.token (mode 0600) and
// returns it, for the caller to print once. Later calls return "" and
// change nothing; the key stays valid.
func (k *Keys) EnsureAdmin(ctx context.Context, dataDir string) (string, error) {
	var done bool
	err := k.db.View(func(txn *badger.Txn) error {
		var err error
		done, err = store.Exists(txn, adminMarker)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("checking for the first admin key: %w", err)
	}
	if done {
		return "", nil
	}
	rec, secret, err := k.newKey("admin", RoleAdmin)
	if err != nil {
		return "", err
	}
	// The file comes first: a key stored but never written out would
	// lock the operator out.
	path := filepath.Join(dataDir, AdminTokenFile)
	if err := writeSecret(path, secret); err != nil {
		return "", err
	}
	err = store.Update(ctx, k.db, func(txn *badger.Txn) error {
		if err := put(txn, rec); err != nil {
			return err
		}
		return txn.Set(adminMarker, []byte(rec.ID))
	})
	if err != nil {
		return "", fmt.Errorf("storing the first admin key: %w", err)
	}
	k.log.Info("first admin API key created", "key", rec.ID, "file", path)
	return secret, nil
}

// writeSecret writes secret to path with mode 0600, atomically.
func writeSecret(path, secret string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin.token-*")
	if err != nil {
		return fmt.Errorf("writing the admin key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the admin key: %w", err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the admin key to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the admin key to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the admin key to %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the admin key to %s: %w", path, err)
	}
	return nil
}
