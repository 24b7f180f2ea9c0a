package incident

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cordon-edr/cordon/collector/playbook"
	"github.com/cordon-edr/cordon/collector/store"
)

type fakeResponder struct {
	mu   sync.Mutex
	sent []string
	fail bool
}

func (f *fakeResponder) Respond(_ context.Context, agentID, action, reason, incidentID, by string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return "", errors.New("queue full")
	}
	f.sent = append(f.sent, action+" "+agentID+" by "+by)
	return fmt.Sprintf("c%d", len(f.sent)), nil
}

func withPlaybooks(t *testing.T, e *env) *fakeResponder {
	t.Helper()
	set, err := playbook.Load("", Types())
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeResponder{}
	e.engine.playbooks, e.engine.responder = set, r
	return r
}

func actionStates(inc *Incident) map[string]string {
	out := map[string]string{}
	for _, a := range inc.Playbook.Actions {
		out[a.AgentID] = a.Status
	}
	return out
}

// The ransomware playbook isolates hosts below high criticality at once
// and waits for a responder's approval on high and critical ones.
func TestPlaybookActions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	resp := withPlaybooks(t, e)
	ransom := func(agent string, minute int) spec {
		return spec{agent: agent, minute: minute, severity: "critical", tactic: "TA0040", technique: "T1486", rule: "ransom"}
	}
	e.add(t, ransom("a4", 0), ransom("a1", 1), ransom("a3", 2), ransom("a2", 3))
	e.process(t)
	incs := e.incidents(t)
	if len(incs) != 1 || incs[0].Type != TypeRansomware {
		t.Fatalf("incidents %+v", incs)
	}
	inc, err := e.engine.Get(ctx, incs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Playbook == nil || inc.Playbook.Name != "Ransomware response" || len(inc.Playbook.Steps) == 0 {
		t.Fatalf("playbook %+v", inc.Playbook)
	}
	want := map[string]string{"a4": ActionSent, "a2": ActionSent, "a1": ActionAwaitingApproval, "a3": ActionAwaitingApproval}
	if got := actionStates(inc); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	if fmt.Sprint(resp.sent) != "[isolate a4 by playbook:Ransomware response isolate a2 by playbook:Ransomware response]" {
		t.Errorf("sent %v", resp.sent)
	}

	steps := []struct {
		ref   string
		field string
	}{
		{"isolate-hosts/a3", "-"},
		{"isolate-hosts/a3", "approve"},
		{"isolate-hosts/a4", "approve"},
		{"isolate-hosts/zz", "approve"},
	}
	for _, st := range steps {
		_, err := e.engine.Update(ctx, inc.ID, Change{Approve: ptr(st.ref)}, "alice")
		var fe *store.FieldError
		if st.field == "-" && err != nil || st.field != "-" && (!errors.As(err, &fe) || fe.Field != st.field) {
			t.Errorf("approve %s: %v, want error on %q", st.ref, err, st.field)
		}
	}
	inc, _ = e.engine.Get(ctx, inc.ID)
	if actionStates(inc)["a3"] != ActionSent || resp.sent[2] != "isolate a3 by alice" {
		t.Errorf("after approval %v, sent %v", actionStates(inc), resp.sent)
	}
	var trail []string
	for _, en := range inc.Timeline {
		if strings.HasPrefix(en.Action, "playbook") {
			trail = append(trail, en.Actor+" "+en.Action+": "+en.Detail)
		}
	}
	for _, want := range []string{
		"cordon playbook_attached: Ransomware response (embedded:ransomware.yaml)",
		"playbook:Ransomware response playbook_action: isolate a4 (criticality low)",
		`playbook:Ransomware response playbook_action: isolate on a1 (criticality high) awaits a responder's approval (approve "isolate-hosts/a1")`,
		"playbook:Ransomware response playbook_action: isolate on a4 sent as command c1",
		"alice playbook_approved: isolate on a3",
		"alice playbook_action: isolate on a3 sent as command c3",
	} {
		if !slices.ContainsFunc(trail, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("timeline lacks %q:\n%s", want, strings.Join(trail, "\n"))
		}
	}
}

func TestPlaybookDryRunDrillAndFailure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		dryRun  bool
		drill   bool
		fail    bool
		want    string // status of a4's action, "" for none
		sendsTo int
	}{
		{"dry run", true, false, false, ActionDryRun, 0},
		{"drill", false, true, false, "", 0},
		{"command refused", false, false, true, ActionFailed, 0},
		{"sent", false, false, false, ActionSent, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			resp := withPlaybooks(t, e)
			e.engine.dryRun, resp.fail = tt.dryRun, tt.fail
			e.add(t, spec{agent: "a4", severity: "critical", tactic: "TA0040", technique: "T1486", drill: tt.drill})
			e.process(t)
			inc, err := e.engine.Get(ctx, e.incidents(t)[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if inc.Playbook == nil || len(inc.Playbook.Steps) == 0 || inc.Playbook.DryRun != tt.dryRun {
				t.Fatalf("playbook %+v", inc.Playbook)
			}
			if got := actionStates(inc)["a4"]; got != tt.want || len(resp.sent) != tt.sendsTo {
				t.Errorf("action %q, want %q; sent %v", got, tt.want, resp.sent)
			}
		})
	}
}

func TestChecklist(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	withPlaybooks(t, e)
	e.add(t, spec{agent: "a2", tactic: "TA0002"})
	e.process(t)
	id := e.incidents(t)[0].ID
	steps := []struct {
		c     Change
		field string
	}{
		{Change{Check: ptr("triage")}, "-"},
		{Change{Check: ptr("triage")}, "-"}, // already done: no new entry
		{Change{Check: ptr("nope")}, "check"},
		{Change{Uncheck: ptr("triage")}, "-"},
		{Change{Check: ptr("scope"), Comment: ptr("hash seen nowhere else")}, "-"},
	}
	for i, st := range steps {
		_, err := e.engine.Update(ctx, id, st.c, "bob")
		var fe *store.FieldError
		if st.field == "-" && err != nil || st.field != "-" && (!errors.As(err, &fe) || fe.Field != st.field) {
			t.Fatalf("step %d: %v, want error on %q", i, err, st.field)
		}
	}
	inc, _ := e.engine.Get(ctx, id)
	var trail []string
	for _, en := range inc.Timeline {
		if en.Actor == "bob" {
			trail = append(trail, en.Action+": "+en.Detail)
		}
	}
	want := `["checklist_done: triage: Confirm the process is malicious (ancestry, command line, file hash)" "checklist_undone: triage: Confirm the process is malicious (ancestry, command line, file hash)" "comment: hash seen nowhere else" "checklist_done: scope: Look for the same hash, address or rule on other hosts"]`
	if fmt.Sprintf("%q", trail) != want {
		t.Errorf("timeline %q\nwant %s", trail, want)
	}
	if s := inc.Playbook.Steps; s[0].Done || !s[1].Done || s[1].DoneBy != "bob" || s[1].DoneAt.IsZero() {
		t.Errorf("steps %+v", s)
	}

	// Without playbooks, ticking is an error on the field.
	e2 := newEnv(t)
	e2.add(t, spec{agent: "a2"})
	e2.process(t)
	_, err := e2.engine.Update(ctx, e2.incidents(t)[0].ID, Change{Check: ptr("triage")}, "bob")
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "check" {
		t.Errorf("tick without a playbook: %v", err)
	}
}
