package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want Info
	}{
		{
			name: "ordinary",
			stat: "1234 (sleep) S 1000 1234 1000 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100 18446744073709551615",
			want: Info{PID: 1234, PPID: 1000, Comm: "sleep", State: 'S', StartTicks: 987654},
		},
		{
			name: "name with spaces and parentheses",
			stat: "1234 (my (evil) prog) T 1000 1234 1000 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 55 1000 100 18446744073709551615",
			want: Info{PID: 1234, PPID: 1000, Comm: "my (evil) prog", State: 'T', StartTicks: 55},
		},
		{
			name: "kernel thread by flag",
			stat: "77 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 12 0 0 18446744073709551615",
			want: Info{PID: 77, PPID: 2, Comm: "kworker/0:1", State: 'I', StartTicks: 12, Kernel: true},
		},
	}
	for _, tt := range tests {
		got, err := parseStat(tt.want.PID, []byte(tt.stat))
		if err != nil || got != tt.want {
			t.Errorf("%s: parseStat = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "12 no parens", "12 (x) S 1"} {
		if _, err := parseStat(12, []byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (sleep) S 1000 1234 1000 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100 1"))
	f.Add([]byte("1 ()) ) R x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStat(1, b) // must not panic
	})
}

// sleeper starts a real process for the controller to act on.
func sleeper(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sh: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func newController(t *testing.T) *Controller {
	t.Helper()
	c, err := New(nil)
	if err != nil {
		t.Skipf("no boot id here: %v", err)
	}
	return c
}

func TestKillChecksEntity(t *testing.T) {
	c := newController(t)
	cmd := sleeper(t, "exec sleep 300")
	pid := cmd.Process.Pid
	in, err := readInfo("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	// The entity id of an earlier process with this pid: refused.
	earlier := in
	earlier.StartTicks--
	stale := c.EntityID(earlier)
	if _, err := c.Do(context.Background(), Request{Action: Kill, PID: pid, EntityID: stale}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "reused") {
		t.Fatalf("kill with a stale entity id: %v", err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the process died after a refused kill: %v", err)
	}
	res, err := c.Do(context.Background(), Request{Action: Kill, PID: pid, EntityID: c.EntityID(in)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "killed pid") {
		t.Errorf("result %q", res)
	}
	werr := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want SIGKILL", werr)
	}
}

func TestKillTree(t *testing.T) {
	c := newController(t)
	cmd := sleeper(t, "sleep 300 & sleep 300 & wait")
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for len(c.children(pid)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the shell did not start its children")
		}
		time.Sleep(10 * time.Millisecond)
	}
	kids := c.children(pid)
	res, err := c.Do(context.Background(), Request{Action: Kill, PID: pid, Tree: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "and 2 descendants") {
		t.Errorf("result %q", res)
	}
	cmd.Wait()
	for _, k := range kids {
		deadline := time.Now().Add(5 * time.Second)
		for {
			in, err := readInfo("/proc", k)
			if errors.Is(err, ErrGone) || in.State == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("descendant %d survived the tree kill (state %c)", k, in.State)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestSuspendResume(t *testing.T) {
	c := newController(t)
	cmd := sleeper(t, "exec sleep 300")
	pid := cmd.Process.Pid
	if _, err := c.Do(context.Background(), Request{Action: Suspend, PID: pid}); err != nil {
		t.Fatal(err)
	}
	if in, _ := readInfo("/proc", pid); in.State != 'T' {
		t.Fatalf("state after suspend %c", in.State)
	}
	if _, err := c.Do(context.Background(), Request{Action: Resume, PID: pid}); err != nil {
		t.Fatal(err)
	}
	if in, _ := readInfo("/proc", pid); in.State == 'T' {
		t.Fatalf("still stopped after resume")
	}
}

func TestRefusals(t *testing.T) {
	c := newController(t)
	for _, pid := range []int{1, os.Getpid()} {
		if _, err := c.Do(context.Background(), Request{Action: Kill, PID: pid}); !errors.Is(err, ErrRefused) {
			t.Errorf("kill %d: %v, want a refusal", pid, err)
		}
	}
	if in, err := readInfo("/proc", 2); err == nil && in.Kernel {
		if _, err := c.Do(context.Background(), Request{Action: Kill, PID: 2}); !errors.Is(err, ErrRefused) {
			t.Errorf("kill of kernel thread %s: %v, want a refusal", in.Comm, err)
		}
	}
	if _, err := c.Do(context.Background(), Request{Action: Kill, PID: 1 << 30}); err == nil {
		t.Error("kill of a pid that does not exist succeeded")
	}
}
