package buildinfo

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	defer func() { Version, Commit, Date = old[0], old[1], old[2] }()
	Version, Commit, Date = "v1.2.3", "abc1234", "2026-01-02T03:04:05Z"
	got := String("cordon-agent")
	if !strings.HasPrefix(got, "cordon-agent v1.2.3 (commit abc1234, built 2026-01-02T03:04:05Z, go") {
		t.Errorf("got %q", got)
	}
	Version, Commit, Date = "", "", ""
	if i := Get(); i.Version == "" || i.Commit == "" || i.Date == "" {
		t.Errorf("unstamped: %+v", i)
	}
}
