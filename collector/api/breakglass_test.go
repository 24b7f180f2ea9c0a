package api

import (
	"net/http/httptest"
	"testing"

	"github.com/cordon-edr/cordon/protocol"
)

func TestBreakGlass(t *testing.T) {
	e := newEnv(t)
	// Without a code source the endpoint says so and isolate carries none.
	if code, _ := e.do(t, "GET", "/api/v1/agents/"+e.agentID+"/break-glass", "admin", nil); code != 404 {
		t.Errorf("break-glass without codes: %d", code)
	}
	cfg := e.cfg
	cfg.BreakGlass = func(id string) (string, error) { return "code-of-" + id, nil }
	e.srv.Close()
	e.srv = httptest.NewServer(New(cfg))
	t.Cleanup(e.srv.Close)

	for _, role := range []string{"viewer", "responder"} {
		if code, _ := e.do(t, "GET", "/api/v1/agents/"+e.agentID+"/break-glass", role, nil); code != 403 {
			t.Errorf("%s read the break-glass code: %d", role, code)
		}
	}
	code, body := e.do(t, "GET", "/api/v1/agents/"+e.agentID+"/break-glass", "admin", nil)
	if code != 200 || body["code"] != "code-of-"+e.agentID || body["agent_id"] != e.agentID {
		t.Fatalf("break-glass: %d %v", code, body)
	}
	if code, _ := e.do(t, "GET", "/api/v1/agents/nope/break-glass", "admin", nil); code != 404 {
		t.Errorf("break-glass of an unknown agent: %d", code)
	}
	code, body = e.do(t, "POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "isolate", "reason": "test"})
	if code != 201 {
		t.Fatalf("isolate: %d %v", code, body)
	}
	if got := body["args"].(map[string]any)[protocol.ArgBreakGlassSHA256]; got != protocol.BreakGlassHash("code-of-"+e.agentID) {
		t.Errorf("isolate carries break-glass hash %v", got)
	}
	code, body = e.do(t, "POST", "/api/v1/commands", "responder", map[string]any{"agent_id": e.agentID, "action": "release"})
	if _, ok := body["args"].(map[string]any)[protocol.ArgBreakGlassSHA256]; code != 201 || ok {
		t.Errorf("release carries a break-glass hash: %d %v", code, body)
	}
}
