package incident

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol"
)

func conn(ip string) string {
	return `,{"@timestamp":"2026-03-01T10:00:00Z","event":{"category":"network","type":"connection"},"destination":{"ip":"` + ip + `","port":443}}`
}

func file(hash string) string {
	return `,{"@timestamp":"2026-03-01T10:00:00Z","event":{"category":"file","type":"creation"},"file":{"path":"/tmp/x","hash":{"sha256":"` + hash + `"}}}`
}

func TestCorrelationAcrossHosts(t *testing.T) {
	const hash = "ab12cd"
	tests := []struct {
		name  string
		specs []spec
		want  [][]int
	}{
		{"same rule", []spec{{agent: "a1", rule: "r"}, {agent: "a2", minute: 1, rule: "r"}}, [][]int{{0, 1}}},
		{"same hash, case folded", []spec{{agent: "a1", extra: file(hash)}, {agent: "a2", minute: 3, extra: file(strings.ToUpper(hash))}}, [][]int{{0, 1}}},
		{"same remote address", []spec{{agent: "a1", extra: conn("203.0.113.7")}, {agent: "a2", minute: 3, extra: conn("203.0.113.7")}}, [][]int{{0, 1}}},
		{"loopback is no shared remote", []spec{{agent: "a1", extra: conn("127.0.0.1")}, {agent: "a2", minute: 3, extra: conn("127.0.0.1")}}, [][]int{{0}, {1}}},
		{"nothing shared", []spec{{agent: "a1", extra: conn("203.0.113.7")}, {agent: "a2", minute: 3, extra: conn("203.0.113.8")}}, [][]int{{0}, {1}}},
		{"shared beyond the window", []spec{{agent: "a1", rule: "r"}, {agent: "a2", minute: 31, rule: "r"}}, [][]int{{0}, {1}}},
		{"drills never join real incidents", []spec{{agent: "a1", rule: "r"}, {agent: "a2", minute: 1, rule: "r", drill: true}}, [][]int{{0}, {1}}},
		{
			"the second host's later findings join too",
			[]spec{{agent: "a1", rule: "r"}, {agent: "a2", minute: 1, rule: "r"}, {agent: "a2", minute: 2, rule: "other"}},
			[][]int{{0, 1, 2}},
		},
		{
			"a chain of three hosts",
			[]spec{{agent: "a1", extra: file(hash)}, {agent: "a2", minute: 1, extra: file(hash) + conn("10.1.2.3")}, {agent: "a5", minute: 2, extra: conn("10.1.2.3")}},
			[][]int{{0, 1, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ids := e.add(t, tt.specs...)
			e.process(t)
			incs := e.incidents(t)
			if got := groups(incs, ids); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("groups %v, want %v", got, tt.want)
			}
			// Every host of a group is listed once, in the order it joined.
			for i, g := range tt.want {
				var hosts []string
				for _, j := range g {
					if a := tt.specs[j].agent; !slices.Contains(hosts, a) {
						hosts = append(hosts, a)
					}
				}
				if fmt.Sprint(incs[i].AffectedHosts) != fmt.Sprint(hosts) {
					t.Errorf("incident %d hosts %v, want %v", i, incs[i].AffectedHosts, hosts)
				}
			}
		})
	}
}

func TestCorrelationListsHostsAndUsers(t *testing.T) {
	e := newEnv(t)
	e.add(t,
		spec{agent: "a1", rule: "r", user: "alice", extra: conn("198.51.100.9")},
		spec{agent: "a2", minute: 1, rule: "r", user: "bob"},
		spec{agent: "a2", minute: 2, rule: "r", user: "bob"},
	)
	e.process(t)
	incs := e.incidents(t)
	if len(incs) != 1 {
		t.Fatalf("%d incidents, want 1", len(incs))
	}
	inc := incs[0]
	if fmt.Sprint(inc.AffectedUsers) != "[alice bob]" || inc.Title != "3 detections on 2 hosts" || inc.Origin != OriginExternal {
		t.Errorf("incident %+v", inc)
	}
	var added []string
	for _, en := range inc.Timeline {
		if en.Action == ActionHostAdded {
			added = append(added, en.Detail)
		}
	}
	if len(added) != 1 || !strings.Contains(added[0], "host-a2") || !strings.Contains(added[0], "rule:r") {
		t.Errorf("host_added entries %q", added)
	}
	// The agent index finds the incident from either host.
	for _, a := range []string{"a1", "a2"} {
		got, _, err := e.engine.List(t.Context(), Query{Agent: a})
		if err != nil || len(got) != 1 || got[0].ID != inc.ID {
			t.Errorf("incidents of %s: %v %v", a, got, err)
		}
	}
}

// A finding delivered twice (a retry after a lost acknowledgement, or a
// replay of the log) never opens a second incident.
func TestDuplicateFindingOpensNothing(t *testing.T) {
	e := newEnv(t)
	s := spec{agent: "a1", rule: "r"}
	f := s.finding()
	for range 2 {
		if _, _, err := e.findings.Append(t.Context(), "a1", []*protocol.Finding{f}); err != nil {
			t.Fatal(err)
		}
		e.process(t)
	}
	if incs := e.incidents(t); len(incs) != 1 || len(incs[0].FindingIDs) != 1 {
		t.Fatalf("incidents %+v", incs)
	}
}

// A record stored before classification and service levels existed
// still takes findings and reads with a sane service level.
func TestLegacyRecord(t *testing.T) {
	e := newEnv(t)
	e.add(t, spec{agent: "a1", rule: "r"})
	e.process(t)
	id := e.incidents(t)[0].ID
	legacy := `{"id":"` + id + `","title":"Old","status":"new","type":"malicious_execution","impact":3,"urgency":3,"priority":"P3",` +
		`"asset_criticality":"high","origin":"unknown","affected_hosts":["a1"],"affected_users":[],"assignee":"","finding_ids":["x"],` +
		`"timeline":[{"at":"2026-03-01T12:00:00Z","actor":"cordon","action":"opened"}],"drill":false,"detected_at":"2026-03-01T10:00:00Z",` +
		`"updated_at":"2026-03-01T12:00:00Z","tactics":["TA0002"],"last_observed":"2026-03-01T10:00:00Z","hostname":"host-a1"}`
	err := e.db.Update(func(txn *badger.Txn) error { return txn.Set(incidentKey(id), []byte(legacy)) })
	if err != nil {
		t.Fatal(err)
	}
	e.add(t, spec{agent: "a1", minute: 1, rule: "r"})
	e.add(t, spec{agent: "a2", minute: 2, rule: "r"})
	e.process(t)
	inc, err := e.engine.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.FindingIDs) != 3 || fmt.Sprint(inc.AffectedHosts) != "[a1 a2]" || inc.Severity != "medium" || inc.Type != TypeMalware ||
		inc.OpenedAt.IsZero() || inc.SLA.AcknowledgeBreached {
		t.Errorf("legacy incident after two findings: %+v", inc)
	}
}
