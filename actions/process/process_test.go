package process

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		action  string
		args    map[string]string
		want    Request
		wantErr string
	}{
		{"kill", map[string]string{"pid": "42"}, Request{Action: Kill, PID: 42}, ""},
		{"suspend", map[string]string{"pid": " 7 ", "entity_id": "b-7-9", "tree": "true"}, Request{Action: Suspend, PID: 7, EntityID: "b-7-9", Tree: true}, ""},
		{"kill", map[string]string{}, Request{}, "args.pid"},
		{"kill", map[string]string{"pid": "-3"}, Request{}, "args.pid"},
		{"resume", map[string]string{"pid": "3", "tree": "yes please"}, Request{}, "args.tree"},
		{"explode", map[string]string{"pid": "3"}, Request{}, "unknown process action"},
	}
	for _, tt := range tests {
		got, err := ParseRequest(tt.action, tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRequest(%s, %v) = %v, want error %q", tt.action, tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%s, %v) = %+v, %v; want %+v", tt.action, tt.args, got, err, tt.want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := Policy{Self: 500, Ancestors: []int{400, 300}, Protected: []string{"sshd", "/usr/lib/systemd/systemd-journald"}}
	tests := []struct {
		name string
		in   Info
		ok   bool
	}{
		{"ordinary", Info{PID: 1000, Comm: "sleep", Exe: "/usr/bin/sleep"}, true},
		{"init", Info{PID: 1, Comm: "systemd"}, false},
		{"kernel thread", Info{PID: 77, Comm: "kworker/0:1", Kernel: true}, false},
		{"the agent", Info{PID: 500, Comm: "cordon-agent"}, false},
		{"an ancestor", Info{PID: 300, Comm: "bash"}, false},
		{"protected name", Info{PID: 900, Comm: "sshd", Exe: "/usr/sbin/sshd"}, false},
		{"protected path", Info{PID: 901, Comm: "systemd-journal", Exe: "/usr/lib/systemd/systemd-journald"}, false},
		{"same name elsewhere is a name match", Info{PID: 902, Comm: "x", Exe: "/tmp/sshd"}, false},
		{"path does not match another path", Info{PID: 903, Comm: "systemd-journald", Exe: "/tmp/systemd-journald"}, true},
	}
	for _, tt := range tests {
		err := p.Check(tt.in)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s: Check = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
