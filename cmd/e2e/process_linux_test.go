package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// target is a real process for the process actions to act on.
type target struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startTarget(t *testing.T, script string) *target {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tg := &target{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(tg.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-tg.done })
	return tg
}

func (tg *target) pid() string { return strconv.Itoa(tg.cmd.Process.Pid) }

// state is the one-letter state of the process in /proc.
func (tg *target) state(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + tg.pid() + "/stat")
	if err != nil {
		return "gone"
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// entityID computes the target's process.entity_id the way the sensor
// does: boot id, pid and start time in clock ticks.
func (tg *target) entityID(t *testing.T, startDelta int) string {
	t.Helper()
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no boot id: %v", err)
	}
	b, err := os.ReadFile("/proc/" + tg.pid() + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	ticks, err := strconv.Atoi(strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[19])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s-%s-%d", strings.TrimSpace(string(boot)), tg.pid(), ticks+startDelta)
}

func (tg *target) wantKilled(t *testing.T) {
	t.Helper()
	select {
	case <-tg.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the target is still running")
	}
	if ws := tg.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the target ended with %v, want SIGKILL", tg.cmd.ProcessState)
	}
}

func needLinux(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux's /proc: process actions are carried out on Linux only")
	}
}

func TestProcessActions(t *testing.T) {
	needLinux(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	agent := start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	// The pid now belongs to another process than the entity named.
	victim := startTarget(t, "exec sleep 300")
	out, err := c.ctl("kill", id, "--pid", victim.pid(), "--entity-id", victim.entityID(t, -1), "--wait")
	if err == nil || !strings.Contains(out, "reused") {
		t.Fatalf("kill of a reused pid was not refused: %v\n%s", err, out)
	}
	if s := victim.state(t); s == "gone" || s == "Z" {
		t.Fatal("a refused kill killed the process")
	}

	out, err = c.ctl("suspend", id, "--pid", victim.pid(), "--entity-id", victim.entityID(t, 0), "--wait")
	if err != nil || victim.state(t) != "T" {
		t.Fatalf("suspend: %v, state %s\n%s", err, victim.state(t), out)
	}
	out, err = c.ctl("resume", id, "--pid", victim.pid(), "--wait")
	if err != nil || victim.state(t) == "T" {
		t.Fatalf("resume: %v, state %s\n%s", err, victim.state(t), out)
	}
	if out, err := c.ctl("kill", id, "--pid", victim.pid(), "--entity-id", victim.entityID(t, 0), "--wait"); err != nil {
		t.Fatalf("kill: %v\n%s", err, out)
	}
	victim.wantKilled(t)

	// A whole tree.
	tree := startTarget(t, "sleep 300 & sleep 300 & wait")
	time.Sleep(200 * time.Millisecond)
	out, err = c.ctl("kill", id, "--pid", tree.pid(), "--tree", "--wait")
	if err != nil || !strings.Contains(out, "descendants") {
		t.Fatalf("tree kill: %v\n%s", err, out)
	}
	tree.wantKilled(t)

	// Never pid 1, never the agent itself.
	for _, pid := range []string{"1", strconv.Itoa(agent.cmd.Process.Pid)} {
		if out, err := c.ctl("kill", id, "--pid", pid, "--wait"); err == nil || !strings.Contains(out, "refused") {
			t.Fatalf("kill of pid %s was not refused: %v\n%s", pid, err, out)
		}
	}
}

// A command for an offline agent waits for it; one whose time ran out
// before the agent came back is never run.
func TestCommandsWhileOffline(t *testing.T) {
	needLinux(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	agent := start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)
	agent.stop()

	suspended := startTarget(t, "exec sleep 300")
	spared := startTarget(t, "exec sleep 300")
	var pending struct{ ID, Status string }
	c.ctlJSON(t, &pending, "suspend", id, "--pid", suspended.pid(), "--json")
	expiring := c.post(t, "/api/v1/commands", map[string]any{"agent_id": id, "action": "kill", "args": map[string]any{"pid": spared.pid()}, "ttl": "1s"})
	time.Sleep(1500 * time.Millisecond)

	start(t, "cordon-agent", "run", "--state", state)
	eventually(t, 30*time.Second, "the queued suspend to run", func() error {
		out, err := c.ctl("commands", "--agent", id, "--json")
		if err != nil {
			return err
		}
		var cmds []struct{ ID, Status string }
		if err := json.Unmarshal([]byte(out), &cmds); err != nil {
			return err
		}
		for _, cmd := range cmds {
			if cmd.ID == pending.ID && cmd.Status == "succeeded" {
				return nil
			}
		}
		return fmt.Errorf("not succeeded: %s", out)
	})
	if s := suspended.state(t); s != "T" {
		t.Errorf("the queued suspend did not stop the process: state %s", s)
	}
	var exp struct{ Status string }
	if err := c.get(t, "/api/v1/commands/"+expiring, &exp); err != nil {
		t.Fatal(err)
	}
	if exp.Status != "expired" {
		t.Errorf("the command past its expiry is %s", exp.Status)
	}
	if s := spared.state(t); s == "gone" || s == "Z" {
		t.Error("the command past its expiry was run")
	}
}

// post sends a JSON body to the API and returns the created id.
func (c *collector) post(t testing.TB, path string, body any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+c.api+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
	}
	return out.ID
}

func (c *collector) get(t testing.TB, path string, v any) error {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// A real pid reuse: the process a responder saw exits, the kernel hands
// its pid to a new process, and a kill naming the old entity is refused.
func TestKillRefusesReusedPid(t *testing.T) {
	needLinux(t)
	if os.Getuid() != 0 {
		t.Skip("needs root: the test steers the kernel's next pid through /proc/sys/kernel/ns_last_pid")
	}
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	first := startTarget(t, "exec sleep 300")
	pid, seen := first.cmd.Process.Pid, first.entityID(t, 0)
	first.cmd.Process.Kill()
	<-first.done
	// Entity ids carry the start time in clock ticks (10 ms): a process
	// started in the same tick with the same pid would be the same
	// entity, which a real pid wrap-around never is.
	time.Sleep(30 * time.Millisecond)

	var second *target
	for try := 0; try < 50 && second == nil; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot steer the next pid: %v", err)
		}
		tg := startTarget(t, "exec sleep 300")
		if tg.cmd.Process.Pid == pid {
			second = tg
			break
		}
		tg.cmd.Process.Kill()
		<-tg.done
	}
	if second == nil {
		t.Skip("another process took the pid each time; the reuse could not be arranged")
	}
	if now := second.entityID(t, 0); now == seen {
		t.Fatalf("the new process has the old entity id %s", seen)
	}
	out, err := c.ctl("kill", id, "--pid", strconv.Itoa(pid), "--entity-id", seen, "--wait")
	if err == nil || !strings.Contains(out, "reused") {
		t.Fatalf("kill of a reused pid was not refused: %v\n%s", err, out)
	}
	if s := second.state(t); s == "gone" || s == "Z" {
		t.Fatal("the kill hit the process that now has the pid")
	}
}
