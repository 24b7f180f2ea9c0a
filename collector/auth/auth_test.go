package auth

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/collector/store"
)

var quiet = slog.New(slog.DiscardHandler)

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	keys := New(Config{DB: db}, quiet)
	secret, err := keys.EnsureAdmin(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) {
		t.Fatalf("admin key %q", secret)
	}
	path := filepath.Join(dir, AdminTokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != secret {
		t.Errorf("%s holds %q, want the key", path, b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, %v; want 0600", path, fi.Mode(), err)
	}

	// A restart creates nothing new and the key stays valid.
	db.Close()
	db, err = store.Open(filepath.Join(dir, "db"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys = New(Config{DB: db}, quiet)
	again, err := keys.EnsureAdmin(ctx, dir)
	if err != nil || again != "" {
		t.Errorf("second EnsureAdmin = %q, %v; want \"\", nil", again, err)
	}
	k, err := keys.Authenticate(ctx, secret)
	if err != nil || k.Role != RoleAdmin || k.Name != "admin" {
		t.Errorf("admin key authenticates as %+v, %v", k, err)
	}
	if list, _, err := keys.List(ctx, store.Page{}); err != nil || len(list) != 1 {
		t.Errorf("keys %v, %v; want one", list, err)
	}
}

func TestCreateAuthenticate(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := New(Config{DB: db}, quiet)
	k, secret, err := keys.Create(ctx, "soc-bot", RoleResponder)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keys.Authenticate(ctx, secret)
	if err != nil || got.ID != k.ID || got.Role != RoleResponder {
		t.Errorf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "cdk_", "cdk_" + strings.Repeat("a", 32), secret[:len(secret)-1], "Bearer " + secret} {
		if _, err := keys.Authenticate(ctx, bad); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnknownKey", bad, err)
		}
	}
	for _, tt := range []struct {
		name  string
		role  Role
		field string
	}{{"", RoleViewer, "name"}, {"x", "root", "role"}} {
		_, _, err := keys.Create(ctx, tt.name, tt.role)
		var fe *store.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Create(%q, %q) = %v, want an error on %s", tt.name, tt.role, err, tt.field)
		}
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		have, need Role
		ok         bool
	}{
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleResponder, false},
		{RoleResponder, RoleViewer, true},
		{RoleResponder, RoleAdmin, false},
		{RoleAdmin, RoleResponder, true},
		{"root", RoleViewer, false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.ok {
			t.Errorf("%s allows %s = %v", tt.have, tt.need, got)
		}
	}
}

func TestRevoke(t *testing.T) {
	db, err := store.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k := New(Config{DB: db}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	key, secret, err := k.Create(ctx, "ci", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Active(ctx, key.ID); !ok || err != nil {
		t.Errorf("new key not active: %v %v", ok, err)
	}
	for range 2 { // the second time changes nothing
		got, err := k.Revoke(ctx, key.ID)
		if err != nil || !got.Revoked {
			t.Fatalf("revoke: %+v %v", got, err)
		}
	}
	if _, err := k.Authenticate(ctx, secret); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if ok, err := k.Active(ctx, key.ID); ok || err != nil {
		t.Errorf("revoked key active: %v %v", ok, err)
	}
	if ok, err := k.Active(ctx, "nope"); ok || err != nil {
		t.Errorf("unknown key active: %v %v", ok, err)
	}
	if _, err := k.Revoke(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
}
