package export

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
)

var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// sampleFinding is a finding with evidence carrying a hash, addresses
// and a user.
func sampleFinding() *ingest.Finding {
	return &ingest.Finding{
		ID:       "01955a3c-7f00-7000-8000-000000000001",
		AgentID:  "agent-1",
		Hostname: "web-01",
		Rule: ingest.Rule{ID: "cordon.reverse_shell", Name: "Reverse shell", Version: "3",
			References: []string{"https://attack.mitre.org/techniques/T1059/004/"}},
		Severity: ingest.SeverityHigh,
		Attack:   ingest.Attack{Tactics: []string{"TA0002"}, Techniques: []string{"T1059.004"}},
		Summary:  "bash -i with its standard streams on a TCP socket to 203.0.113.7:4444",
		Evidence: json.RawMessage(`[{"@timestamp":"2026-03-14T15:09:25Z","event":{"category":"process","type":"start"},` +
			`"process":{"pid":4242,"executable":"/usr/bin/bash","name":"bash","command_line":"bash -i","user":{"id":"33","name":"www-data"}},` +
			`"file":{"path":"/tmp/x","hash":{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},` +
			`"source":{"ip":"192.0.2.10","port":51515},"destination":{"ip":"203.0.113.7","port":4444}}]`),
		ObservedAt: t0.Add(-time.Second),
		DetectedAt: t0,
		ReceivedAt: t0.Add(time.Second),
		IncidentID: "01955a3c-7f00-7000-8000-0000000000aa",
	}
}

func sampleIncident() *incident.Incident {
	return &incident.Incident{
		ID: "01955a3c-7f00-7000-8000-0000000000aa", Title: "Reverse shell on web-01",
		Status: incident.StatusNew, Type: "execution", Impact: 2, Urgency: 2, Priority: "P2",
		AssetCriticality: "high", Origin: incident.OriginUnknown,
		AffectedHosts: []string{"agent-1"}, AffectedUsers: []string{"www-data"},
		FindingIDs: []string{"01955a3c-7f00-7000-8000-000000000001"},
		Timeline:   []incident.Entry{{At: t0, Actor: "cordon", Action: "opened"}},
		DetectedAt: t0.Add(-time.Second), UpdatedAt: t0.Add(time.Second),
	}
}

// sampleEvents are one event of each kind, with fixed ids and times.
func sampleEvents() map[string]*Event {
	hosts := []Host{{ID: "agent-1", Name: "web-01"}}
	closed := sampleIncident()
	closed.Status, closed.Assignee = incident.StatusFalsePositive, "alice"
	closed.ClosedAt = t0.Add(time.Hour)
	closed.UpdatedAt = closed.ClosedAt
	updated := sampleIncident()
	updated.Status, updated.Assignee = incident.StatusInvestigating, "alice"
	cmd := &command.Command{
		ID: "01955a3c-7f00-7000-8000-0000000000c1", AgentID: "agent-1", Action: command.ActionKill,
		Args: map[string]string{"pid": "4242"}, Reason: "reverse shell", IncidentID: "01955a3c-7f00-7000-8000-0000000000aa",
		RequestedBy: "alice", Status: command.StatusPending, CreatedAt: t0.Add(2 * time.Minute), ExpiresAt: t0.Add(62 * time.Minute),
	}
	done := *cmd
	done.Status, done.Result = command.StatusSucceeded, "killed pid 4242 (bash)"
	done.DeliveredAt, done.FinishedAt = t0.Add(2*time.Minute+time.Second), t0.Add(2*time.Minute+2*time.Second)
	return map[string]*Event{
		"command.requested": {ID: "01955a3c-7f00-7000-8000-0000000000e5", Kind: KindCommandQueued, At: cmd.CreatedAt, Command: cmd, Hosts: hosts},
		"command.finished":  {ID: "01955a3c-7f00-7000-8000-0000000000e6", Kind: KindCommandFinished, At: done.FinishedAt, Command: &done, Hosts: hosts},
		"finding":           {ID: "01955a3c-7f00-7000-8000-0000000000e1", Kind: KindFinding, At: t0.Add(time.Second), Finding: sampleFinding(), Hosts: hosts},
		"incident.opened":   {ID: "01955a3c-7f00-7000-8000-0000000000e2", Kind: KindIncidentOpened, At: t0.Add(time.Second), Incident: sampleIncident(), Finding: sampleFinding(), Hosts: hosts},
		"incident.updated":  {ID: "01955a3c-7f00-7000-8000-0000000000e3", Kind: KindIncidentUpdated, At: t0.Add(time.Minute), Incident: updated, Hosts: hosts},
		"incident.closed":   {ID: "01955a3c-7f00-7000-8000-0000000000e4", Kind: KindIncidentClosed, At: t0.Add(time.Hour), Incident: closed, Hosts: hosts},
	}
}

type fakeAgents map[string]string

func (f fakeAgents) Lookup(id string) (string, map[string]string, bool) {
	h, ok := f[id]
	return h, nil, ok
}

// newOutbox opens a badger store in dir and an Outbox over it.
func newOutbox(t *testing.T, dir string, sinks ...SinkConfig) (*Outbox, *badger.DB) {
	t.Helper()
	if err := Validate(sinks); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before run's cleanup, so it runs after it.
	t.Cleanup(func() {
		if !db.IsClosed() {
			db.Close()
		}
	})
	o, err := New(Config{DB: db, Sinks: sinks, Agents: fakeAgents{"agent-1": "web-01"}}, quiet)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return o, db
}

// run runs o until the test ends.
func run(t *testing.T, o *Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// change queues a change of inc the way the incident engine does.
func change(t *testing.T, o *Outbox, db *badger.DB, kind string, inc *incident.Incident, cause *ingest.Finding) {
	t.Helper()
	err := store.Update(context.Background(), db, func(txn *badger.Txn) error {
		return o.IncidentChanged(txn, kind, inc, cause)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(t *testing.T, o *Outbox, name string) SinkStatus {
	t.Helper()
	sts, err := o.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no sink %s in status", name)
	return SinkStatus{}
}
