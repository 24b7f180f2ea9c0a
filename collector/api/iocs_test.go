package api

import (
	"strings"
	"testing"
)

func TestPushIocs(t *testing.T) {
	e := newEnv(t)
	if code, body := e.do(t, "GET", "/api/v1/iocs", "viewer", nil); code != 200 || body["version"] != "" || body["indicators"] != float64(0) {
		t.Fatalf("before any push: %d %v", code, body)
	}
	good := "type,value,severity,note\nip,203.0.113.7,high,c2\npath,/tmp/x,,\n"
	if code, _ := e.do(t, "POST", "/api/v1/iocs", "responder", map[string]any{"name": "a.csv", "content": good}); code != 403 {
		t.Errorf("a responder pushed a set: %d", code)
	}
	code, body := e.do(t, "POST", "/api/v1/iocs", "admin", map[string]any{"name": "a.csv", "content": good})
	if code != 201 || !strings.HasPrefix(body["version"].(string), "1-") || body["indicators"] != float64(2) || body["pushed_by"] != "admin-key" || body["name"] != "a.csv" {
		t.Fatalf("push: %d %v", code, body)
	}
	version := body["version"]

	code, body = e.do(t, "POST", "/api/v1/iocs", "admin", map[string]any{"name": "b.csv", "content": good + "sha256,abc,high,\n"})
	problems, _ := body["problems"].([]any)
	if code != 400 || body["field"] != "content" || len(problems) != 1 {
		t.Fatalf("bad push: %d %v", code, body)
	}
	if p := problems[0].(map[string]any); p["line"] != float64(4) || !strings.Contains(p["reason"].(string), "64 hex digits") {
		t.Errorf("problem %v, want 64 hex digits on line 4", p)
	}
	if code, body := e.do(t, "POST", "/api/v1/iocs", "admin", map[string]any{"name": "b.csv"}); code != 400 || body["field"] != "content" {
		t.Errorf("push without content: %d %v", code, body)
	}
	if code, body := e.do(t, "GET", "/api/v1/iocs", "viewer", nil); code != 200 || body["version"] != version || body["types"].(map[string]any)["ip"] != float64(1) {
		t.Errorf("after a refused push: %d %v, want version %v still", code, body, version)
	}
	_, au := e.do(t, "GET", "/api/v1/audit?action=iocs.push", "admin", nil)
	items := au["items"].([]any)
	if len(items) < 2 {
		t.Fatalf("audit has %d iocs.push entries: %v", len(items), au)
	}
	var sawRefused bool
	for _, it := range items {
		m := it.(map[string]any)
		if m["status"] == float64(400) && strings.Contains(m["detail"].(string), "line 4") {
			sawRefused = true
		}
	}
	if !sawRefused {
		t.Errorf("the refused push is not audited with its line: %v", items)
	}
}
