package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "cdk_TESTKEYTESTKEYTESTKEYTESTKEY23"

// testNow is the clock of the tests; the fake's times are relative to it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeCADER stands in for the DER of the collector CA certificate.
var fakeCADER = []byte("not really DER, but hashed the same way")

func fakePin() string {
	sum := sha256.Sum256(fakeCADER)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// request is one request the fake received.
type request struct {
	Method string
	Path   string
	Query  string // encoded, keys sorted
	Auth   string
	CType  string
	Body   string
}

func (r request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return s
}

// step is one state a command goes through on successive GETs.
type step struct {
	status string
	result string
}

// fakeAPI implements the endpoints of docs/api.md in memory, pages
// listings two items at a time, and records every request.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []request
	objects  map[string][]any // listing path → items
	commands map[string]*fakeCommand
	nextCmd  int
	// scripts gives, per action, the states a new command goes through,
	// one per GET of the command.
	scripts map[string][]step
	// failures maps "METHOD /path" to a canned error response.
	failures map[string]fakeFailure
	caPin    string
	// dropCommandGETs is how many GETs of a command to answer by closing
	// the connection, as a restarting collector would.
	dropCommandGETs int
}

type fakeCommand struct {
	obj   map[string]any
	steps []step
}

type fakeFailure struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		t:        t,
		commands: map[string]*fakeCommand{},
		failures: map[string]fakeFailure{},
		caPin:    fakePin(),
		scripts: map[string][]step{
			"isolate": {{"delivered", ""}, {"succeeded", "isolated: 3 rules installed"}},
			"release": {{"delivered", ""}, {"succeeded", "released"}},
			"kill":    {{"delivered", ""}, {"failed", "no such process"}},
			"drill":   {{"delivered", ""}, {"succeeded", "drill ran"}},
		},
	}
	ago := func(d time.Duration) string { return testNow.Add(-d).Format(time.RFC3339) }
	f.objects = map[string][]any{
		"/api/v1/agents": {
			map[string]any{"id": "a1", "hostname": "web-1", "os": "linux", "online": true, "isolated": false, "revoked": false,
				"tags": map[string]string{"criticality": "high", "env": "prod"}, "spool_pending": 0, "last_seen": ago(12 * time.Second), "rules_version": "2-5f1c0a9e2b7d", "iocs_version": "1-0c4e"},
			map[string]any{"id": "a2", "hostname": "db-1", "os": "linux", "online": false, "isolated": true, "revoked": false,
				"tags": map[string]string{}, "spool_pending": 4, "last_seen": ago(3 * time.Hour), "rules_version": "", "rules_error": "refused rule set 2-5f1c0a9e2b7d: x.yml:3: bad"},
			map[string]any{"id": "a3", "hostname": "old-1", "os": "linux", "online": false, "isolated": false, "revoked": true,
				"spool_pending": 0},
		},
		"/api/v1/findings": {
			map[string]any{"id": "f1", "agent_id": "a1", "hostname": "web-1", "rule": map[string]any{"id": "r-revshell", "name": "Reverse shell", "version": 2},
				"severity": "critical", "attack": map[string]any{"tactics": []string{"TA0002"}, "techniques": []string{"T1059.004"}},
				"summary": "bash -i >& /dev/tcp", "detected_at": ago(time.Minute), "incident_id": "i1"},
			map[string]any{"id": "f2", "agent_id": "a1", "hostname": "web-1", "rule": map[string]any{"id": "r-cron", "name": "Cron persistence"},
				"severity": "high", "attack": map[string]any{"tactics": []string{"TA0003"}, "techniques": []string{"T1053.003"}},
				"detected_at": ago(2 * time.Minute), "incident_id": "i1"},
			map[string]any{"id": "f3", "agent_id": "a2", "rule": map[string]any{"id": "r-x"},
				"severity": "low", "attack": map[string]any{}, "detected_at": ago(time.Hour)},
		},
		"/api/v1/incidents": {
			map[string]any{"id": "i1", "title": "Reverse shell on web-1 \x1b[31mred", "status": "investigating", "type": "malware", "impact": 2, "urgency": 1,
				"priority": "P1", "asset_criticality": "high", "origin": "internal", "affected_hosts": []string{"a1"}, "affected_users": []string{"www-data"},
				"assignee": "alice", "finding_ids": []string{"f1", "f2"}, "drill": false, "detected_at": ago(time.Minute),
				"timeline": []any{
					map[string]any{"at": ago(time.Minute), "actor": "system", "action": "opened", "detail": "from finding f1"},
					map[string]any{"at": ago(30 * time.Second), "actor": "alice", "action": "status", "detail": map[string]string{"from": "new", "to": "investigating"}},
				},
				"severity": "critical", "tactics": []string{"TA0002"}, "techniques": []string{"T1059.004"}, "indicators": []string{"rule:r-revshell"},
				"overrides": []string{"impact"}, "opened_at": ago(time.Minute),
				"playbook": map[string]any{"type": "malware", "name": "Malicious code response", "source": "embedded:malware.yaml", "dry_run": false,
					"steps": []any{
						map[string]any{"id": "triage", "title": "Confirm the process", "done": true, "done_by": "alice", "done_at": ago(20 * time.Second)},
						map[string]any{"id": "scope", "title": "Look elsewhere", "done": false},
					},
					"actions": []any{map[string]any{"ref": "isolate-hosts/a1", "id": "isolate-hosts", "action": "isolate", "agent_id": "a1", "status": "awaiting_approval", "detail": "waits"}}},
				"sla": map[string]any{"acknowledge_by": ago(-14 * time.Minute), "contain_by": ago(-59 * time.Minute), "acknowledge_breached": false,
					"contain_breached": true, "time_to_detect_seconds": 2, "time_to_acknowledge_seconds": 30},
				"review": map[string]any{"root_cause": "unpatched | web app", "lessons_learned": "patch faster", "follow_up_actions": []string{"patch CMS", "add WAF"}},
				"similar": []any{map[string]any{"id": "i0", "title": "Shell on web-2", "status": "closed", "priority": "P2", "shared": []string{"rule:r-revshell"},
					"review": map[string]any{"root_cause": "old plugin", "lessons_learned": "inventory plugins"}}},
			},
			map[string]any{"id": "i2", "title": "Drill on db-1", "status": "new", "type": "drill", "impact": 3, "urgency": 3, "priority": "P4",
				"affected_hosts": []string{"a2"}, "finding_ids": []string{"f3"}, "drill": true, "detected_at": ago(time.Hour)},
			map[string]any{"id": "i3", "title": "Old", "status": "closed", "type": "other", "priority": "P5", "drill": false},
		},
		"/api/v1/commands": {
			map[string]any{"id": "c-old1", "agent_id": "a1", "action": "isolate", "status": "succeeded", "result": "isolated", "requested_by": "alice", "created_at": ago(time.Hour), "incident_id": "i1", "reason": "contain"},
			map[string]any{"id": "c-old2", "agent_id": "a2", "action": "kill", "status": "failed", "result": map[string]any{"error": "no such process"}, "requested_by": "bob"},
			map[string]any{"id": "c-old3", "agent_id": "a2", "action": "release", "status": "pending"},
		},
		"/api/v1/enroll-tokens": {
			map[string]any{"id": "t1", "expires_at": ago(-time.Hour), "uses": 5, "used": 2, "tags": map[string]string{"env": "prod"}, "created_at": ago(time.Hour)},
		},
		"/api/v1/api-keys": {
			map[string]any{"id": "k1", "name": "admin", "role": "admin", "created_at": ago(time.Hour), "revoked": false},
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query().Encode(),
		Auth: r.Header.Get("Authorization"), CType: r.Header.Get("Content-Type"), Body: string(body),
	})
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		writeFake(w, http.StatusUnauthorized, map[string]string{"error": "missing or unknown API key"})
		return
	}
	if fail, ok := f.failures[r.Method+" "+r.URL.Path]; ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fail.status)
		io.WriteString(w, fail.body)
		return
	}
	path := r.URL.Path
	if f.dropCommandGETs > 0 && r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/commands/") {
		f.dropCommandGETs--
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	switch {
	case r.Method == http.MethodGet && f.objects[path] != nil:
		f.list(w, r, f.objects[path])
	case r.Method == http.MethodGet && path == "/api/v1/incidents/stats":
		writeFake(w, http.StatusOK, map[string]any{
			"real":  map[string]any{"incidents": 3, "open": 2, "mttd_seconds": 4, "mtta_seconds": 90, "mttc_seconds": 3600, "mttr_seconds": 0, "acknowledge_breaches": 1, "contain_breaches": 0},
			"drill": map[string]any{"incidents": 1, "open": 1, "mttd_seconds": 1, "mtta_seconds": 0, "mttc_seconds": 0, "mttr_seconds": 0, "acknowledge_breaches": 0, "contain_breaches": 0},
		})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/incidents/"):
		id := strings.TrimPrefix(path, "/api/v1/incidents/")
		for _, o := range f.objects["/api/v1/incidents"] {
			if o.(map[string]any)["id"] == id {
				writeFake(w, http.StatusOK, o)
				return
			}
		}
		writeFake(w, http.StatusNotFound, map[string]string{"error": "no such incident"})
	case r.Method == http.MethodPatch && strings.HasPrefix(path, "/api/v1/incidents/"):
		var patch map[string]any
		if err := json.Unmarshal(body, &patch); err != nil {
			writeFake(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		in := map[string]any{"id": strings.TrimPrefix(path, "/api/v1/incidents/"), "status": "new", "priority": "P3"}
		for k, v := range patch {
			in[k] = v
		}
		writeFake(w, http.StatusOK, in)
	case r.Method == http.MethodPost && path == "/api/v1/commands":
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			writeFake(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		f.nextCmd++
		action, _ := req["action"].(string)
		obj := map[string]any{"id": "cmd-" + strconv.Itoa(f.nextCmd), "agent_id": req["agent_id"], "action": action,
			"args": req["args"], "reason": req["reason"], "requested_by": "test", "status": "pending",
			"created_at": testNow.Format(time.RFC3339)}
		f.commands[obj["id"].(string)] = &fakeCommand{obj: obj, steps: f.scripts[action]}
		writeFake(w, http.StatusCreated, obj)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/commands/"):
		c := f.commands[strings.TrimPrefix(path, "/api/v1/commands/")]
		if c == nil {
			writeFake(w, http.StatusNotFound, map[string]string{"error": "no such command"})
			return
		}
		if len(c.steps) > 0 {
			c.obj["status"] = c.steps[0].status
			if c.steps[0].result != "" {
				c.obj["result"] = c.steps[0].result
			}
			c.steps = c.steps[1:]
		}
		writeFake(w, http.StatusOK, c.obj)
	case r.Method == http.MethodPost && path == "/api/v1/enroll-tokens":
		var req struct {
			TTL  string            `json:"ttl"`
			Uses int               `json:"uses"`
			Tags map[string]string `json:"tags"`
		}
		json.Unmarshal(body, &req)
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil {
			writeFake(w, http.StatusBadRequest, map[string]string{"error": "bad duration", "field": "ttl"})
			return
		}
		writeFake(w, http.StatusCreated, map[string]any{"id": "t9", "token": "cdt_ENROLLTOKENENROLLTOKENENROLLTO",
			"expires_at": testNow.Add(ttl).Format(time.RFC3339), "uses": req.Uses, "tags": req.Tags})
	case r.Method == http.MethodPost && path == "/api/v1/api-keys":
		var req map[string]string
		json.Unmarshal(body, &req)
		writeFake(w, http.StatusCreated, map[string]any{"id": "k9", "name": req["name"], "role": req["role"],
			"key": "cdk_NEWKEYNEWKEYNEWKEYNEWKEYNEWKEY2", "created_at": testNow.Format(time.RFC3339)})
	case r.Method == http.MethodGet && path == "/api/v1/rules":
		writeFake(w, http.StatusOK, map[string]any{"version": "2-5f1c0a9e2b7d", "rules": 7, "files": []string{"a.yml", "web/b.yml"},
			"pushed_by": "alice", "pushed_at": testNow.Add(-time.Hour).Format(time.RFC3339)})
	case r.Method == http.MethodGet && path == "/api/v1/iocs":
		writeFake(w, http.StatusOK, map[string]any{"version": "1-0c4e", "indicators": 3, "types": map[string]int{"sha256": 2, "domain": 1},
			"name": "feed.txt", "pushed_by": "bob", "pushed_at": testNow.Add(-2 * time.Hour).Format(time.RFC3339)})
	case r.Method == http.MethodGet && path == "/api/v1/ca":
		cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fakeCADER})
		writeFake(w, http.StatusOK, map[string]string{"pin": f.caPin, "certificate": string(cert)})
	default:
		writeFake(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + path})
	}
}

