package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/audit"
	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/store"
)

// TestEveryRouteAndRole drives every route of the table through the real
// router: no key is 401, a role too low is 403, an unknown object is
// 404, and bad input is 400 naming the field. A route without a case
// here still gets the 401 and 403 checks, on a path with unknown ids.
func TestEveryRouteAndRole(t *testing.T) {
	e := newEnv(t)
	unknown := uuid.NewString()
	type badInput struct {
		query string // appended to the path
		body  any
		field string
	}
	cases := map[string]struct {
		path     string
		notFound bool // the path names an unknown object
		bad      []badInput
	}{
		"GET /api/v1/openapi.json":          {path: "/api/v1/openapi.json"},
		"GET /metrics":                      {path: "/metrics"},
		"GET /api/v1/agents":                {path: "/api/v1/agents", bad: []badInput{{query: "?limit=0", field: "limit"}}},
		"GET /api/v1/agents/{id}":           {path: "/api/v1/agents/" + unknown, notFound: true},
		"POST /api/v1/agents/{id}/revoke":   {path: "/api/v1/agents/" + unknown + "/revoke", notFound: true},
		"GET /api/v1/findings":              {path: "/api/v1/findings", bad: []badInput{{query: "?cursor=%21", field: "cursor"}}},
		"GET /api/v1/findings/{id}":         {path: "/api/v1/findings/" + unknown, notFound: true},
		"GET /api/v1/incidents":             {path: "/api/v1/incidents", bad: []badInput{{query: "?limit=x", field: "limit"}}},
		"GET /api/v1/incidents/{id}":        {path: "/api/v1/incidents/" + unknown, notFound: true},
		"PATCH /api/v1/incidents/{id}":      {path: "/api/v1/incidents/" + unknown, notFound: true, bad: []badInput{{body: map[string]any{"impact": "high"}, field: "impact"}, {body: map[string]any{"status": "done"}, field: "status"}, {body: map[string]any{"colour": 1}, field: "colour"}}},
		"GET /api/v1/commands":              {path: "/api/v1/commands", bad: []badInput{{query: "?limit=-1", field: "limit"}}},
		"POST /api/v1/commands":             {path: "/api/v1/commands", bad: []badInput{{body: map[string]any{"agent_id": e.agentID, "action": "reboot"}, field: "action"}, {body: map[string]any{"agent_id": e.agentID, "action": "kill"}, field: "args.pid"}, {body: map[string]any{"action": "isolate"}, field: "agent_id"}}},
		"GET /api/v1/commands/{id}":         {path: "/api/v1/commands/" + unknown, notFound: true},
		"GET /api/v1/enroll-tokens":         {path: "/api/v1/enroll-tokens", bad: []badInput{{query: "?limit=0", field: "limit"}}},
		"POST /api/v1/enroll-tokens":        {path: "/api/v1/enroll-tokens", bad: []badInput{{body: map[string]any{"uses": 0}, field: "uses"}, {body: map[string]any{"ttl": "soon"}, field: "ttl"}}},
		"GET /api/v1/ca":                    {path: "/api/v1/ca"},
		"GET /api/v1/api-keys":              {path: "/api/v1/api-keys", bad: []badInput{{query: "?limit=0", field: "limit"}}},
		"POST /api/v1/api-keys":             {path: "/api/v1/api-keys", bad: []badInput{{body: map[string]any{"name": "x", "role": "root"}, field: "role"}, {body: map[string]any{"role": "viewer"}, field: "name"}}},
		"POST /api/v1/api-keys/{id}/revoke": {path: "/api/v1/api-keys/" + unknown + "/revoke", notFound: true},
		"GET /api/v1/audit":                 {path: "/api/v1/audit", bad: []badInput{{query: "?outcome=maybe", field: "outcome"}, {query: "?limit=0", field: "limit"}}},
		"GET /api/v1/audit/verify":          {path: "/api/v1/audit/verify"},
		"GET /api/v1/me":                    {path: "/api/v1/me"},
		"GET /api/v1/rules":                 {path: "/api/v1/rules"},
		"POST /api/v1/rules":                {path: "/api/v1/rules", bad: []badInput{{body: map[string]any{"files": []any{}}, field: "files"}, {body: map[string]any{"files": []any{map[string]any{"name": "a.yml"}}}, field: "files[0].content"}, {body: map[string]any{"files": []any{map[string]any{"name": "a.yml", "content": "title: x\n"}}}, field: "files"}}},
		"POST /api/v1/events/ticket":        {path: "/api/v1/events/ticket"},
		"GET /api/v1/events/stream":         {path: "/api/v1/events/stream"},
	}
	ranks := []auth.Role{auth.RoleViewer, auth.RoleResponder, auth.RoleAdmin}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		c, ok := cases[rt.pattern]
		if !ok {
			t.Logf("route %s has no case: checking 401 and 403 only", rt.pattern)
			c.path = regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(path, unknown)
		}
		t.Run(rt.pattern, func(t *testing.T) {
			if rt.role == "" {
				if code, body := e.do(t, method, c.path, "", nil); code != 200 {
					t.Errorf("public route: %d %v", code, body)
				}
				return
			}
			for _, key := range []string{"", "cdk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
				if code, body := e.do(t, method, c.path, key, nil); code != 401 || body["error"] == "" {
					t.Errorf("key %q: %d %v, want 401", key, code, body)
				}
			}
			if rt.role == roleTicket {
				if code, _ := e.do(t, method, c.path, "admin", nil); code != 401 {
					t.Errorf("a bearer key opened the stream: %d", code)
				}
				if code, body := e.do(t, method, c.path+"?ticket=cet_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", nil); code != 401 || body["field"] != "ticket" {
					t.Errorf("unknown ticket: %d %v", code, body)
				}
				return
			}
			for _, r := range ranks {
				if r.Allows(rt.role) {
					break
				}
				if code, body := e.do(t, method, c.path, string(r), map[string]any{}); code != 403 {
					t.Errorf("as %s: %d %v, want 403", r, code, body)
				}
			}
			if c.notFound {
				var body any
				if method != "GET" {
					body = map[string]any{"comment": "x"}
					if strings.HasSuffix(rt.pattern, "/revoke") {
						body = nil
					}
				}
				if code, b := e.do(t, method, c.path, string(rt.role), body); code != 404 || b["error"] == "" {
					t.Errorf("unknown object: %d %v, want 404", code, b)
				}
			}
			for _, bad := range c.bad {
				// Bad input is refused before any object is looked up.
				code, b := e.do(t, method, c.path+bad.query, string(rt.role), bad.body)
				if code != 400 || b["field"] != bad.field {
					t.Errorf("bad input %s%v: %d %v, want 400 naming %q", bad.query, bad.body, code, b, bad.field)
				}
			}
		})
	}
}

