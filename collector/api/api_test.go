package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/audit"
	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/iocset"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/ruleset"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

type env struct {
	srv       *httptest.Server
	agents    *registry.Registry
	findings  *ingest.Store
	incidents *incident.Engine
	keys      map[auth.Role]string
	agentID   string
	cfg       Config // what the server was made with
	db        *badger.DB
	audit     *audit.Log
	hub       *events.Hub
	commands  *command.Queue
	server    *server
}

var caDER = []byte("not really a certificate")

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{keys: map[auth.Role]string{}, db: db, hub: &events.Hub{}}
	e.audit = audit.New(audit.Config{DB: db}, quiet)
	e.commands = command.New(command.Config{DB: db}, quiet)
	e.agents = registry.New(registry.Config{DB: db}, quiet)
	e.findings, err = ingest.New(ingest.Config{DB: db, Agents: e.agents}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.incidents = incident.New(incident.Config{DB: db, Log: e.findings, Findings: e.findings, Agents: e.agents}, quiet)
	keys := auth.New(auth.Config{DB: db}, quiet)
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleResponder, auth.RoleAdmin} {
		_, secret, err := keys.Create(context.Background(), string(r)+"-key", r)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[r] = secret
	}
	e.cfg = Config{
		Agents: e.agents, Findings: e.findings, Incidents: e.incidents,
		Commands: e.commands, Keys: keys,
		Audit: e.audit, Events: e.hub,
		Rules:      ruleset.New(db, nil, quiet),
		Indicators: iocset.New(db, nil, quiet),
		CAPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Logger:     quiet,
	}
	h := New(e.cfg)
	e.server = h.(*server)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	_, tok, err := e.agents.CreateToken(context.Background(), registry.TokenRequest{Tags: map[string]string{"criticality": "high"}})
	if err != nil {
		t.Fatal(err)
	}
	e.agentID, _, err = e.agents.Redeem(context.Background(), tok, &protocol.HostFacts{Hostname: "web-1"}, nil,
		func(string) ([]byte, time.Time, error) { return []byte("cert"), time.Time{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request with the key of role (none when empty, the literal
// key when it starts with "cdk_" or "x") and decodes the JSON answer.
func (e *env) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret, ok := e.keys[auth.Role(key)]; ok {
		key = secret
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// finding appends one finding of the test agent and builds incidents.
func (e *env) finding(t *testing.T, severity string) string {
	t.Helper()
	f := &protocol.Finding{
		Id: uuid.Must(uuid.NewV7()).String(), Rule: &protocol.Rule{Id: "r1", Name: "Reverse shell"},
		Severity: severity, Tactics: []string{"TA0002"}, ObservedUnixNano: time.Now().UnixNano(),
	}
	ctx := context.Background()
	if _, _, err := e.findings.Append(ctx, e.agentID, []*protocol.Finding{f}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- e.incidents.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.findings.Get(context.Background(), f.Id)
		if err != nil {
			t.Fatal(err)
		}
		if got.IncidentID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no incident built")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return f.Id
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path, key string
		body              any
		want              int
	}{
		{"GET", "/api/v1/agents", "", nil, 401},
		{"GET", "/api/v1/agents", "cdk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil, 401},
		{"GET", "/api/v1/agents", "xyz", nil, 401},
		{"GET", "/api/v1/agents", "viewer", nil, 200},
		{"GET", "/api/v1/ca", "viewer", nil, 200},
		{"GET", "/api/v1/openapi.json", "", nil, 200},
		{"GET", "/metrics", "", nil, 200},
		{"POST", "/api/v1/commands", "viewer", map[string]any{"agent_id": "x", "action": "isolate"}, 403},
		{"PATCH", "/api/v1/incidents/x", "viewer", map[string]any{"comment": "x"}, 403},
		{"POST", "/api/v1/commands", "responder", map[string]any{"agent_id": "x", "action": "isolate"}, 404},
		{"GET", "/api/v1/enroll-tokens", "responder", nil, 403},
		{"POST", "/api/v1/enroll-tokens", "responder", map[string]any{}, 403},
		{"GET", "/api/v1/api-keys", "responder", nil, 403},
		{"POST", "/api/v1/agents/x/revoke", "responder", nil, 403},
		{"GET", "/api/v1/enroll-tokens", "admin", nil, 200},
		{"POST", "/api/v1/enroll-tokens", "admin", map[string]any{}, 201},
		{"POST", "/api/v1/api-keys", "admin", map[string]any{"name": "ci", "role": "viewer"}, 201},
		{"GET", "/api/v1/nothing", "admin", nil, 404},
		{"DELETE", "/api/v1/agents", "admin", nil, 405},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s as %s", tt.method, tt.path, tt.key), func(t *testing.T) {
			code, body := e.do(t, tt.method, tt.path, tt.key, tt.body)
			if code != tt.want {
				t.Errorf("status %d, want %d (%v)", code, tt.want, body)
			}
			if code >= 400 && (body == nil || body["error"] == "") {
				t.Errorf("error answer %v has no error message", body)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	var created []string
	for range 5 {
		code, body := e.do(t, "POST", "/api/v1/enroll-tokens", "admin", map[string]any{"ttl": "1h", "uses": 2, "tags": map[string]string{"env": "prod"}})
		if code != 201 || !strings.HasPrefix(body["token"].(string), "cdt_") || body["uses"] != 2.0 {
			t.Fatalf("create: %d %v", code, body)
		}
		created = append(created, body["id"].(string))
	}
	// The token from newEnv is the oldest.
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		code, body := e.do(t, "GET", "/api/v1/enroll-tokens?limit=2&cursor="+cursor, "admin", nil)
		if code != 200 {
			t.Fatalf("list: %d %v", code, body)
		}
		items := body["items"].([]any)
		if len(items) > 2 {
			t.Fatalf("page of %d items", len(items))
		}
		for _, it := range items {
			m := it.(map[string]any)
			if _, leaked := m["token"]; leaked {
				t.Error("listing shows the token")
			}
			got = append(got, m["id"].(string))
		}
		cursor = body["next"].(string)
		if cursor == "" {
			break
		}
	}
	slices.Reverse(created)
	if len(got) != 6 || !slices.Equal(got[:5], created) {
		t.Errorf("listed %v, want %v then the first token", got, created)
	}
	for _, q := range []string{"limit=0", "limit=x", "cursor=%21%21"} {
		code, body := e.do(t, "GET", "/api/v1/enroll-tokens?"+q, "admin", nil)
		field := strings.SplitN(q, "=", 2)[0]
		if code != 400 || body["field"] != field {
			t.Errorf("%s: %d %v, want 400 on %s", q, code, body, field)
		}
	}
	if code, body := e.do(t, "GET", "/api/v1/agents", "viewer", nil); code != 200 || len(body["items"].([]any)) != 1 || body["next"] != "" {
		t.Errorf("agents: %d %v", code, body)
	}
	// An empty listing is an empty array.
	if code, body := e.do(t, "GET", "/api/v1/commands", "viewer", nil); code != 200 || body["items"] == nil {
		t.Errorf("empty commands listing: %d %v", code, body)
	}
}

func TestIncidentPatch(t *testing.T) {
	e := newEnv(t)
	fid := e.finding(t, "critical")

	code, body := e.do(t, "GET", "/api/v1/findings?incident=", "viewer", nil)
	if code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("findings: %d %v", code, body)
	}
	f := body["items"].([]any)[0].(map[string]any)
	id := f["incident_id"].(string)
	if f["id"] != fid || f["hostname"] != "web-1" {
		t.Errorf("finding %v", f)
	}
	code, body = e.do(t, "GET", "/api/v1/incidents?agent="+e.agentID+"&status=new", "viewer", nil)
	if code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("incidents: %d %v", code, body)
	}
	inc := body["items"].([]any)[0].(map[string]any)
	if inc["priority"] != "P1" || inc["asset_criticality"] != "high" || inc["title"] != "Reverse shell on web-1" {
		t.Errorf("incident %v", inc)
	}

	steps := []struct {
		body  any
		want  int
		field string
	}{
		{map[string]any{"status": "triage", "assignee": "bob"}, 200, ""},
		{map[string]any{"status": "new"}, 200, ""},
		{map[string]any{"status": "contained"}, 409, "status"},
		{map[string]any{"impact": 2}, 400, "comment"},
		{map[string]any{"check": "triage"}, 400, "check"},
		{map[string]any{"approve": "isolate-hosts/a1"}, 400, "approve"},
		{map[string]any{"status": "contained", "comment": "account disabled"}, 200, ""},
		{map[string]any{"status": "triage"}, 409, "status"},
		{map[string]any{"status": "closed"}, 409, "status"},
		{map[string]any{"status": "finished"}, 400, "status"},
		{map[string]any{"impact": 9}, 400, "impact"},
		{map[string]any{"impact": "high"}, 400, "impact"},
		{map[string]any{"severity": "low"}, 400, "severity"},
		{`{"comment": `, 400, ""},
		{map[string]any{}, 400, ""},
		{map[string]any{"status": "closed", "review": map[string]any{"root_cause": "phishing", "lessons_learned": "training", "follow_up_actions": []string{"MFA"}}}, 200, ""},
		{map[string]any{"status": "recovered"}, 409, "status"},
	}
	for i, st := range steps {
		code, body := e.do(t, "PATCH", "/api/v1/incidents/"+id, "responder", st.body)
		if code != st.want || (st.field != "" && body["field"] != st.field) {
			t.Errorf("step %d %v: %d %v, want %d on %q", i, st.body, code, body, st.want, st.field)
		}
	}
	code, body = e.do(t, "GET", "/api/v1/incidents/"+id, "viewer", nil)
	if code != 200 || body["status"] != "closed" || body["closed_at"] == nil || body["acknowledged_at"] == nil || body["assignee"] != "bob" {
		t.Errorf("closed incident: %d %v", code, body)
	}
	timeline := body["timeline"].([]any)
	last := timeline[len(timeline)-1].(map[string]any)
	if last["actor"] != "responder-key" || last["action"] != "status_changed" {
		t.Errorf("last timeline entry %v", last)
	}
	if code, body := e.do(t, "PATCH", "/api/v1/incidents/nope", "responder", map[string]any{"comment": "x"}); code != 404 {
		t.Errorf("unknown incident: %d %v", code, body)
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t)
	e.finding(t, "high")
	_, body := e.do(t, "GET", "/api/v1/incidents", "viewer", nil)
	incID := body["items"].([]any)[0].(map[string]any)["id"].(string)

	tests := []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"isolate", map[string]any{"agent_id": e.agentID, "action": "isolate", "reason": "c2 beacon", "incident_id": incID}, 201, ""},
		{"kill with numeric pid", map[string]any{"agent_id": e.agentID, "action": "kill", "args": map[string]any{"pid": 4242}, "ttl": "5m"}, 201, ""},
		{"kill without pid", map[string]any{"agent_id": e.agentID, "action": "kill"}, 400, "args.pid"},
		{"object arg", map[string]any{"agent_id": e.agentID, "action": "collect", "args": map[string]any{"x": map[string]any{}}}, 400, "args.x"},
		{"unknown action", map[string]any{"agent_id": e.agentID, "action": "reboot"}, 400, "action"},
		{"bad ttl", map[string]any{"agent_id": e.agentID, "action": "isolate", "ttl": "soon"}, 400, "ttl"},
		{"missing agent", map[string]any{"action": "isolate"}, 400, "agent_id"},
		{"unknown agent", map[string]any{"agent_id": uuid.NewString(), "action": "isolate"}, 404, "agent_id"},
		{"unknown incident", map[string]any{"agent_id": e.agentID, "action": "isolate", "incident_id": "nope"}, 404, "incident_id"},
		{"unknown field", map[string]any{"agent_id": e.agentID, "action": "isolate", "priority": 1}, 400, "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do(t, "POST", "/api/v1/commands", "responder", tt.body)
			if code != tt.want || (tt.field != "" && body["field"] != tt.field) {
				t.Errorf("%d %v, want %d on %q", code, body, tt.want, tt.field)
			}
			if code == 201 && (body["status"] != "pending" || body["requested_by"] != "responder-key" || body["expires_at"] == nil) {
				t.Errorf("command %v", body)
			}
		})
	}
	code, body := e.do(t, "GET", "/api/v1/commands?agent="+e.agentID+"&status=pending", "viewer", nil)
	if code != 200 || len(body["items"].([]any)) != 2 {
		t.Fatalf("commands: %d %v", code, body)
	}
	kill := body["items"].([]any)[0].(map[string]any)
	if kill["action"] != "kill" || kill["args"].(map[string]any)["pid"] != "4242" {
		t.Errorf("newest command %v", kill)
	}
	if code, _ := e.do(t, "GET", "/api/v1/commands/"+kill["id"].(string), "viewer", nil); code != 200 {
		t.Errorf("get command: %d", code)
	}
	_, body = e.do(t, "GET", "/api/v1/incidents/"+incID, "viewer", nil)
	tl := body["timeline"].([]any)
	if last := tl[len(tl)-1].(map[string]any); last["action"] != "command_requested" || !strings.Contains(last["detail"].(string), "isolate on web-1") {
		t.Errorf("incident timeline ends with %v", last)
	}

	// Revoked agents take no commands.
	if code, body := e.do(t, "POST", "/api/v1/agents/"+e.agentID+"/revoke", "admin", nil); code != 200 || body["revoked"] != true {
		t.Fatalf("revoke: %d %v", code, body)
	}
	code, body = e.do(t, "POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "release"})
	if code != 409 || body["field"] != "agent_id" {
		t.Errorf("command for a revoked agent: %d %v", code, body)
	}
	if code, _ := e.do(t, "POST", "/api/v1/agents/"+uuid.NewString()+"/revoke", "admin", nil); code != 404 {
		t.Errorf("revoking an unknown agent: %d", code)
	}
}

func TestKeysAndCA(t *testing.T) {
	e := newEnv(t)
	code, body := e.do(t, "POST", "/api/v1/api-keys", "admin", map[string]any{"name": "soc", "role": "responder"})
	if code != 201 || !strings.HasPrefix(body["key"].(string), "cdk_") {
		t.Fatalf("create key: %d %v", code, body)
	}
	newKey := body["key"].(string)
	if code, _ := e.do(t, "POST", "/api/v1/commands", newKey, map[string]any{"agent_id": e.agentID, "action": "isolate"}); code != 201 {
		t.Errorf("new responder key: %d", code)
	}
	if code, body := e.do(t, "POST", "/api/v1/api-keys", "admin", map[string]any{"name": "x", "role": "root"}); code != 400 || body["field"] != "role" {
		t.Errorf("bad role: %d %v", code, body)
	}
	code, body = e.do(t, "GET", "/api/v1/api-keys", "admin", nil)
	if code != 200 || len(body["items"].([]any)) != 4 {
		t.Errorf("keys: %d %v", code, body)
	}
	for _, it := range body["items"].([]any) {
		if _, leaked := it.(map[string]any)["key"]; leaked {
			t.Error("listing shows a key")
		}
	}
	code, body = e.do(t, "GET", "/api/v1/ca", "viewer", nil)
	if code != 200 || body["pin"] != protocol.CAPin(caDER) || !strings.Contains(body["certificate"].(string), "BEGIN CERTIFICATE") {
		t.Errorf("ca: %d %v", code, body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.finding(t, "low")
	e.do(t, "GET", "/api/v1/agents", "", nil)
	_, c := e.do(t, "POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "drill"})
	if err := e.commands.Finished(context.Background(), e.agentID, &protocol.CommandResult{Id: c["id"].(string), Ok: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"# TYPE cordon_findings_stored_total counter\ncordon_findings_stored_total 1\n",
		"cordon_findings_duplicates_total 0\n",
		"cordon_incidents_opened_total 1\n",
		"# TYPE cordon_incident_engine_backlog gauge\ncordon_incident_engine_backlog 0\n",
		"# TYPE cordon_agents_online gauge\ncordon_agents_online 0\n",
		`cordon_api_requests_total{code="401"} 1` + "\n",
		"# TYPE cordon_incidents_open gauge\ncordon_incidents_open 1\n",
		"cordon_incidents_mtta_seconds 0\n",
		"cordon_incidents_acknowledge_breaches 0\n",
		"# TYPE cordon_incidents gauge\ncordon_incidents{status=\"new\",priority=\"P3\"} 1\n",
		"# TYPE cordon_command_latency_seconds histogram\n",
		`cordon_command_latency_seconds_bucket{action="drill",le="+Inf"} 1` + "\n",
		`cordon_command_latency_seconds_count{action="drill"} 1` + "\n",
		"cordon_event_streams 0\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
	if !strings.Contains(string(b), "cordon_incidents_mttd_seconds ") {
		t.Errorf("metrics lack MTTD:\n%s", b)
	}

	code, body := e.do(t, "GET", "/api/v1/incidents/stats", "viewer", nil)
	real, _ := body["real"].(map[string]any)
	drill, _ := body["drill"].(map[string]any)
	if code != 200 || real["incidents"] != 1.0 || real["open"] != 1.0 || drill["incidents"] != 0.0 {
		t.Errorf("stats: %d %v", code, body)
	}
}

// TestOpenAPIMatchesRoutes holds the OpenAPI document to the routes the
// mux serves, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			opm, _ := op.(map[string]any)
			sec, hasSec := opm["security"].([]any)
			public := hasSec && len(sec) == 0
			for _, rt := range routes {
				if rt.pattern == strings.ToUpper(method)+" "+path && (rt.role == "") != public {
					t.Errorf("%s: route needs role %q but the document says public=%v", rt.pattern, rt.role, public)
				}
			}
		}
	}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.pattern] = true
		if !documented[rt.pattern] {
			t.Errorf("route %s is not in openapi.json", rt.pattern)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("openapi.json documents %s, which no route serves", op)
		}
	}
	// Every route is registered on the mux.
	s := New(Config{Logger: quiet}).(*server)
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{id}", "x").Replace(path)
		if _, pattern := s.mux.Handler(httptest.NewRequest(method, path, nil)); pattern != rt.pattern {
			t.Errorf("%s %s is served by %q, want %q", method, path, pattern, rt.pattern)
		}
	}
}
