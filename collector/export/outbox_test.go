package export

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
)

// receiver is a webhook receiver that checks signatures the way
// docs/exports.md tells a security team to, and fails the first fail
// requests with 500.
type receiver struct {
	t      *testing.T
	secret string

	mu       sync.Mutex
	fail     int
	requests int
	got      []map[string]any // accepted bodies, in order
	ids      map[string]int   // X-Cordon-Delivery → times accepted
}

func newReceiver(t *testing.T, secret string, fail int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, fail: fail, ids: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender gave up mid-body (e.g. the collector stopping).
		http.Error(w, "truncated body", http.StatusBadRequest)
		return
	}
	// Verify: recompute the HMAC over timestamp "." body, compare in
	// constant time, and refuse stale timestamps.
	ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		rc.t.Errorf("bad or stale %s %q", HeaderTimestamp, r.Header.Get(HeaderTimestamp))
		http.Error(w, "stale", http.StatusUnauthorized)
		return
	}
	if want := Sign(rc.secret, ts, body); !hmac.Equal([]byte(want), []byte(r.Header.Get(HeaderSignature))) {
		rc.t.Errorf("signature %q, want %q", r.Header.Get(HeaderSignature), want)
		http.Error(w, "forged", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "busy", http.StatusInternalServerError)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		rc.t.Errorf("body is not JSON: %v", err)
	}
	rc.got = append(rc.got, doc)
	rc.ids[r.Header.Get(HeaderDelivery)]++
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) accepted() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got...)
}

func fast(c SinkConfig) SinkConfig {
	c.RetryInitial, c.RetryMax = 5*time.Millisecond, 40*time.Millisecond
	return c
}

// TestWebhookRetryAndOrder: the receiver answers 500 for a while; every
// event arrives once it recovers, signed, in the order the changes
// were made.
func TestWebhookRetryAndOrder(t *testing.T) {
	rc, srv := newReceiver(t, "s3cret", 7)
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "soc", Type: TypeWebhook, URL: srv.URL, Secret: "s3cret",
		Events: Kinds}))
	run(t, o)

	inc := sampleIncident()
	f := sampleFinding()
	change(t, o, db, incident.ChangeOpened, inc, f)
	for i := range 5 {
		inc.Assignee = fmt.Sprintf("analyst-%d", i)
		change(t, o, db, incident.ChangeUpdated, inc, nil)
	}
	inc.Status = incident.StatusClosed
	change(t, o, db, incident.ChangeClosed, inc, nil)

	waitFor(t, 10*time.Second, "8 deliveries", func() bool { return len(rc.accepted()) == 8 })
	got := rc.accepted()
	var seq []string
	for _, d := range got {
		md := d["metadata"].(map[string]any)
		s := md["event_code"].(string)
		if a, ok := d["assignee"].(map[string]any); ok {
			s += ":" + a["name"].(string)
		}
		seq = append(seq, s)
	}
	want := []string{"finding", "incident.opened", "incident.updated:analyst-0", "incident.updated:analyst-1",
		"incident.updated:analyst-2", "incident.updated:analyst-3", "incident.updated:analyst-4", "incident.closed:analyst-4"}
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Errorf("delivered in order\n%v\nwant\n%v", seq, want)
	}
	// The receiver has the last event before the outbox records it as
	// delivered: wait for the record.
	var st SinkStatus
	waitFor(t, 10*time.Second, "the outbox to record the last delivery", func() bool {
		st = status(t, o, "soc")
		return st.Queued == 0
	})
	if st.Dead != 0 || st.DeliveredTotal != 8 || st.FailedTotal != 7 {
		t.Errorf("status %+v, want 8 delivered after 7 failures, nothing queued", st)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.ids {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
}

// TestDeadLetterAndReplay: an event that keeps failing is parked after
// max_attempts without holding up the rest; replay sends it again.
func TestDeadLetterAndReplay(t *testing.T) {
	rc, srv := newReceiver(t, "k", 3)
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "soc", Type: TypeWebhook, URL: srv.URL, Secret: "k", MaxAttempts: 3}))
	run(t, o)

	change(t, o, db, incident.ChangeOpened, sampleIncident(), sampleFinding())
	waitFor(t, 5*time.Second, "a dead letter", func() bool { return status(t, o, "soc").Dead == 1 })
	st := status(t, o, "soc")
	if st.DeadLetteredTotal != 1 || st.FailedTotal != 3 || st.Queued != 0 || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	// The queue keeps flowing behind the parked event.
	upd := sampleIncident()
	upd.Assignee = "bob"
	change(t, o, db, incident.ChangeUpdated, upd, nil)
	waitFor(t, 5*time.Second, "the next event", func() bool { return len(rc.accepted()) == 1 })

	n, err := o.Replay(context.Background(), "soc")
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	waitFor(t, 5*time.Second, "the replayed event", func() bool { return len(rc.accepted()) == 2 })
	if got := rc.accepted()[1]["type_uid"]; got != float64(200501) {
		t.Errorf("replayed event type_uid %v, want 200501 (incident opened)", got)
	}
	waitFor(t, 5*time.Second, "the outbox to record the replayed delivery", func() bool { return status(t, o, "soc").Queued == 0 })
	if st := status(t, o, "soc"); st.Dead != 0 {
		t.Errorf("after replay: %+v", st)
	}
	if _, err := o.Replay(context.Background(), "nope"); err == nil {
		t.Error("Replay of an unknown sink succeeded")
	}
}

