package incident

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/store"
)

func TestImpact(t *testing.T) {
	tests := []struct {
		severity, criticality string
		hosts, users          int
		want                  int
	}{
		{"low", "unknown", 1, 0, 4},
		{"low", "low", 1, 0, 4},
		{"medium", "unknown", 1, 1, 3},
		{"medium", "medium", 1, 1, 3},
		{"medium", "high", 1, 1, 2},
		{"medium", "critical", 1, 1, 1},
		{"medium", "low", 1, 1, 4},
		{"high", "unknown", 1, 1, 2},
		{"high", "low", 1, 1, 3},
		{"critical", "low", 1, 1, 2},
		{"medium", "unknown", 2, 1, 2},
		{"medium", "unknown", 1, 3, 2},
		{"medium", "unknown", 5, 1, 1},
		{"low", "unknown", 5, 1, 2},
	}
	for _, tt := range tests {
		if got := impactOf(tt.severity, tt.criticality, tt.hosts, tt.users); got != tt.want {
			t.Errorf("impactOf(%s, %s, %d hosts, %d users) = %d, want %d", tt.severity, tt.criticality, tt.hosts, tt.users, got, tt.want)
		}
	}
}

func TestUrgency(t *testing.T) {
	tests := []struct {
		tactics  []string
		severity string
		want     int
	}{
		{nil, "medium", 3},
		{[]string{"TA9999"}, "medium", 3},
		{[]string{"TA0007"}, "medium", 4},
		{[]string{"TA0007"}, "critical", 1},
		{nil, "critical", 1},
		{[]string{"TA0002"}, "high", 3},
		{[]string{"TA0002", "TA0003"}, "high", 2},
		{[]string{"TA0011"}, "low", 2},
		{[]string{"TA0002", "TA0010"}, "low", 1},
		{[]string{"TA0040"}, "critical", 1},
	}
	for _, tt := range tests {
		if got := urgencyOf(tt.tactics, tt.severity); got != tt.want {
			t.Errorf("urgencyOf(%v, %s) = %d, want %d", tt.tactics, tt.severity, got, tt.want)
		}
	}
}

func TestMatrixTable(t *testing.T) {
	// The matrix as docs/incident-handling.md prints it.
	want := [4]string{"P1 P2 P2 P3", "P2 P2 P3 P3", "P2 P3 P3 P4", "P3 P3 P4 P5"}
	for i := 1; i <= 4; i++ {
		var row []string
		for u := 1; u <= 4; u++ {
			row = append(row, Priority(i, u))
		}
		if got := fmt.Sprint(row); got != "["+want[i-1]+"]" {
			t.Errorf("impact %d: %s, want [%s]", i, got, want[i-1])
		}
	}
	if Priority(0, 9) != "P3" {
		t.Errorf("out of range levels are not clamped")
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		addrs []string
		want  string
	}{
		{nil, OriginUnknown},
		{[]string{"not an address"}, OriginUnknown},
		{[]string{"10.0.0.1", "192.168.1.1", "127.0.0.1", "fe80::1", "fd00::1"}, OriginInternal},
		{[]string{"10.0.0.1", "8.8.8.8"}, OriginExternal},
		{[]string{"2001:4860::1"}, OriginExternal},
		{[]string{"::ffff:10.0.0.1"}, OriginInternal},
	}
	for _, tt := range tests {
		if got := originOf(tt.addrs); got != tt.want {
			t.Errorf("originOf(%v) = %s, want %s", tt.addrs, got, tt.want)
		}
	}
}

// Classification runs on every new finding, but keeps what a responder
// overrode.
func TestReclassifyKeepsOverrides(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t, spec{agent: "a2", severity: "low", tactic: "TA0007", rule: "r"})
	e.process(t)
	inc := e.incidents(t)[0]
	if inc.Type != TypeReconnaissance || inc.Impact != 4 || inc.Urgency != 4 || inc.Priority != "P5" {
		t.Fatalf("opened as %s impact %d urgency %d %s", inc.Type, inc.Impact, inc.Urgency, inc.Priority)
	}
	if _, err := e.engine.Update(ctx, inc.ID, Change{Impact: ptr(2), Comment: ptr("payroll server")}, "alice"); err != nil {
		t.Fatal(err)
	}
	// A finding on a critical host moving to exfiltration.
	e.add(t, spec{agent: "a3", minute: 1, severity: "high", tactic: "TA0010", rule: "r", extra: conn("203.0.113.1")})
	e.process(t)
	inc, err := e.engine.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Type != TypeDataBreach || inc.Impact != 2 || inc.Urgency != 1 || inc.Priority != "P2" ||
		inc.AssetCriticality != "critical" || inc.Origin != OriginExternal || inc.Severity != "high" {
		t.Errorf("after the second finding: type %s impact %d urgency %d %s criticality %s origin %s severity %s",
			inc.Type, inc.Impact, inc.Urgency, inc.Priority, inc.AssetCriticality, inc.Origin, inc.Severity)
	}
	var actions []string
	for _, en := range inc.Timeline {
		actions = append(actions, en.Actor+":"+en.Action)
	}
	want := "[cordon:opened alice:impact_changed alice:comment cordon:finding_added cordon:host_added cordon:reclassified cordon:escalated]"
	if fmt.Sprint(actions) != want {
		t.Errorf("timeline %v\nwant %s", actions, want)
	}
}

