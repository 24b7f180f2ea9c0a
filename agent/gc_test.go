package agent

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestGCWhenQuiet(t *testing.T) {
	const busy = 120
	old := debug.SetGCPercent(busy)
	defer debug.SetGCPercent(old)
	t.Setenv("GOGC", "") // present, even empty: set by the operator
	if f := gcWhenQuiet(); f != nil {
		t.Error("with GOGC in the environment, the agent sets the collector's target all the same")
	}
	// Unset: t.Setenv's cleanup puts back what the environment had.
	os.Unsetenv("GOGC")
	f := gcWhenQuiet()
	if f == nil {
		t.Fatal("without GOGC, nothing tells the collector the agent is quiet")
	}
	for i, tc := range []struct {
		quiet bool
		want  int
	}{
		{true, quietGCPercent},
		{false, busy},
		{true, quietGCPercent},
		{false, busy},
	} {
		f(tc.quiet)
		if got := debug.SetGCPercent(-1); got != tc.want {
			t.Errorf("step %d, quiet %v: GOGC %d, want %d", i, tc.quiet, got, tc.want)
		}
		debug.SetGCPercent(tc.want)
	}
}
