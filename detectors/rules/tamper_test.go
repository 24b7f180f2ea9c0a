package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Tampering with the agent or what it relies on (auditd, eBPF, its
// nftables table, its service) raises a finding on the host.
func TestTamperingCommandsAreDetected(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	eng := detectors.NewEngine()
	eng.AddBatch(set.Batch())
	exec := func(cmdline string) []string {
		args := strings.Fields(cmdline)
		ev := ecs.Event{
			Event:   ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
			Process: &ecs.Process{PID: 4242, Executable: args[0], Name: args[0][strings.LastIndex(args[0], "/")+1:], CommandLine: cmdline, Args: args},
		}
		var ids []string
		for _, f := range eng.Process(&ev) {
			ids = append(ids, f.Rule.ID)
		}
		return ids
	}
	for _, tt := range []struct {
		cmdline, rule string
	}{
		{"/usr/bin/systemctl stop cordon-agent", "8f3c2b7e-0d4a-4f5e-9b61-2a7c9e1d4f30"},
		{"/usr/bin/systemctl mask cordon-agent.service", "8f3c2b7e-0d4a-4f5e-9b61-2a7c9e1d4f30"},
		{"/usr/bin/pkill -9 cordon-agent", "8f3c2b7e-0d4a-4f5e-9b61-2a7c9e1d4f30"},
		{"/usr/sbin/bpftool net detach xdp dev eth0", "3e9a51c4-7b2d-4c8e-a0f6-5d1b8c2e7a94"},
		{"/usr/sbin/bpftool link detach id 12", "3e9a51c4-7b2d-4c8e-a0f6-5d1b8c2e7a94"},
		{"/usr/sbin/nft delete table inet cordon", "c4d7e2a9-51f3-4b68-8e0c-9f2a6b3d1e75"},
		{"/usr/sbin/nft flush ruleset", "c4d7e2a9-51f3-4b68-8e0c-9f2a6b3d1e75"},
		{"/usr/sbin/auditctl -D", "bed26dea-4525-47f4-b24a-76e30e44ffb0"}, // SigmaHQ's
		{"/usr/sbin/auditctl -e 0", "95dc3d71-5636-453c-8332-5ba1928b596f"},
	} {
		if got := exec(tt.cmdline); !slices.Contains(got, tt.rule) {
			t.Errorf("%q: rules %v, want %s", tt.cmdline, got, tt.rule)
		}
	}
	for _, benign := range []string{
		"/usr/bin/systemctl status cordon-agent",
		"/usr/bin/systemctl restart nginx",
		"/usr/sbin/bpftool prog show",
		"/usr/sbin/nft list table inet cordon",
		"/usr/sbin/nft add rule inet filter input accept",
	} {
		for _, id := range exec(benign) {
			switch id {
			case "8f3c2b7e-0d4a-4f5e-9b61-2a7c9e1d4f30", "3e9a51c4-7b2d-4c8e-a0f6-5d1b8c2e7a94", "c4d7e2a9-51f3-4b68-8e0c-9f2a6b3d1e75":
				t.Errorf("%q raised the tampering rule %s", benign, id)
			}
		}
	}
}
