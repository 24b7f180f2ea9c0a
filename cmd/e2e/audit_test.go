package e2e

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// TestAuditAndKeyRevocation drives the audit trail and key revocation
// through cordonctl against the real collector: every change leaves one
// entry, a revoked key is refused, and an entry edited in the database
// while the collector is down makes `cordonctl audit verify` fail and
// name it.
func TestAuditAndKeyRevocation(t *testing.T) {
	c := newCollector(t)
	out, err := c.ctl("api-key", "create", "--name", "ci", "--role", "viewer", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var key struct{ ID, Key string }
	if err := json.Unmarshal([]byte(out), &key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ctl("enroll-token", "create"); err != nil {
		t.Fatal(err)
	}
	// The new key works, then is revoked and refused.
	viewer := &collector{proc: c.proc, api: c.api, token: key.Key}
	if _, err := viewer.ctl("agents"); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if out, err := c.ctl("api-key", "revoke", key.ID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	// ctl's error says how cordonctl exited.
	if _, err = viewer.ctl("agents"); err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked key: %v", err)
	}
	// A refused change is recorded too.
	if _, err := viewer.ctl("api-key", "create", "--name", "x", "--role", "admin"); err == nil {
		t.Error("a revoked key created a key")
	}

	var trail []struct {
		Seq     uint64 `json:"seq"`
		Actor   string `json:"actor"`
		Action  string `json:"action"`
		Target  string `json:"target"`
		Outcome string `json:"outcome"`
	}
	c.ctlJSON(t, &trail, "audit", "--json")
	var got []string
	for _, e := range trail {
		got = append(got, e.Actor+" "+e.Action+" "+e.Outcome)
	}
	want := []string{
		"anonymous api_key.create failure",
		"admin api_key.revoke success",
		"admin enroll_token.create success",
		"admin api_key.create success",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if trail[1].Target != key.ID {
		t.Errorf("revocation target %q, want %s", trail[1].Target, key.ID)
	}
	if out, err := c.ctl("audit"); err != nil || !strings.Contains(out, "api_key.revoke") {
		t.Errorf("audit table: %v\n%s", err, out)
	}
	if out, err := c.ctl("audit", "verify"); err != nil || !strings.Contains(out, "intact: 4 entries") {
		t.Fatalf("verify: %v %s", err, out)
	}

	// Edit entry 2 (the revocation) while the collector is down.
	c.stop()
	db, err := store.Open(filepath.Join(c.data, "db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		var e map[string]any
		k := store.Key("audit", store.U64(2))
		if err := store.Get(txn, k, &e); err != nil {
			return err
		}
		e["actor"] = "someone-else"
		return store.Put(txn, k, e)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c = startCollector(t, c.data, c.listen, c.api)
	out, err = c.ctl("audit", "verify")
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "broken at entry 2") {
		t.Errorf("verify after an edit: %v %s", err, out)
	}
	var v struct {
		OK          bool   `json:"ok"`
		FirstBadSeq uint64 `json:"first_bad_seq"`
	}
	out, _ = c.ctl("audit", "verify", "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.OK || v.FirstBadSeq != 2 {
		t.Errorf("verify --json: %v %s", err, out)
	}
}