// Every route that changes something is audited under a name.
func TestMutatingRoutesAreAudited(t *testing.T) {
	for _, rt := range routes {
		action := audited(rt)
		switch {
		case strings.HasPrefix(rt.pattern, "GET "):
			if action != "" {
				t.Errorf("%s is audited", rt.pattern)
			}
		case notAudited[rt.pattern]:
		case action == rt.pattern:
			t.Errorf("%s has no audit action name in auditActions", rt.pattern)
		}
	}
}

func TestRevokedKeyIsRefused(t *testing.T) {
	e := newEnv(t)
	_, created := e.do(t, "POST", "/api/v1/api-keys", "admin", map[string]any{"name": "laptop", "role": "responder"})
	key, id := created["key"].(string), created["id"].(string)
	if code, me := e.do(t, "GET", "/api/v1/me", key, nil); code != 200 || me["name"] != "laptop" || me["role"] != "responder" || me["id"] != id {
		t.Fatalf("me: %d %v", code, me)
	}
	if code, body := e.do(t, "POST", "/api/v1/api-keys/"+id+"/revoke", "admin", nil); code != 200 || body["revoked"] != true {
		t.Fatalf("revoke: %d %v", code, body)
	}
	if code, body := e.do(t, "GET", "/api/v1/me", key, nil); code != 401 {
		t.Errorf("revoked key: %d %v", code, body)
	}
}

