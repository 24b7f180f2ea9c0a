package export

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/incident"
)

// TestSplunkHEC checks requests against the documented shape of
// Splunk's HTTP Event Collector: POST /services/collector/event,
// "Authorization: Splunk <token>", a JSON envelope with time, host,
// source, sourcetype, index and event; it answers {"text":"Success",
// "code":0}, and code 9 ("Server is busy") with 503 for the first one.
func TestSplunkHEC(t *testing.T) {
	var mu sync.Mutex
	var events []map[string]any
	busy := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Splunk 11111111-2222-3333-4444-555555555555" {
			t.Errorf("Authorization %q", got)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"text":"Invalid token","code":4}`)
			return
		}
		var env map[string]any
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if busy > 0 {
			busy--
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"text":"Server is busy","code":9}`)
			return
		}
		events = append(events, env)
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "splunk", Type: TypeSplunkHEC, URL: srv.URL + "/",
		Token: "11111111-2222-3333-4444-555555555555", Index: "edr", Events: Kinds}))
	run(t, o)
	change(t, o, db, incident.ChangeOpened, sampleIncident(), sampleFinding())
	waitFor(t, 5*time.Second, "2 events", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 })

	mu.Lock()
	defer mu.Unlock()
	for i, wantClass := range []float64{2004, 2005} {
		env := events[i]
		if _, ok := env["time"].(float64); !ok {
			t.Errorf("time %v is not epoch seconds", env["time"])
		}
		if env["host"] != "web-01" || env["source"] != "cordon" || env["sourcetype"] != "cordon:ocsf" || env["index"] != "edr" {
			t.Errorf("envelope %v", env)
		}
		ev, ok := env["event"].(map[string]any)
		if !ok || ev["class_uid"] != wantClass {
			t.Errorf("event %d: class_uid %v, want %v", i, ev["class_uid"], wantClass)
		}
	}
}

