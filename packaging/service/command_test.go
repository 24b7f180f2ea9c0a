package service

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestCommandRefusesBadLinesAndBadConfigurations(t *testing.T) {
	bad := errors.New("/etc/x.yaml: line 3: nope")
	var checked []string
	check := func(path string) error {
		checked = append(checked, path)
		return bad
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "service: want one of install, uninstall, start, stop, status"},
		{[]string{"restartt"}, true, "want one of install"},
		{[]string{"status", "extra"}, true, `cordon-agent service status: unexpected argument "extra"`},
		{[]string{"start", "--nope"}, true, "flag provided but not defined: -nope"},
		{[]string{"install", "--config", "/etc/x.yaml"}, false, bad.Error()},
	} {
		var out, errOut strings.Builder
		err := Command(Agent, "/etc/cordon/agent.yaml", check, tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, new(UsageError)) != tc.usage {
			t.Errorf("%v: %v, want %q (usage error %v)", tc.args, err, tc.want, tc.usage)
		}
		if out.Len() > 0 {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
	}
	if len(checked) != 1 || checked[0] != "/etc/x.yaml" {
		t.Errorf("configurations checked: %q, want only the one install names", checked)
	}
	var errOut strings.Builder
	if err := Command(Collector, "/etc/cordon/collector.yaml", check, []string{"install", "-h"}, &strings.Builder{}, &errOut); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(errOut.String(), "default /etc/cordon/collector.yaml when it exists") {
		t.Errorf("install -h: %v, help %q", err, errOut.String())
	}
}
