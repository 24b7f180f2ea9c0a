package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

type env struct {
	db    *badger.DB
	reg   *Registry
	clock time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e.reg = New(Config{DB: db, Now: func() time.Time { return e.clock }}, quiet)
	return e
}

var host = &protocol.HostFacts{Hostname: "web-1", Os: "linux", Arch: "amd64", Ips: []string{"10.0.0.5"}, AgentVersion: "0.1.0"}

func issue(id string) ([]byte, time.Time, error) { return []byte("cert-of-" + id), time.Time{}, nil }

func (e *env) enroll(t *testing.T, tags map[string]string) string {
	t.Helper()
	_, secret, err := e.reg.CreateToken(context.Background(), TokenRequest{Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := e.reg.Redeem(context.Background(), secret, host, nil, issue)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// keys counts the keys under prefix.
func (e *env) keys(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	err := e.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRedeem(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, twice, err := e.reg.CreateToken(ctx, TokenRequest{Uses: 2, TTL: time.Hour, Tags: map[string]string{"criticality": "high", "env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	_, expiring, err := e.reg.CreateToken(ctx, TokenRequest{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	id, cert, err := e.reg.Redeem(ctx, twice, host, map[string]string{"env": "staging"}, issue)
	if err != nil {
		t.Fatal(err)
	}
	if string(cert) != "cert-of-"+id {
		t.Errorf("certificate %q", cert)
	}
	a, err := e.reg.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Hostname != "web-1" || fmt.Sprint(a.Tags) != "map[criticality:high env:staging]" || a.EnrolledAt != e.clock || a.Online {
		t.Errorf("agent %+v", a)
	}
	if _, _, err := e.reg.Redeem(ctx, twice, host, nil, issue); err != nil {
		t.Fatalf("second use: %v", err)
	}

	e.clock = e.clock.Add(2 * time.Minute)
	failIssue := func(string) ([]byte, time.Time, error) { return nil, time.Time{}, errors.New("CA offline") }
	tests := []struct {
		name   string
		token  string
		tags   map[string]string
		issue  func(string) ([]byte, time.Time, error)
		want   error
		wantIn string
	}{
		{"used up", twice, nil, issue, ErrTokenUsedUp, ""},
		{"expired", expiring, nil, issue, ErrTokenExpired, ""},
		{"unknown", "cdt_" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil, issue, ErrTokenUnknown, ""},
		{"malformed", "hello", nil, issue, ErrTokenUnknown, ""},
		{"bad tag", twice, map[string]string{"Bad Key": "x"}, issue, nil, "tags"},
		{"issue fails", twice, nil, failIssue, nil, "CA offline"},
	}
	agents := e.keys(t, "agent/")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "issue fails" {
				_, fresh, err := e.reg.CreateToken(ctx, TokenRequest{})
				if err != nil {
					t.Fatal(err)
				}
				tt.token = fresh
			}
			id, _, err := e.reg.Redeem(ctx, tt.token, host, tt.tags, tt.issue)
			if err == nil {
				t.Fatalf("enrolled %s", id)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.wantIn != "" && !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %v does not mention %q", err, tt.wantIn)
			}
			if n := e.keys(t, "agent/"); n != agents {
				t.Errorf("%d agents stored, want %d", n, agents)
			}
		})
	}
	toks, _, err := e.reg.Tokens(ctx, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Used > tok.Uses || (tok.Uses == 1 && tok.Used != 0) {
			t.Errorf("token %s used %d of %d", tok.ID, tok.Used, tok.Uses)
		}
	}
}

func TestCreateTokenInvalid(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		req   TokenRequest
		field string
	}{
		{TokenRequest{TTL: -time.Hour}, "ttl"},
		{TokenRequest{Uses: -1}, "uses"},
		{TokenRequest{Tags: map[string]string{"": "x"}}, "tags"},
	} {
		_, _, err := e.reg.CreateToken(context.Background(), tt.req)
		var fe *store.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%+v: error %v, want one on %s", tt.req, err, tt.field)
		}
	}
}

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.enroll(t, nil)
	if err := e.reg.Authorize(id, nil); err != nil {
		t.Errorf("enrolled agent refused: %v", err)
	}
	if err := e.reg.Authorize("0190aaaa-0000-7000-8000-000000000000", nil); !errors.Is(err, ErrUnknownAgent) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
	if _, err := e.reg.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Authorize(id, nil); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked agent: %v", err)
	}
	if err := e.reg.Connected(ctx, id, &protocol.Hello{}, "10.0.0.5:1234"); !errors.Is(err, ErrRevoked) {
		t.Errorf("hello of a revoked agent: %v", err)
	}
	if _, err := e.reg.Revoke(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown agent: %v", err)
	}
}

