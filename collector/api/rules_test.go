package api

import (
	"strings"
	"testing"
)

const pushedRule = `title: Marker
id: 3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001
logsource:
    category: process_creation
    product: linux
detection:
    selection:
        CommandLine|contains: cordon-marker
    condition: selection
level: high
`

func TestPushRules(t *testing.T) {
	e := newEnv(t)
	if code, body := e.do(t, "GET", "/api/v1/rules", "viewer", nil); code != 200 || body["version"] != "" || body["rules"] != float64(0) {
		t.Fatalf("before any push: %d %v", code, body)
	}
	push := func(files ...map[string]any) (int, map[string]any) {
		return e.do(t, "POST", "/api/v1/rules", "admin", map[string]any{"files": files})
	}
	code, body := push(map[string]any{"name": "marker.yml", "content": pushedRule})
	if code != 201 || !strings.HasPrefix(body["version"].(string), "1-") || body["rules"] != float64(1) || body["pushed_by"] != "admin-key" {
		t.Fatalf("push: %d %v", code, body)
	}
	version := body["version"]

	broken := strings.Replace(pushedRule, "CommandLine|contains", "CommandLine|containz", 1)
	code, body = push(map[string]any{"name": "marker.yml", "content": pushedRule}, map[string]any{"name": "team/broken.yml", "content": broken})
	problems, _ := body["problems"].([]any)
	if code != 400 || body["field"] != "files" || len(problems) != 1 {
		t.Fatalf("broken push: %d %v", code, body)
	}
	p := problems[0].(map[string]any)
	if p["file"] != "team/broken.yml" || p["line"] != float64(8) || !strings.Contains(p["reason"].(string), "containz") {
		t.Errorf("problem %v, want containz at team/broken.yml:8", p)
	}
	if code, body := e.do(t, "GET", "/api/v1/rules", "viewer", nil); code != 200 || body["version"] != version {
		t.Errorf("after a refused push: %d %v, want version %v still", code, body, version)
	}

	_, au := e.do(t, "GET", "/api/v1/audit?action=rules.push", "admin", nil)
	items := au["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("audit has %d rules.push entries, want 2: %v", len(items), au)
	}
	refused, stored := items[0].(map[string]any), items[1].(map[string]any)
	if refused["status"] != float64(400) || !strings.Contains(refused["detail"].(string), "team/broken.yml:8") {
		t.Errorf("refused push audited as %v", refused)
	}
	if stored["status"] != float64(201) || stored["target"] != version {
		t.Errorf("stored push audited as %v", stored)
	}
}