// TestPermanentErrorParksAtOnce: a 4xx answer is not retried.
func TestPermanentErrorParksAtOnce(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "bad token", http.StatusForbidden)
	}))
	defer srv.Close()
	o, db := newOutbox(t, t.TempDir(), fast(SinkConfig{Name: "soc", Type: TypeWebhook, URL: srv.URL, Secret: "k"}))
	run(t, o)
	change(t, o, db, incident.ChangeOpened, sampleIncident(), nil)
	waitFor(t, 5*time.Second, "a dead letter", func() bool { return status(t, o, "soc").Dead == 1 })
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d calls, want 1", calls)
	}
}

// TestRestartKeepsQueue: events queued while the receiver is down are
// delivered by the next Outbox over the same store.
func TestRestartKeepsQueue(t *testing.T) {
	dir := t.TempDir()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	sink := fast(SinkConfig{Name: "soc", Type: TypeWebhook, URL: down.URL, Secret: "k"})
	o, db := newOutbox(t, dir, sink)
	stop := run(t, o)
	inc := sampleIncident()
	change(t, o, db, incident.ChangeOpened, inc, nil)
	inc.Assignee = "carol"
	change(t, o, db, incident.ChangeUpdated, inc, nil)
	waitFor(t, 5*time.Second, "a failed attempt", func() bool { return status(t, o, "soc").FailedTotal > 0 })
	stop()
	db.Close()
	down.Close()

	rc, up := newReceiver(t, "k", 0)
	sink.URL = up.URL
	o, db = newOutbox(t, dir, sink)
	if st := status(t, o, "soc"); st.Queued != 2 {
		t.Fatalf("after restart %d queued, want 2", st.Queued)
	}
	run(t, o)
	waitFor(t, 5*time.Second, "2 deliveries", func() bool { return len(rc.accepted()) == 2 })
	if rc.accepted()[1]["assignee"].(map[string]any)["name"] != "carol" {
		t.Errorf("out of order: %v", rc.accepted())
	}
}

// TestFilters: events, min_priority, min_severity and include_drills.
func TestFilters(t *testing.T) {
	drillInc := sampleIncident()
	drillInc.Drill = true
	drillF := sampleFinding()
	drillF.Drill = true
	p4 := sampleIncident()
	p4.Priority = "P4"
	low := sampleFinding()
	low.Severity = "low"
	cases := []struct {
		name string
		cfg  SinkConfig
		ev   Event
		want bool
	}{
		{"opened by default", SinkConfig{}, Event{Kind: KindIncidentOpened, Incident: sampleIncident()}, true},
		{"no findings by default", SinkConfig{}, Event{Kind: KindFinding, Finding: sampleFinding()}, false},
		{"findings when asked", SinkConfig{Events: []string{KindFinding}}, Event{Kind: KindFinding, Finding: sampleFinding()}, true},
		{"drill incident stays", SinkConfig{}, Event{Kind: KindIncidentOpened, Incident: drillInc}, false},
		{"drill finding stays", SinkConfig{Events: []string{KindFinding}}, Event{Kind: KindFinding, Finding: drillF}, false},
		{"drill leaves when asked", SinkConfig{IncludeDrills: true}, Event{Kind: KindIncidentOpened, Incident: drillInc}, true},
		{"P2 at min P3", SinkConfig{MinPriority: "P3"}, Event{Kind: KindIncidentUpdated, Incident: sampleIncident()}, true},
		{"P4 under min P3", SinkConfig{MinPriority: "P3"}, Event{Kind: KindIncidentUpdated, Incident: p4}, false},
		{"high at min high", SinkConfig{Events: []string{KindFinding}, MinSeverity: "high"}, Event{Kind: KindFinding, Finding: sampleFinding()}, true},
		{"low under min medium", SinkConfig{Events: []string{KindFinding}, MinSeverity: "medium"}, Event{Kind: KindFinding, Finding: low}, false},
		{"commands not by default", SinkConfig{}, Event{Kind: KindCommandQueued, Command: &command.Command{Action: "isolate"}}, false},
		{"commands when asked", SinkConfig{Events: []string{KindCommandFinished}}, Event{Kind: KindCommandFinished, Command: &command.Command{Action: "isolate"}}, true},
		{"drill command stays", SinkConfig{Events: []string{KindCommandQueued}}, Event{Kind: KindCommandQueued, Command: &command.Command{Action: "drill"}}, false},
		{"drill command leaves when asked", SinkConfig{Events: []string{KindCommandQueued}, IncludeDrills: true}, Event{Kind: KindCommandQueued, Command: &command.Command{Action: "drill"}}, true},
		{"closed not asked", SinkConfig{Events: []string{KindIncidentOpened}}, Event{Kind: KindIncidentClosed, Incident: sampleIncident()}, false},
	}
	for _, c := range cases {
		c.cfg.Name, c.cfg.Type, c.cfg.URL, c.cfg.Secret = "x", TypeWebhook, "http://127.0.0.1:1/", "k"
		if err := Validate([]SinkConfig{c.cfg}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cfg := c.cfg
		if err := cfg.validate(0); err != nil {
			t.Fatal(err)
		}
		if got := cfg.wants(&c.ev); got != c.want {
			t.Errorf("%s: wants = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := SinkConfig{RetryInitial: time.Second, RetryMax: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		got := backoff(&c, n)
		if got > want || got < want*4/5 {
			t.Errorf("backoff(%d) = %s, want %s less at most a fifth", n, got, want)
		}
	}
}
