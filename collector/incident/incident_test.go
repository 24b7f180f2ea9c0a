package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

type agents map[string]map[string]string // agent id → tags; hostname is "host-<id>"

func (a agents) Lookup(id string) (string, map[string]string, bool) {
	tags, ok := a[id]
	return "host-" + id, tags, ok
}

type env struct {
	db       *badger.DB
	findings *ingest.Store
	engine   *Engine
	clock    time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ag := agents{"a1": {"criticality": "High"}, "a2": nil, "a3": {"criticality": "critical"}, "a4": {"criticality": "low"}, "a5": nil, "a6": nil}
	e := &env{db: db, clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	fs, err := ingest.New(ingest.Config{DB: db, Agents: ag, Now: func() time.Time { return e.clock }}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.findings = fs
	e.engine = New(Config{DB: db, Log: fs, Findings: fs, Agents: ag, Now: func() time.Time { return e.clock }}, quiet)
	return e
}

var base = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type spec struct {
	agent     string
	minute    int // observed at base + minute
	severity  string
	drill     bool
	tactic    string
	user      string
	rule      string // rule id; "r-<severity>-<agent>" when empty
	technique string
	// extra is appended to the evidence array, e.g. a network event.
	extra string
}

func (s spec) finding() *protocol.Finding {
	ev := `[{"@timestamp":"2026-03-01T10:00:00Z","event":{"category":"process","type":"start"},"process":{"pid":1,"user":{"name":"` + s.user + `"}}}` + s.extra + `]`
	sev := s.severity
	if sev == "" {
		sev = "medium"
	}
	rule := s.rule
	if rule == "" {
		rule = "r-" + sev + "-" + s.agent
	}
	var tactics, techniques []string
	if s.tactic != "" {
		tactics = []string{s.tactic}
	}
	if s.technique != "" {
		techniques = []string{s.technique}
	}
	return &protocol.Finding{
		Id:               uuid.Must(uuid.NewV7()).String(),
		Rule:             &protocol.Rule{Id: rule, Name: "Suspicious " + sev},
		Severity:         sev,
		Tactics:          tactics,
		Techniques:       techniques,
		EvidenceJson:     []byte(ev),
		ObservedUnixNano: base.Add(time.Duration(s.minute) * time.Minute).UnixNano(),
		Drill:            s.drill,
	}
}

// add appends the findings of specs, one batch per spec, and returns
// their ids.
func (e *env) add(t testing.TB, specs ...spec) []string {
	t.Helper()
	var ids []string
	for _, s := range specs {
		f := s.finding()
		if _, _, err := e.findings.Append(context.Background(), s.agent, []*protocol.Finding{f}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.Id)
	}
	return ids
}

// process applies the log from the engine's stored offset to its end,
// as Run does, three records per transaction.
func (e *env) process(t *testing.T) { t.Helper(); e.processBy(t, 3) }

// storedOffset is the log position the engine stored as applied up to,
// 0 before any.
func (e *env) storedOffset(t testing.TB) uint64 {
	t.Helper()
	var offset uint64
	err := e.db.View(func(txn *badger.Txn) error {
		if err := store.Get(txn, offsetKey, &offset); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return offset
}

// processBy is process with n records per transaction.
func (e *env) processBy(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	offset := e.storedOffset(t)
	for {
		recs, next, err := e.findings.Read(ctx, offset, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return
		}
		if err := e.engine.apply(ctx, recs, next); err != nil {
			t.Fatal(err)
		}
		offset = next
	}
}

func (e *env) incidents(t *testing.T) []*Incident {
	t.Helper()
	incs, _, err := e.engine.List(context.Background(), Query{Page: store.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(incs) // oldest first
	return incs
}

// groups returns, for each incident oldest first, the indexes in ids of
// its findings.
func groups(incs []*Incident, ids []string) [][]int {
	var out [][]int
	for _, inc := range incs {
		var g []int
		for _, fid := range inc.FindingIDs {
			g = append(g, slices.Index(ids, fid))
		}
		out = append(out, g)
	}
	return out
}

func TestGrouping(t *testing.T) {
	tests := []struct {
		name  string
		specs []spec
		want  [][]int
	}{
		{"one finding", []spec{{agent: "a1"}}, [][]int{{0}}},
		{"same agent within the window", []spec{{agent: "a1"}, {agent: "a1", minute: 10}, {agent: "a1", minute: 39}}, [][]int{{0, 1, 2}}},
		{"after the window", []spec{{agent: "a1"}, {agent: "a1", minute: 31}}, [][]int{{0}, {1}}},
		{"window slides with the latest finding", []spec{{agent: "a1"}, {agent: "a1", minute: 25}, {agent: "a1", minute: 50}}, [][]int{{0, 1, 2}}},
		{"two agents", []spec{{agent: "a1"}, {agent: "a2", minute: 1}, {agent: "a1", minute: 2}}, [][]int{{0, 2}, {1}}},
		{"drill and real never mix", []spec{{agent: "a1"}, {agent: "a1", minute: 1, drill: true}, {agent: "a1", minute: 2}, {agent: "a1", minute: 3, drill: true}}, [][]int{{0, 2}, {1, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ids := e.add(t, tt.specs...)
			e.process(t)
			incs := e.incidents(t)
			if got := groups(incs, ids); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("groups %v, want %v", got, tt.want)
			}
			if got := e.engine.Stats().Opened; got != uint64(len(tt.want)) {
				t.Errorf("opened %d, want %d", got, len(tt.want))
			}
			for _, inc := range incs {
				for _, fid := range inc.FindingIDs {
					f, err := e.findings.Get(context.Background(), fid)
					if err != nil {
						t.Fatal(err)
					}
					if f.IncidentID != inc.ID {
						t.Errorf("finding %s has incident %q, want %s", fid, f.IncidentID, inc.ID)
					}
					if f.Drill != inc.Drill {
						t.Errorf("finding %s (drill %v) in incident with drill %v", fid, f.Drill, inc.Drill)
					}
				}
			}
		})
	}
}

func TestClosedIncidentTakesNoFindings(t *testing.T) {
	e := newEnv(t)
	ids := e.add(t, spec{agent: "a2", severity: "low"})
	e.process(t)
	inc := e.incidents(t)[0]
	st := StatusFalsePositive
	if _, err := e.engine.Update(context.Background(), inc.ID, Change{Status: &st}, "alice"); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, e.add(t, spec{agent: "a2", minute: 1})...)
	e.process(t)
	if got := groups(e.incidents(t), ids); fmt.Sprint(got) != "[[0] [1]]" {
		t.Errorf("groups %v, want [[0] [1]]", got)
	}
}

func TestMaxFindings(t *testing.T) {
	e := newEnv(t)
	e.engine.max = 2
	ids := e.add(t, spec{agent: "a1"}, spec{agent: "a1"}, spec{agent: "a1"})
	e.process(t)
	if got := groups(e.incidents(t), ids); fmt.Sprint(got) != "[[0 1] [2]]" {
		t.Errorf("groups %v, want [[0 1] [2]]", got)
	}
}

// One transaction adding many findings, which reads and writes each
// incident once, ends with the incidents that adding them one
// transaction each does: joins, a shared indicator pulling in another
// host, the MaxFindings cap reached in the middle, drills apart.
func TestManyFindingsInOneTransaction(t *testing.T) {
	var specs []spec
	for i := range 14 {
		specs = append(specs, spec{agent: "a1", minute: i, severity: []string{"low", "high", "medium"}[i%3]})
		if i%4 == 0 {
			specs = append(specs, spec{agent: "a2", minute: i, rule: "r-medium-a1"}, spec{agent: "a3", minute: i, drill: true})
		}
	}
	var fs []*protocol.Finding
	for _, s := range specs {
		fs = append(fs, s.finding())
	}
	run := func(perTxn int) (*env, []*Incident) {
		e := newEnv(t)
		e.engine.max = 5
		for i, f := range fs {
			if _, _, err := e.findings.Append(context.Background(), specs[i].agent, []*protocol.Finding{f}); err != nil {
				t.Fatal(err)
			}
		}
		e.processBy(t, perTxn)
		return e, e.incidents(t)
	}
	_, one := run(1)
	e, many := run(len(fs))
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.Id
	}
	if g1, g2 := fmt.Sprint(groups(one, ids)), fmt.Sprint(groups(many, ids)); g1 != g2 {
		t.Fatalf("one per transaction groups %s, all in one %s", g1, g2)
	}
	if len(many) < 4 {
		t.Fatalf("%d incidents: the cap was not reached", len(many))
	}
	for i := range one {
		a, b := one[i], many[i]
		if a.Title != b.Title || a.Severity != b.Severity || fmt.Sprint(a.AffectedHosts) != fmt.Sprint(b.AffectedHosts) ||
			len(a.Timeline) != len(b.Timeline) || a.Priority != b.Priority || fmt.Sprint(a.Indicators) != fmt.Sprint(b.Indicators) {
			t.Errorf("incident %d: one per transaction %q %s hosts %v, %d timeline entries; all in one %q %s hosts %v, %d entries",
				i, a.Title, a.Severity, a.AffectedHosts, len(a.Timeline), b.Title, b.Severity, b.AffectedHosts, len(b.Timeline))
		}
	}
	for _, inc := range many {
		for _, fid := range inc.FindingIDs {
			if f, err := e.findings.Get(context.Background(), fid); err != nil || f.IncidentID != inc.ID {
				t.Errorf("finding %s: incident %v, %v; want %s", fid, f, err, inc.ID)
			}
		}
	}
}

func TestReplayIdempotent(t *testing.T) {
	e := newEnv(t)
	ids := e.add(t, spec{agent: "a1"}, spec{agent: "a2"}, spec{agent: "a1", minute: 5})
	e.process(t)
	before := e.incidents(t)

	// Forget the offset: the whole log is applied again.
	if err := e.db.Update(func(txn *badger.Txn) error { return txn.Delete(offsetKey) }); err != nil {
		t.Fatal(err)
	}
	e.process(t)
	after := e.incidents(t)
	if fmt.Sprint(groups(after, ids)) != fmt.Sprint(groups(before, ids)) || len(after) != 2 {
		t.Errorf("after replay groups %v, before %v", groups(after, ids), groups(before, ids))
	}
	if len(after[0].Timeline) != len(before[0].Timeline) {
		t.Errorf("replay changed the timeline: %d entries, was %d", len(after[0].Timeline), len(before[0].Timeline))
	}
	if got := e.engine.Stats().Opened; got != 2 {
		t.Errorf("opened %d, want 2", got)
	}
}

func TestIncidentFields(t *testing.T) {
	e := newEnv(t)
	e.add(t,
		spec{agent: "a1", minute: 5, severity: "medium", tactic: "TA0002", user: "www-data"},
		spec{agent: "a1", minute: 2, severity: "critical", tactic: "TA0006", user: "root"},
		spec{agent: "a1", minute: 7, severity: "low", tactic: "TA0007", user: "root"},
	)
	e.process(t)
	inc := e.incidents(t)[0]
	want := Incident{
		Title: "3 detections on host-a1", Status: StatusNew, Type: TypeCredentialAccess,
		Impact: 1, Urgency: 1, Priority: "P1", AssetCriticality: "high", Origin: "unknown",
		DetectedAt: base.Add(2 * time.Minute),
	}
	got := Incident{
		Title: inc.Title, Status: inc.Status, Type: inc.Type, Impact: inc.Impact, Urgency: inc.Urgency,
		Priority: inc.Priority, AssetCriticality: inc.AssetCriticality, Origin: inc.Origin, DetectedAt: inc.DetectedAt,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("incident\n got %+v\nwant %+v", got, want)
	}
	if fmt.Sprint(inc.AffectedHosts) != "[a1]" || fmt.Sprint(inc.AffectedUsers) != "[root www-data]" {
		t.Errorf("hosts %v, users %v", inc.AffectedHosts, inc.AffectedUsers)
	}
	var actions []string
	for _, en := range inc.Timeline {
		actions = append(actions, en.Action)
		if en.Actor != ActorCordon {
			t.Errorf("timeline actor %q", en.Actor)
		}
	}
	if fmt.Sprint(actions) != "[opened finding_added reclassified escalated finding_added]" {
		t.Errorf("timeline %v", actions)
	}

	e.add(t, spec{agent: "a2", drill: true})
	e.process(t)
	drill := e.incidents(t)[1]
	if drill.Title != "[drill] Suspicious medium on host-a2" || !drill.Drill || drill.AssetCriticality != "unknown" || drill.Priority != "P3" {
		t.Errorf("drill incident %+v", drill)
	}
}

func TestRun(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.engine.Run(ctx) }()

	e.add(t, spec{agent: "a1"}, spec{agent: "a2"})
	deadline := time.Now().Add(10 * time.Second)
	for len(e.incidents(t)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not build the incidents")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A new engine continues from the stored offset.
	e.add(t, spec{agent: "a1", minute: 1})
	e2 := New(Config{DB: e.db, Log: e.findings, Findings: e.findings}, quiet)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- e2.Run(ctx) }()
	for len(e.incidents(t)[0].FindingIDs) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second Run did not add the finding")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := e2.Stats().Opened; n != 0 {
		t.Errorf("second engine opened %d incidents, want 0", n)
	}
	if off, end := e2.Stats().Offset, e.findings.End(); off != end {
		t.Errorf("engine offset %d after applying the whole log, want its end %d", off, end)
	}

	// Duplicates leave the log's last positions empty: the engine steps
	// over them, so its backlog drains to nothing.
	dup := spec{agent: "a3"}.finding()
	for range 2 {
		if _, _, err := e.findings.Append(context.Background(), "a3", []*protocol.Finding{dup, dup, dup}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- e2.Run(ctx) }()
	for e2.Stats().Offset != e.findings.End() {
		if time.Now().After(deadline) {
			t.Fatalf("engine offset %d, log end %d", e2.Stats().Offset, e.findings.End())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{StatusNew, StatusTriage, true},
		{StatusNew, StatusContained, true},
		{StatusNew, StatusClosed, true},
		{StatusTriage, StatusNew, true},
		{StatusContained, StatusInvestigating, true},
		{StatusContained, StatusTriage, false},
		{StatusRecovered, StatusNew, false},
		{StatusInvestigating, StatusFalsePositive, true},
		{StatusRecovered, StatusDuplicate, true},
		{StatusClosed, StatusRecovered, false},
		{StatusClosed, StatusFalsePositive, false},
		{StatusFalsePositive, StatusTriage, false},
		{StatusDuplicate, StatusClosed, false},
	}
	for _, tt := range tests {
		err := checkTransition(tt.from, tt.to)
		if (err == nil) != tt.ok {
			t.Errorf("%s → %s: err %v, want ok %v", tt.from, tt.to, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, store.ErrConflict) || err.(*store.FieldError).Field != "status") {
			t.Errorf("%s → %s: error %v is not a conflict on status", tt.from, tt.to, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t, spec{agent: "a1", severity: "high"}) // P2
	e.process(t)
	id := e.incidents(t)[0].ID

	steps := []struct {
		name  string
		c     Change
		field string // of the expected error, "-" for none
		check func(t *testing.T, inc *Incident)
	}{
		{"nothing", Change{}, "", nil},
		{"bad impact", Change{Impact: ptr(5)}, "impact", nil},
		{"bad status", Change{Status: ptr(Status("done"))}, "status", nil},
		{"empty comment", Change{Comment: ptr(" ")}, "comment", nil},
		{"review without lessons", Change{Review: &Review{RootCause: "x"}}, "review.lessons_learned", nil},
		{"triage", Change{Status: ptr(StatusTriage), Assignee: ptr("bob")}, "-", func(t *testing.T, inc *Incident) {
			if inc.AcknowledgedAt != e.clock || inc.Assignee != "bob" || inc.Status != StatusTriage {
				t.Errorf("after triage: %+v", inc)
			}
		}},
		{"contain without justification", Change{Status: ptr(StatusContained)}, "status", nil},
		{"contain", Change{Status: ptr(StatusContained), Comment: ptr("isolated")}, "-", func(t *testing.T, inc *Incident) {
			if inc.ContainedAt != e.clock || !inc.AcknowledgedAt.Before(e.clock) {
				t.Errorf("after contain: %+v", inc)
			}
		}},
		{"two steps back", Change{Status: ptr(StatusTriage)}, "status", nil},
		{"close P2 without review", Change{Status: ptr(StatusClosed)}, "status", nil},
		{"override without a reason", Change{Urgency: ptr(4)}, "comment", nil},
		{"lower urgency", Change{Urgency: ptr(4), Comment: ptr("attacker gone")}, "-", func(t *testing.T, inc *Incident) {
			if inc.Priority != "P3" || fmt.Sprint(inc.Overrides) != "[urgency]" {
				t.Errorf("priority %s, overrides %v; want P3, [urgency]", inc.Priority, inc.Overrides)
			}
		}},
		{"raise urgency", Change{Urgency: ptr(1), Comment: ptr("seen again")}, "-", nil},
		{"review without follow-up", Change{Review: &Review{RootCause: "weak password", LessonsLearned: "MFA"}}, "review.follow_up_actions", nil},
		{"close P1 with review", Change{Status: ptr(StatusClosed), Review: &Review{RootCause: "weak password", LessonsLearned: "MFA", FollowUpActions: []string{"enforce MFA"}}}, "-", func(t *testing.T, inc *Incident) {
			if inc.ClosedAt != e.clock || inc.ResolvedAt != e.clock || inc.Review == nil {
				t.Errorf("after close: %+v", inc)
			}
		}},
		{"reopen", Change{Status: ptr(StatusRecovered)}, "status", nil},
		{"comment after close", Change{Comment: ptr("postmortem filed")}, "-", nil},
	}
	for _, st := range steps {
		e.clock = e.clock.Add(time.Minute)
		inc, err := e.engine.Update(ctx, id, st.c, "alice")
		var fe *store.FieldError
		switch {
		case st.field == "-" && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.field != "-" && (!errors.As(err, &fe) || fe.Field != st.field):
			t.Fatalf("%s: error %v, want one on field %q", st.name, err, st.field)
		}
		if st.check != nil {
			st.check(t, inc)
		}
	}

	inc, err := e.engine.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range inc.Timeline {
		if en.Actor == "alice" {
			got = append(got, en.Action+": "+en.Detail)
		}
	}
	want := []string{
		"assigned: bob",
		"status_changed: new → triage",
		"status_changed: triage → contained (containment justified in the comment)",
		"comment: isolated",
		"urgency_changed: 3 → 4, priority P2 → P3: attacker gone",
		"comment: attacker gone",
		"urgency_changed: 4 → 1, priority P3 → P1: seen again",
		"comment: seen again",
		"review_added: root cause: weak password; lessons learned: MFA; follow-up: enforce MFA",
		"status_changed: contained → closed",
		"comment: postmortem filed",
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("timeline\n got %q\nwant %q", got, want)
	}

	if _, err := e.engine.Update(ctx, "nope", Change{Comment: ptr("x")}, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown incident: %v, want ErrNotFound", err)
	}
}

func TestPriorityMatrix(t *testing.T) {
	var diag []string
	for sev := range 4 {
		diag = append(diag, Priority(sev+1, sev+1))
	}
	if fmt.Sprint(diag) != "[P1 P2 P3 P5]" {
		t.Errorf("diagonal %v", diag)
	}
	for i := 1; i <= 4; i++ {
		for j := 1; j <= 4; j++ {
			if Priority(i, j) != Priority(j, i) {
				t.Errorf("matrix not symmetric at %d,%d", i, j)
			}
			if j < 4 && Priority(i, j) > Priority(i, j+1) {
				t.Errorf("priority rises with lower urgency at %d,%d", i, j)
			}
		}
	}
}

func TestTypeOf(t *testing.T) {
	tests := []struct {
		tactics, techniques []string
		want                string
	}{
		{nil, nil, TypePolicyViolation},
		{[]string{"TA9999"}, nil, TypeUnclassified},
		{[]string{"TA0002"}, nil, TypeMalware},
		{[]string{"TA0011"}, nil, TypeMalware},
		{[]string{"TA0002", "TA0003"}, nil, TypePersistence},
		{[]string{"TA0001", "TA0040", "TA0011"}, nil, TypeDenialOfService},
		{[]string{"TA0040"}, []string{"T1486"}, TypeRansomware},
		{[]string{"TA0040", "TA0010"}, []string{"T1490.001"}, TypeRansomware},
		{[]string{"TA0009"}, nil, TypeDataBreach},
		{[]string{"TA0007"}, nil, TypeReconnaissance},
		{[]string{"TA0001"}, nil, TypeUnauthorizedAccess},
		{[]string{"TA0008", "TA0006"}, nil, TypeLateralMovement},
		{[]string{"TA0004"}, nil, TypePrivilegeEscalation},
		{[]string{"TA0006"}, nil, TypeCredentialAccess},
	}
	for _, tt := range tests {
		if got := typeOf(tt.tactics, tt.techniques); got != tt.want {
			t.Errorf("typeOf(%v, %v) = %s, want %s", tt.tactics, tt.techniques, got, tt.want)
		}
	}
}

// bulkyHook writes keys values small enough to stay in badger's tree
// (under its value threshold), keys of them per change, filling the
// transaction: larger values go to the value log and count in a
// transaction's size as a pointer only.
type bulkyHook struct{ keys int }

func (h bulkyHook) IncidentChanged(txn *badger.Txn, change string, inc *Incident, cause *ingest.Finding) error {
	if cause == nil {
		return nil
	}
	for i := range h.keys {
		if err := txn.Set(store.Key("test-bulk", cause.ID, strconv.Itoa(i)), make([]byte, 900)); err != nil {
			return err
		}
	}
	return nil
}

// A transaction too big for badger is split, down to one finding, and
// every finding still ends in its incident once, with the offset past
// them all.
func TestApplySplitsTooBigTransactions(t *testing.T) {
	e := newEnv(t)
	e.engine.hook = bulkyHook{keys: 600} // about 560 KiB a finding: four findings a transaction
	var specs []spec
	for i := range 24 {
		specs = append(specs, spec{agent: []string{"a1", "a2", "a5"}[i%3], minute: i})
	}
	ids := e.add(t, specs...)
	e.processBy(t, len(ids))
	incs := e.incidents(t)
	if got := fmt.Sprint(groups(incs, ids)); got != "[[0 3 6 9 12 15 18 21] [1 4 7 10 13 16 19 22] [2 5 8 11 14 17 20 23]]" {
		t.Errorf("groups %s", got)
	}
	for _, inc := range incs {
		if len(inc.FindingIDs) != 8 || len(inc.Timeline) < 8 {
			t.Errorf("incident %s: %d findings, %d timeline entries", inc.ID, len(inc.FindingIDs), len(inc.Timeline))
		}
	}
	if offset, end := e.storedOffset(t), e.findings.End(); offset != end {
		t.Errorf("stored offset %d, want the log's end %d", offset, end)
	}
}
