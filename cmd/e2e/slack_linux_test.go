package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The agent runs with a timer slack of a millisecond, set before its
// runtime started any thread: it executes itself again, in the same
// process, at the start of `run`.
func TestAgentRunsWithTimerSlack(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	state, id := c.enroll(t)
	agent := startCmd(t, "cordon-agent", exec.Command(bin("cordon-agent"), "run", "--state", state))
	c.agentOnline(t, id)

	pid := agent.cmd.Process.Pid
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/timerslack_ns")
	if err != nil {
		t.Fatalf("the agent's timer slack: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != "1000000" {
		t.Errorf("agent process %d runs with a timer slack of %s ns, want 1000000\n%s", pid, got, agent.Log())
	}
	if log := agent.Log(); strings.Contains(log, "timer slack left as it was") {
		t.Errorf("the agent says it runs without its timer slack:\n%s", log)
	}
	// The slack of the main thread alone would read the same; the other
	// threads' cannot be read. That the running image was executed again
	// shows in the environment it started with, which holds the marker
	// the agent sets for its second start (its children do not get it).
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\x00"+string(env), "\x00CORDON_TIMER_SLACK_EXEC=1\x00") {
		t.Errorf("agent process %d was not started again with the slack: its environment lacks the marker", pid)
	}
}
