package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook receiver written the way docs/exports.md
// tells a security team to: it checks X-Cordon-Signature against the
// shared secret and the timestamp's age, and answers 503 while down.
type hookReceiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	down   bool
	events []map[string]any
	ids    map[string]int
}

func newHookReceiver(t *testing.T, secret string, down bool) *hookReceiver {
	h := &hookReceiver{t: t, secret: secret, down: down, ids: map[string]int{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender gave up mid-body (e.g. the collector stopping).
		http.Error(w, "truncated body", http.StatusBadRequest)
		return
	}
	ts := r.Header.Get("X-Cordon-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		h.t.Errorf("stale or missing timestamp %q", ts)
		http.Error(w, "stale", http.StatusUnauthorized)
		return
	}
	mac := hmac.New(sha256.New, []byte(h.secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Cordon-Signature"))) {
		h.t.Errorf("bad signature %q for %s (secret %s), ts %s, body %d bytes: %.300s", r.Header.Get("X-Cordon-Signature"), r.Header.Get("X-Cordon-Event"), h.secret, ts, len(body), body)
		http.Error(w, "forged", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		h.t.Errorf("not JSON: %v", err)
	}
	h.events = append(h.events, doc)
	h.ids[r.Header.Get("X-Cordon-Delivery")]++
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *hookReceiver) got() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...)
}

type sinkJSON struct {
	Name           string `json:"name"`
	Queued         int    `json:"queued"`
	Dead           int    `json:"dead_lettered"`
	DeliveredTotal int    `json:"delivered_total"`
	FailedTotal    int    `json:"failed_total"`
	LastError      string `json:"last_error"`
}

func (c *collector) sinks(t *testing.T) map[string]sinkJSON {
	t.Helper()
	var list []sinkJSON
	c.ctlJSON(t, &list, "exports", "status", "--json")
	m := map[string]sinkJSON{}
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

// A drill incident is exported to the sinks that ask for drills while
// the receiver is down; the collector is stopped with the events still
// queued and started again; once the receiver is back every event
// arrives, signed, once, in order. A sink that parks events after one
// attempt gets them with cordonctl exports replay, and a sink without
// include_drills gets nothing.
func TestExportsSurviveRestart(t *testing.T) {
	soc := newHookReceiver(t, "soc-secret", true)
	flaky := newHookReceiver(t, "flaky-secret", true)
	quiet := newHookReceiver(t, "quiet-secret", false)
	// Splunk HEC and TheHive stand-ins that keep what they accept.
	var mu sync.Mutex
	var hecEvents, hiveAlerts []map[string]any
	keep := func(path, auth string, into *[]map[string]any, answer string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var doc map[string]any
			if r.URL.Path != path || r.Header.Get("Authorization") != auth || json.NewDecoder(r.Body).Decode(&doc) != nil {
				t.Errorf("%s %s with %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			mu.Lock()
			*into = append(*into, doc)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, answer)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	hec := keep("/services/collector/event", "Splunk hec-token", &hecEvents, `{"text":"Success","code":0}`)
	hive := keep("/api/v1/alert", "Bearer hive-key", &hiveAlerts, `{"_id":"~1"}`)
	dir := t.TempDir()
	config := collectorConfig(t, fmt.Sprintf(`exports:
  - name: soc
    type: webhook
    url: %s/hook
    secret: soc-secret
    include_drills: true
    events: [incident.opened, incident.updated, incident.closed, finding, command.requested, command.finished]
    retry_initial: 100ms
    retry_max: 400ms
  - name: flaky
    type: webhook
    url: %s/hook
    secret: flaky-secret
    include_drills: true
    max_attempts: 1
  - name: quiet
    type: webhook
    url: %s/hook
    secret: quiet-secret
    events: [incident.opened, incident.updated, incident.closed, finding]
  - name: archive
    type: file
    path: %s
    include_drills: true
  - { name: splunk, type: splunk_hec, url: "%s", token: hec-token, include_drills: true, format: ecs }
  - { name: hive, type: thehive, url: "%s", token: hive-key, include_drills: true }
`, soc.srv.URL, flaky.srv.URL, quiet.srv.URL, filepath.Join(dir, "exports", "cordon.jsonl"), hec.URL, hive.URL))
	data := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	c := startCollectorWith(t, config, data, listen, api)

	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)
	if out, err := c.ctl("drill", id, "--wait"); err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	var inc incidentJSON
	eventually(t, 30*time.Second, "a drill incident", func() error {
		var incs []incidentJSON
		c.ctlJSON(t, &incs, "incidents", "--json")
		for _, i := range incs {
			if i.Drill {
				inc = i
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	if out, err := c.ctl("incident", "update", inc.ID, "--assignee", "alice"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var queued int
	eventually(t, 30*time.Second, "queued events that failed to deliver", func() error {
		s := c.sinks(t)
		if s["soc"].FailedTotal == 0 || s["soc"].Queued < 3 || s["flaky"].Dead == 0 || s["archive"].DeliveredTotal < 2 {
			return fmt.Errorf("%+v", s)
		}
		queued = s["soc"].Queued
		return nil
	})

	c.stop()
	c = startCollectorWith(t, config, data, listen, api)
	if s := c.sinks(t); s["soc"].Queued < queued {
		t.Fatalf("after the restart %d events queued for soc, want at least the %d left before", s["soc"].Queued, queued)
	}
	// The agent keeps reporting real detections (cordonctl runs from a
	// temporary folder), so more events join the queue meanwhile.
	soc.setDown(false)
	eventually(t, 30*time.Second, "an empty queue for soc", func() error {
		if n := len(soc.got()); n < queued {
			return fmt.Errorf("%d events arrived", n)
		}
		if s := c.sinks(t); s["soc"].Queued != 0 {
			return fmt.Errorf("%d still queued", s["soc"].Queued)
		}
		return nil
	})
	got := soc.got()
	// Every event arrived once; per incident, in the order it happened:
	// opened first, then its updates with non-decreasing times.
	byIncident := map[string][]map[string]any{}
	for _, ev := range got {
		md, _ := ev["metadata"].(map[string]any)
		if ev["class_uid"] == float64(2005) {
			uid, _ := md["correlation_uid"].(string)
			byIncident[uid] = append(byIncident[uid], ev)
		}
	}
	for uid, evs := range byIncident {
		if evs[0]["activity_id"] != float64(1) {
			t.Errorf("incident %s: first event has activity %v, want 1 (opened)", uid, evs[0]["activity_id"])
		}
		for i := 1; i < len(evs); i++ {
			if evs[i]["time"].(float64) < evs[i-1]["time"].(float64) {
				t.Errorf("incident %s: event %d is older than the one before", uid, i)
			}
		}
	}
	// The drill command, requested and finished.
	var drillCommand []string
	for _, ev := range got {
		um, _ := ev["unmapped"].(map[string]any)
		cd, _ := um["cordon"].(map[string]any)
		if ev["class_uid"] == float64(7001) && cd["action"] == "drill" {
			drillCommand = append(drillCommand, cd["status"].(string))
		}
	}
	if fmt.Sprint(drillCommand) != "[pending succeeded]" {
		t.Errorf("drill command events %v, want [pending succeeded]", drillCommand)
	}
	drillEvents := byIncident[inc.ID]
	if len(drillEvents) < 2 {
		t.Fatalf("the drill incident arrived as %d events, want opened and updated", len(drillEvents))
	}
	if a, _ := drillEvents[len(drillEvents)-1]["assignee"].(map[string]any); a["name"] != "alice" {
		t.Errorf("last drill incident event %v, want the update assigning alice", drillEvents[len(drillEvents)-1])
	}
	soc.mu.Lock()
	for id, n := range soc.ids {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	soc.mu.Unlock()

	// The parked events of flaky come back with a replay.
	dead := c.sinks(t)["flaky"].Dead
	flaky.setDown(false)
	out, err := c.ctl("exports", "replay", "flaky")
	if err != nil || !strings.Contains(out, "events moved") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "the replayed events", func() error {
		if n := len(flaky.got()); n < dead {
			return fmt.Errorf("%d of %d", n, dead)
		}
		return nil
	})
	if _, err := c.ctl("exports", "replay", "nope"); err == nil {
		t.Error("replay of an unknown sink succeeded")
	}

	// Real incidents reach the sink without include_drills; drills never.
	for _, ev := range quiet.got() {
		um, _ := ev["unmapped"].(map[string]any)
		cd, _ := um["cordon"].(map[string]any)
		if cd["drill"] != false {
			t.Errorf("the sink without include_drills received %v", ev)
		}
	}
	lines, err := os.ReadFile(filepath.Join(dir, "exports", "cordon.jsonl"))
	if err != nil || !strings.Contains(string(lines), inc.ID) {
		t.Errorf("archive file has no drill incident: %v\n%s", err, lines)
	}

	eventually(t, 30*time.Second, "the drill incident at Splunk and TheHive", func() error {
		mu.Lock()
		defer mu.Unlock()
		var atHEC, atHive bool
		for _, e := range hecEvents {
			ev, _ := e["event"].(map[string]any)
			cd, _ := ev["cordon"].(map[string]any)
			in, _ := cd["incident"].(map[string]any)
			atHEC = atHEC || in["id"] == inc.ID
		}
		for _, a := range hiveAlerts {
			atHive = atHive || a["sourceRef"] == inc.ID && a["type"] == "cordon-incident"
		}
		if !atHEC || !atHive {
			return fmt.Errorf("at HEC %v, at TheHive %v", atHEC, atHive)
		}
		return nil
	})

	table, err := c.ctl("exports", "status")
	if err != nil || !strings.Contains(table, "soc") || !strings.Contains(table, "webhook") {
		t.Errorf("exports status: %v\n%s", err, table)
	}
	resp, err := http.Get("http://" + c.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cordon_export_delivered_total{sink="soc",type="webhook"} [1-9]`,
		`cordon_export_queue_depth{sink="archive",type="file"} \d+`,
		`cordon_export_dead_letter_depth{sink="flaky",type="webhook"} \d+`,
		`cordon_export_failed_total{sink="flaky",type="webhook"} \d+`,
		`cordon_export_dead_lettered_total{sink="quiet",type="webhook"} 0`,
	} {
		if !regexp.MustCompile(want).Match(metrics) {
			t.Errorf("/metrics has no %q:\n%s", want, metrics)
		}
	}
}