type fakeContainment map[string]string

func (f fakeContainment) Contained(_ context.Context, id string) (string, error) {
	if f[id] == "fail" {
		return "", errors.New("store down")
	}
	return f[id], nil
}

func TestContainmentGuard(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cont := fakeContainment{}
	e.engine.contain = cont
	e.add(t, spec{agent: "a1", rule: "x"}, spec{agent: "a2", rule: "y"}, spec{agent: "a5", rule: "z"})
	e.process(t)
	incs := e.incidents(t)
	byCommand, byComment, failing := incs[0].ID, incs[1].ID, incs[2].ID

	steps := []struct {
		id    string
		to    Status
		note  string
		field string // of the expected error, "-" for none
		want  string // the status entry's detail
	}{
		{byCommand, StatusContained, "", "status", ""},
		{byCommand, StatusEradicated, "", "status", ""},
		{byCommand, StatusClosed, "", "status", ""},
		{byCommand, StatusFalsePositive, "", "-", "new → false_positive"},
		{byComment, StatusInvestigating, "", "-", "new → investigating"},
		{byComment, StatusEradicated, "rebuilt from image", "-", "investigating → eradicated (containment justified in the comment)"},
		{byComment, StatusContained, "", "-", "eradicated → contained"},
		{failing, StatusContained, "", "", ""},
	}
	cont[failing] = "fail"
	for i, st := range steps {
		c := Change{Status: ptr(st.to)}
		if st.note != "" {
			c.Comment = ptr(st.note)
		}
		inc, err := e.engine.Update(ctx, st.id, c, "alice")
		var fe *store.FieldError
		switch {
		case st.field == "-" && err != nil:
			t.Fatalf("step %d: %v", i, err)
		case st.field == "" && (err == nil || errors.As(err, &fe)):
			t.Fatalf("step %d: error %v, want an internal one", i, err)
		case st.field != "-" && st.field != "" && (!errors.As(err, &fe) || fe.Field != st.field || !errors.Is(err, store.ErrConflict)):
			t.Fatalf("step %d: error %v, want a conflict on %q", i, err, st.field)
		}
		if st.want != "" {
			got := inc.Timeline[len(inc.Timeline)-1]
			if st.note != "" {
				got = inc.Timeline[len(inc.Timeline)-2]
			}
			if got.Detail != st.want {
				t.Errorf("step %d: timeline %q, want %q", i, got.Detail, st.want)
			}
		}
	}

	// A succeeded containment command lets the first incident... but it
	// is terminal now; a fresh one shows the command on the timeline.
	e.add(t, spec{agent: "a4", rule: "w", minute: 1})
	e.process(t)
	fresh := e.incidents(t)[3].ID
	cont[fresh] = "isolate command c1 on agent a4"
	inc, err := e.engine.Update(ctx, fresh, Change{Status: ptr(StatusContained)}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d := inc.Timeline[len(inc.Timeline)-1].Detail; d != "new → contained (contained by isolate command c1 on agent a4)" || inc.ContainedAt.IsZero() {
		t.Errorf("contained by command: %q, contained_at %v", d, inc.ContainedAt)
	}
}

func TestServiceLevels(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.engine.targets["P5"] = Target{Acknowledge: 10 * time.Minute, Contain: time.Hour}
	// Low severity on a low-criticality host: P5. Received at the
	// collector's clock time (the ingest store stamps received_at).
	e.add(t, spec{agent: "a4", severity: "low", tactic: "TA0007"})
	e.add(t, spec{agent: "a2", severity: "low", tactic: "TA0007", drill: true})
	e.process(t)
	incs := e.incidents(t)
	real, drill := incs[0], incs[1]
	if real.Priority != "P5" || drill.Priority != "P5" {
		t.Fatalf("priorities %s %s", real.Priority, drill.Priority)
	}
	opened := real.OpenedAt

	at := func(d time.Duration) { e.clock = opened.Add(d) }
	get := func(id string) *SLA {
		t.Helper()
		inc, err := e.engine.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return inc.SLA
	}

	at(9 * time.Minute)
	if s := get(real.ID); s.AcknowledgeBreached || s.ContainBreached || !s.AcknowledgeBy.Equal(opened.Add(10*time.Minute)) {
		t.Errorf("at 9m: %+v", s)
	}
	at(11 * time.Minute)
	if s := get(real.ID); !s.AcknowledgeBreached || s.ContainBreached {
		t.Errorf("at 11m, unacknowledged: %+v", s)
	}
	// The drill is acknowledged in time.
	at(5 * time.Minute)
	if _, err := e.engine.Update(ctx, drill.ID, Change{Status: ptr(StatusTriage)}, "alice"); err != nil {
		t.Fatal(err)
	}
	at(12 * time.Minute)
	if _, err := e.engine.Update(ctx, real.ID, Change{Status: ptr(StatusTriage)}, "alice"); err != nil {
		t.Fatal(err)
	}
	at(30 * time.Minute)
	if _, err := e.engine.Update(ctx, real.ID, Change{Status: ptr(StatusContained), Comment: ptr("account disabled")}, "alice"); err != nil {
		t.Fatal(err)
	}
	at(2 * time.Hour)
	s := get(real.ID)
	if !s.AcknowledgeBreached || s.ContainBreached || *s.TimeToAcknowledge != 720 || *s.TimeToContain != 1800 || s.TimeToResolve != nil {
		t.Errorf("real at 2h: %+v", s)
	}
	if s := get(drill.ID); s.AcknowledgeBreached || !s.ContainBreached || *s.TimeToAcknowledge != 300 {
		t.Errorf("drill at 2h: %+v", s)
	}
	if _, err := e.engine.Update(ctx, real.ID, Change{Status: ptr(StatusClosed)}, "alice"); err != nil {
		t.Fatal(err)
	}

	f, err := e.engine.Figures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantReal := Measures{Incidents: 1, Open: 0, MTTA: 720, MTTC: 1800, MTTR: 7200, MTTD: 7200, AcknowledgeBreaches: 1}
	if f.Real != wantReal {
		t.Errorf("real figures %+v, want %+v", f.Real, wantReal)
	}
	wantDrill := Measures{Incidents: 1, Open: 1, MTTA: 300, MTTD: 7200, ContainBreaches: 1}
	if f.Drill != wantDrill {
		t.Errorf("drill figures %+v, want %+v", f.Drill, wantDrill)
	}
}

func TestSimilar(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t,
		spec{agent: "a1", rule: "r1", extra: conn("203.0.113.5")},
		spec{agent: "a2", rule: "r2", minute: 100},
		spec{agent: "a5", rule: "r3", minute: 200},
	)
	e.process(t)
	old := e.incidents(t)
	review := &Review{RootCause: "phishing", LessonsLearned: "train", FollowUpActions: []string{"block sender"}}
	if _, err := e.engine.Update(ctx, old[0].ID, Change{Status: ptr(StatusClosed), Comment: ptr("reimaged"), Review: review}, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Update(ctx, old[1].ID, Change{Status: ptr(StatusFalsePositive)}, "alice"); err != nil {
		t.Fatal(err)
	}
	// old[2] stays open: never offered.

	// A new incident on a6 with r1's rule and address, and r2's rule.
	e.add(t, spec{agent: "a6", rule: "r1", minute: 400, extra: conn("203.0.113.5")}, spec{agent: "a6", rule: "r2", minute: 401}, spec{agent: "a6", rule: "r3", minute: 402})
	e.process(t)
	incs := e.incidents(t)
	inc, err := e.engine.Get(ctx, incs[len(incs)-1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Similar) != 2 {
		t.Fatalf("similar %+v", inc.Similar)
	}
	first, second := inc.Similar[0], inc.Similar[1]
	if first.ID != old[0].ID || fmt.Sprint(first.Shared) != "[ip:203.0.113.5 rule:r1]" || first.Review == nil || first.Review.RootCause != "phishing" || first.Status != StatusClosed {
		t.Errorf("first similar %+v", first)
	}
	if second.ID != old[1].ID || second.Status != StatusFalsePositive {
		t.Errorf("second similar %+v", second)
	}
}
