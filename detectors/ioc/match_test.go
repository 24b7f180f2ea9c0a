package ioc

import (
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

func matcher(t *testing.T) *Matcher {
	t.Helper()
	inds, err := Parse([]byte("type,value,severity,note\n" +
		"sha256," + hashA + ",high,dropper\n" +
		"ip,203.0.113.7,critical,c2 host\n" +
		"cidr,198.51.100.0/24,low,hosting range\n" +
		"cidr,2001:db8::/32,medium,\n" +
		"path,/tmp/.x/xmrig,high,miner path\n" +
		"filename,kinsing,medium,miner name\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher("3-abc", inds)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	m := matcher(t)
	if m.Len() != 6 || m.Version() != "3-abc" {
		t.Fatalf("matcher of %d indicators, version %s", m.Len(), m.Version())
	}
	for _, tc := range []struct {
		name   string
		ev     ecs.Event
		fields []string
	}{
		{"file hash", ecs.Event{File: &ecs.File{Path: "/srv/a.bin", Hash: &ecs.Hash{SHA256: strings.ToUpper(hashA)}}}, []string{"file.hash.sha256"}},
		{"file path", ecs.Event{File: &ecs.File{Path: "/tmp/.x/xmrig"}}, []string{"file.path"}},
		{"file name from path", ecs.Event{File: &ecs.File{Path: "/var/tmp/kinsing"}}, []string{"file.name"}},
		{"executable", ecs.Event{Process: &ecs.Process{PID: 7, Executable: "/tmp/.x/xmrig", Name: "xmrig"}}, []string{"process.executable"}},
		{"process name", ecs.Event{Process: &ecs.Process{PID: 7, Executable: "/usr/bin/kinsing", Name: "kinsing"}}, []string{"process.name"}},
		{"mapped ip", ecs.Event{Destination: &ecs.Endpoint{IP: "::ffff:203.0.113.7", Port: 443}}, []string{"destination.ip"}},
		{"cidr", ecs.Event{Destination: &ecs.Endpoint{IP: "198.51.100.200"}}, []string{"destination.ip"}},
		{"v6 cidr on source", ecs.Event{Source: &ecs.Endpoint{IP: "2001:db8::5"}, Destination: &ecs.Endpoint{IP: "10.0.0.1"}}, []string{"source.ip"}},
		{"two", ecs.Event{File: &ecs.File{Path: "/tmp/.x/xmrig", Hash: &ecs.Hash{SHA256: hashA}}}, []string{"file.hash.sha256", "file.path"}},
		{"nothing", ecs.Event{File: &ecs.File{Path: "/tmp/.x/other", Hash: &ecs.Hash{SHA256: strings.Repeat("0", 64)}}, Destination: &ecs.Endpoint{IP: "198.51.101.1"}}, nil},
		{"bad address", ecs.Event{Destination: &ecs.Endpoint{IP: "not-an-ip"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := m.Match(&tc.ev)
			var got []string
			for _, h := range hits {
				got = append(got, h.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("matched %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestMatcherInEngine(t *testing.T) {
	m := matcher(t)
	e := detectors.NewEngine()
	e.AddBatch(m)
	ev := ecs.Event{Event: ecs.Meta{Category: "file", Type: "creation"}, File: &ecs.File{Path: "/tmp/.x/xmrig", Hash: &ecs.Hash{SHA256: hashA}}}
	fs := e.Process(&ev)
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Rule.ID != RuleID || f.Severity != "high" || len(f.Evidence) != 1 {
		t.Errorf("finding %+v", f)
	}
	for _, want := range []string{"sha256 " + hashA, `"dropper"`, "path /tmp/.x/xmrig", `"miner path"`, "file /tmp/.x/xmrig", "indicator set 3-abc"} {
		if !strings.Contains(f.Summary, want) {
			t.Errorf("summary %q lacks %q", f.Summary, want)
		}
	}
	if strings.Contains(f.Summary, "Retro") {
		t.Errorf("live summary %q says retro", f.Summary)
	}
	retro := m.Finding(&ev, m.Match(&ev), true)
	if !strings.HasPrefix(retro.Summary, "Retro-hunt: ") {
		t.Errorf("retro summary %q", retro.Summary)
	}
	// The highest severity of the indicators wins.
	ev = ecs.Event{Destination: &ecs.Endpoint{IP: "203.0.113.7", Port: 443}, Process: &ecs.Process{PID: 9, Executable: "/tmp/.x/xmrig"}}
	fs = e.Process(&ev)
	if len(fs) != 1 || fs[0].Severity != "critical" || !strings.Contains(fs[0].Summary, "connection to 203.0.113.7:443 by /tmp/.x/xmrig (pid 9)") {
		t.Errorf("findings %+v", fs)
	}
}

func TestNewMatcherRefusesBadWireIndicators(t *testing.T) {
	if _, err := NewMatcher("v", []Indicator{{Type: "ip", Value: "1.2.3.4"}, {Type: "sha256", Value: "x"}}); err == nil || !strings.Contains(err.Error(), "indicator 2") {
		t.Errorf("NewMatcher = %v, want an error naming indicator 2", err)
	}
	var nilM *Matcher
	if nilM.Match(&ecs.Event{File: &ecs.File{Path: "/x"}}) != nil {
		t.Error("a nil matcher matched")
	}
}

func TestMatchNestedCIDRs(t *testing.T) {
	m, err := NewMatcher("v", []Indicator{{Type: TypeCIDR, Value: "10.0.0.0/8"}, {Type: TypeCIDR, Value: "10.1.2.0/24"}, {Type: TypeCIDR, Value: "::/0"}})
	if err != nil {
		t.Fatal(err)
	}
	if hits := m.Match(&ecs.Event{Destination: &ecs.Endpoint{IP: "10.1.2.3"}}); len(hits) != 2 {
		t.Errorf("10.1.2.3 matched %+v, want both prefixes", hits)
	}
	if hits := m.Match(&ecs.Event{Destination: &ecs.Endpoint{IP: "10.9.2.3"}}); len(hits) != 1 || hits[0].Indicator.Value != "10.0.0.0/8" {
		t.Errorf("10.9.2.3 matched %+v, want 10.0.0.0/8 only", hits)
	}
	if hits := m.Match(&ecs.Event{Destination: &ecs.Endpoint{IP: "2001:db8::1"}}); len(hits) != 1 || hits[0].Indicator.Value != "::/0" {
		t.Errorf("2001:db8::1 matched %+v, want ::/0", hits)
	}
	if !m.Has(Indicator{Type: TypeCIDR, Value: "10.1.2.99/24"}) || m.Has(Indicator{Type: TypeCIDR, Value: "10.1.3.0/24"}) {
		t.Error("Has on CIDRs")
	}
}