// list serves one page of items: two per page, cursor is the offset.
func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request, items []any) {
	if r.URL.Query().Get("limit") == "" {
		writeFake(w, http.StatusBadRequest, map[string]string{"error": "this fake wants a limit", "field": "limit"})
		return
	}
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > len(items) {
			writeFake(w, http.StatusBadRequest, map[string]string{"error": "bad cursor", "field": "cursor"})
			return
		}
		start = n
	}
	end := min(start+2, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	writeFake(w, http.StatusOK, map[string]any{"items": items[start:end], "next": next})
}

func writeFake(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// runCLI runs cordonctl against the fake with a fixed clock and a fast
// poll interval. env adds to or overrides CORDON_API and CORDON_TOKEN.
func (f *fakeAPI) runCLI(env map[string]string, args ...string) (code int, stdout, stderr string) {
	vars := map[string]string{"CORDON_API": f.srv.URL, "CORDON_TOKEN": testKey}
	for k, v := range env {
		vars[k] = v
	}
	var out, errb bytes.Buffer
	a := &app{
		env:    func(k string) string { return vars[k] },
		stdout: &out,
		stderr: &errb,
		now:    func() time.Time { return testNow },
		poll:   5 * time.Millisecond,
		http:   f.srv.Client(),
	}
	code = a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

func fmtReqs(reqs []request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}