// TestAuditTrail checks that every call that changes something, allowed
// or not, leaves exactly one entry, reads leave none, and tampering with
// the stored trail is reported with the entry concerned.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	e.finding(t, "high")
	_, body := e.do(t, "GET", "/api/v1/incidents", "viewer", nil)
	incID := body["items"].([]any)[0].(map[string]any)["id"].(string)

	calls := []struct {
		method, path, key string
		body              any
		status            int
		action, actor     string
		target            string // "*" for any non-empty
	}{
		{"PATCH", "/api/v1/incidents/" + incID, "responder", map[string]any{"assignee": "ann"}, 200, "incident.update", "responder-key", incID},
		{"PATCH", "/api/v1/incidents/" + incID, "viewer", map[string]any{"assignee": "eve"}, 403, "incident.update", "viewer-key", incID},
		{"PATCH", "/api/v1/incidents/" + incID, "", map[string]any{"assignee": "eve"}, 401, "incident.update", "anonymous", incID},
		{"PATCH", "/api/v1/incidents/" + incID, "responder", map[string]any{"status": "done"}, 400, "incident.update", "responder-key", incID},
		{"POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "isolate", "reason": "beacon"}, 201, "command.create", "responder-key", "*"},
		{"POST", "/api/v1/enroll-tokens", "admin", map[string]any{}, 201, "enroll_token.create", "admin-key", "*"},
		{"POST", "/api/v1/api-keys", "admin", map[string]any{"name": "n", "role": "viewer"}, 201, "api_key.create", "admin-key", "*"},
		{"POST", "/api/v1/agents/" + e.agentID + "/revoke", "admin", nil, 200, "agent.revoke", "admin-key", e.agentID},
	}
	var want uint64
	for i, c := range calls {
		code, b := e.do(t, c.method, c.path, c.key, c.body)
		if code != c.status {
			t.Fatalf("call %d: %d %v, want %d", i, code, b, c.status)
		}
		// Reads leave nothing.
		e.do(t, "GET", "/api/v1/incidents/"+incID, "viewer", nil)
		want++
		code, b = e.do(t, "GET", "/api/v1/audit?limit=1", "admin", nil)
		items := b["items"].([]any)
		if code != 200 || len(items) != 1 {
			t.Fatalf("audit: %d %v", code, b)
		}
		got := items[0].(map[string]any)
		wantOutcome := audit.OutcomeFailure
		if c.status < 300 {
			wantOutcome = audit.OutcomeSuccess
		}
		if got["seq"] != float64(want) || got["action"] != c.action || got["actor"] != c.actor || got["status"] != float64(c.status) ||
			got["outcome"] != wantOutcome || !strings.HasPrefix(got["source"].(string), "127.0.0.1:") ||
			(c.target == "*" && got["target"] == nil) || (c.target != "*" && got["target"] != c.target) {
			t.Errorf("call %d (%s %s as %q): entry %v", i, c.method, c.path, c.key, got)
		}
	}
	if _, b := e.do(t, "GET", "/api/v1/audit?action=incident.update&outcome=failure", "admin", nil); len(b["items"].([]any)) != 3 {
		t.Errorf("filtered audit: %v", b)
	}
	if code, v := e.do(t, "GET", "/api/v1/audit/verify", "admin", nil); code != 200 || v["ok"] != true || v["entries"] != float64(want) {
		t.Fatalf("verify: %d %v", code, v)
	}

	// Edit entry 2 directly in badger: it was a refused call; make it
	// look allowed.
	err := e.db.Update(func(txn *badger.Txn) error {
		var entry map[string]any
		key := store.Key("audit", store.U64(2))
		if err := store.Get(txn, key, &entry); err != nil {
			return err
		}
		entry["status"], entry["outcome"] = 200, "success"
		return store.Put(txn, key, entry)
	})
	if err != nil {
		t.Fatal(err)
	}
	code, v := e.do(t, "GET", "/api/v1/audit/verify", "admin", nil)
	if code != 200 || v["ok"] != false || v["first_bad_seq"] != 2.0 || !strings.Contains(v["reason"].(string), "edited") {
		t.Errorf("verify after an edit: %d %v", code, v)
	}
}

func TestEventStream(t *testing.T) {
	e := newEnv(t)
	code, tk := e.do(t, "POST", "/api/v1/events/ticket", "viewer", nil)
	if code != 201 || !strings.HasPrefix(tk["ticket"].(string), "cet_") {
		t.Fatalf("ticket: %d %v", code, tk)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events/stream?ticket="+tk["ticket"].(string), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	next := func() (event, data string) {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && event != "":
				return event, data
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}
	if ev, _ := next(); ev != "ready" {
		t.Fatalf("first event %q", ev)
	}
	// The ticket was used up.
	if code, _ := e.do(t, "GET", "/api/v1/events/stream?ticket="+tk["ticket"].(string), "", nil); code != 401 {
		t.Errorf("ticket used twice: %d", code)
	}
	_, c := e.do(t, "POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "drill"})
	ev, data := next()
	var got struct{ Kind, ID string }
	if err := json.Unmarshal([]byte(data), &got); ev != "change" || err != nil || got.Kind != "command" || got.ID != c["id"] {
		t.Errorf("event %q %s, want a change of command %v", ev, data, c["id"])
	}
}

// A stream ends when the key its ticket came from is revoked.
func TestEventStreamEndsOnRevocation(t *testing.T) {
	e := newEnv(t)
	e.server.keepalive = 20 * time.Millisecond
	_, created := e.do(t, "POST", "/api/v1/api-keys", "admin", map[string]any{"name": "tab", "role": "viewer"})
	_, tk := e.do(t, "POST", "/api/v1/events/ticket", created["key"].(string), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events/stream?ticket="+tk["ticket"].(string), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream starts with %q", line)
	}
	e.do(t, "POST", "/api/v1/api-keys/"+created["id"].(string)+"/revoke", "admin", nil)
	for {
		if _, err := rd.ReadString('\n'); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the stream outlived its key")
			}
			return // ended
		}
	}
}