// TestTheHive checks alerts against TheHive 5's alert API: POST
// /api/v1/alert with "Authorization: Bearer <key>", the required type,
// source, sourceRef, title and description, and observables; a second
// delivery of the same alert, answered "already exists", counts as
// delivered.
func TestTheHive(t *testing.T) {
	var mu sync.Mutex
	alerts := map[string]map[string]any{}
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/thehive/api/v1/alert" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer hive-key" {
			t.Errorf("Authorization %q", got)
		}
		var a map[string]any
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Errorf("decoding: %v", err)
		}
		for _, k := range []string{"type", "source", "sourceRef", "title", "description"} {
			if s, _ := a[k].(string); s == "" {
				t.Errorf("alert without %s: %v", k, a)
			}
		}
		if sev, _ := a["severity"].(float64); sev < 1 || sev > 4 {
			t.Errorf("severity %v outside 1 to 4", a["severity"])
		}
		key := a["type"].(string) + "/" + a["source"].(string) + "/" + a["sourceRef"].(string)
		mu.Lock()
		defer mu.Unlock()
		posts++
		if _, dup := alerts[key]; dup {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"type":"CreateError","message":"Alert `+key+` already exists"}`)
			return
		}
		alerts[key] = a
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"_id": "~1234", "_type": "Alert"})
	}))
	defer srv.Close()
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "hive", Type: TypeTheHive, URL: srv.URL + "/thehive",
		Token: "hive-key", Events: []string{KindIncidentOpened, KindFinding}}))
	run(t, o)
	inc, f := sampleIncident(), sampleFinding()
	change(t, o, db, incident.ChangeOpened, inc, f)
	// A redelivery of the same finding (as after a lost answer).
	change(t, o, db, incident.ChangeUpdated, inc, f)
	waitFor(t, 5*time.Second, "3 posts", func() bool { mu.Lock(); defer mu.Unlock(); return posts == 3 })
	waitFor(t, 5*time.Second, "an empty queue", func() bool { return status(t, o, "hive").Queued == 0 })
	if st := status(t, o, "hive"); st.Dead != 0 || st.DeliveredTotal != 3 {
		t.Errorf("status %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	a := alerts["cordon-incident/cordon/"+inc.ID]
	if a == nil {
		t.Fatalf("no incident alert in %v", alerts)
	}
	types := map[string]bool{}
	for _, ob := range a["observables"].([]any) {
		types[ob.(map[string]any)["dataType"].(string)] = true
	}
	for _, want := range []string{"hash", "ip", "hostname"} {
		if !types[want] {
			t.Errorf("no %s observable in %v", want, a["observables"])
		}
	}
	if alerts["cordon-finding/cordon/"+f.ID] == nil {
		t.Errorf("no finding alert")
	}
}

// TestFileRotation writes JSON lines and rotates by size, keeping
// max_files old files.
func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "cordon.jsonl")
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "f", Type: TypeFile, Path: path, MaxBytes: 4096, MaxFiles: 2, Format: FormatECS}))
	run(t, o)
	inc := sampleIncident()
	const n = 12
	for i := range n {
		inc.Assignee = strings.Repeat("x", i)
		change(t, o, db, incident.ChangeUpdated, inc, nil)
	}
	waitFor(t, 5*time.Second, "all delivered", func() bool { return status(t, o, "f").DeliveredTotal == n })
	var lines []string
	for _, p := range []string{path + ".2", path + ".1", path} {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		if st.Size() > 4096 {
			t.Errorf("%s is %d bytes, over max_bytes", p, st.Size())
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var doc map[string]any
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				t.Errorf("%s: not a JSON line: %v", p, err)
			}
			lines = append(lines, doc["cordon"].(map[string]any)["incident"].(map[string]any)["assignee"].(string))
		}
		fh.Close()
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more old files than max_files")
	}
	// The oldest were rotated away; what is left is the newest, in order.
	if len(lines) == 0 || lines[len(lines)-1] != strings.Repeat("x", n-1) {
		t.Fatalf("last line %v", lines)
	}
	for i := 1; i < len(lines); i++ {
		if len(lines[i]) != len(lines[i-1])+1 {
			t.Errorf("lines out of order: %q after %q", lines[i], lines[i-1])
		}
	}
}

func TestValidate(t *testing.T) {
	ok := func(c SinkConfig) SinkConfig { return c }
	cases := []struct {
		cfg   SinkConfig
		field string
	}{
		{ok(SinkConfig{Name: "Bad Name", Type: TypeFile, Path: "/x"}), "name"},
		{ok(SinkConfig{Name: "a"}), "type"},
		{ok(SinkConfig{Name: "a", Type: "kafka"}), "type"},
		{ok(SinkConfig{Name: "a", Type: TypeWebhook, Secret: "k"}), "url"},
		{ok(SinkConfig{Name: "a", Type: TypeWebhook, URL: "ftp://x", Secret: "k"}), "url"},
		{ok(SinkConfig{Name: "a", Type: TypeWebhook, URL: "https://x"}), "secret"},
		{ok(SinkConfig{Name: "a", Type: TypeSplunkHEC, URL: "https://x"}), "token"},
		{ok(SinkConfig{Name: "a", Type: TypeTheHive, URL: "https://x", Token: "t", Events: []string{KindIncidentClosed}}), "events"},
		{ok(SinkConfig{Name: "a", Type: TypeTheHive, URL: "https://x", Token: "t", Format: "ocsf"}), "format"},
		{ok(SinkConfig{Name: "a", Type: TypeSyslog}), "address"},
		{ok(SinkConfig{Name: "a", Type: TypeSyslog, Address: "nohost"}), "address"},
		{ok(SinkConfig{Name: "a", Type: TypeSyslog, Address: "h:514", Format: "leef"}), "format"},
		{ok(SinkConfig{Name: "a", Type: TypeSyslog, Address: "h:514", Facility: 24}), "facility"},
		{ok(SinkConfig{Name: "a", Type: TypeFile}), "path"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", Format: FormatCEF}), "format"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", MaxBytes: 10}), "max_bytes"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", Events: []string{"incident.deleted"}}), "events"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", MinPriority: "P0"}), "min_priority"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", MinSeverity: "severe"}), "min_severity"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", MaxAttempts: -1}), "max_attempts"},
		{ok(SinkConfig{Name: "a", Type: TypeFile, Path: "/x", RetryInitial: time.Minute, RetryMax: time.Second}), "retry_max"},
	}
	for _, c := range cases {
		err := Validate([]SinkConfig{c.cfg})
		ce, isCE := err.(*ConfigError)
		if !isCE || ce.Field != c.field {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.field)
		}
	}
	two := []SinkConfig{{Name: "a", Type: TypeFile, Path: "/x"}, {Name: "a", Type: TypeFile, Path: "/y"}}
	if err := Validate(two); err == nil || !strings.Contains(err.Error(), "exports[1].name") {
		t.Errorf("duplicate names: %v", err)
	}
	good := []SinkConfig{{Name: "siem", Type: TypeSyslog, Address: "siem.example:6514", TLS: true, Format: "json"}}
	if err := Validate(good); err != nil {
		t.Fatal(err)
	}
	if good[0].Format != FormatOCSF || good[0].MaxAttempts != DefaultMaxAttempts || good[0].Facility != DefaultFacility {
		t.Errorf("defaults not filled in: %+v", good[0])
	}
}