func TestOnline(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.enroll(t, nil)
	online := func() bool {
		t.Helper()
		a, err := e.reg.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Online != (e.reg.Online() == 1) {
			t.Errorf("Get says online %v, Online() says %d", a.Online, e.reg.Online())
		}
		return a.Online
	}
	if online() {
		t.Error("online before hello")
	}
	hello := &protocol.Hello{Host: &protocol.HostFacts{Hostname: "web-2"}, SensorModes: []string{"process=netlink"}}
	if err := e.reg.Connected(ctx, id, hello, "10.0.0.5:1234"); err != nil {
		t.Fatal(err)
	}
	if !online() {
		t.Error("offline after hello")
	}
	e.clock = e.clock.Add(40 * time.Second)
	if err := e.reg.Heartbeat(ctx, id, &protocol.Heartbeat{SpoolPending: 7, Isolated: true}); err != nil {
		t.Fatal(err)
	}
	e.clock = e.clock.Add(3*HeartbeatPeriod - time.Second)
	if !online() {
		t.Error("offline within three heartbeat periods")
	}
	a, _ := e.reg.Get(ctx, id)
	if a.Hostname != "web-2" || a.SpoolPending != 7 || !a.Isolated || fmt.Sprint(a.SensorModes) != "[process=netlink]" {
		t.Errorf("agent %+v", a)
	}
	e.clock = e.clock.Add(time.Second)
	if online() {
		t.Error("online three heartbeat periods after the last heartbeat")
	}

	// A reconnect replaces the connection; its end ends the agent's
	// connection.
	if err := e.reg.Connected(ctx, id, hello, "10.0.0.5:1235"); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Connected(ctx, id, hello, "10.0.0.5:1236"); err != nil {
		t.Fatal(err)
	}
	e.reg.Disconnected(id)
	if online() {
		t.Error("online after the disconnection")
	}
	// A heartbeat shows it connected again.
	if err := e.reg.Heartbeat(ctx, id, &protocol.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	if !online() {
		t.Error("offline after a heartbeat")
	}
	e.reg.Disconnected(id)
	a, _ = e.reg.Get(ctx, id)
	if a.LastSeen != e.clock {
		t.Errorf("stored last seen %v after disconnect, want %v", a.LastSeen, e.clock)
	}

	// A revoked agent's heartbeat ends its connection.
	if err := e.reg.Connected(ctx, id, hello, "10.0.0.5:1236"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Heartbeat(ctx, id, &protocol.Heartbeat{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("heartbeat of a revoked agent: %v", err)
	}
	if online() {
		t.Error("revoked agent online")
	}
}

func TestListAndLookup(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.enroll(t, map[string]string{"n": fmt.Sprint(i)}))
	}
	got, next, err := e.reg.List(context.Background(), store.Page{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[1] || next == "" {
		t.Errorf("first page %v, next %q", got, next)
	}
	h, tags, ok := e.reg.Lookup(ids[0])
	if !ok || h != "web-1" || tags["n"] != "0" {
		t.Errorf("Lookup = %q %v %v", h, tags, ok)
	}
	if _, _, ok := e.reg.Lookup("nope"); ok {
		t.Error("Lookup found an unknown agent")
	}
}

func TestIndicatorSetVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.enroll(t, nil)
	get := func() *Agent {
		t.Helper()
		a, err := e.reg.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := e.reg.Connected(ctx, id, &protocol.Hello{IocsVersion: "1-aaaa"}, "10.0.0.5:1234"); err != nil {
		t.Fatal(err)
	}
	if a := get(); a.IocsVersion != "1-aaaa" {
		t.Errorf("after hello: %q", a.IocsVersion)
	}
	if err := e.reg.IocsResult(ctx, id, &protocol.IndicatorSetResult{Version: "2-bbbb", Error: "indicator 3: bad"}); err != nil {
		t.Fatal(err)
	}
	if a := get(); a.IocsVersion != "1-aaaa" || a.IocsError != "refused indicator set 2-bbbb: indicator 3: bad" {
		t.Errorf("after a refusal: %q, %q", a.IocsVersion, a.IocsError)
	}
	if err := e.reg.Heartbeat(ctx, id, &protocol.Heartbeat{IocsVersion: "3-cccc"}); err != nil {
		t.Fatal(err)
	}
	if a := get(); a.IocsVersion != "3-cccc" || a.IocsError != "" {
		t.Errorf("after a heartbeat with a new version: %q, %q", a.IocsVersion, a.IocsError)
	}
	e.reg.Disconnected(id)
	if a := get(); a.IocsVersion != "3-cccc" {
		t.Errorf("after the disconnection: %q", a.IocsVersion)
	}
}
