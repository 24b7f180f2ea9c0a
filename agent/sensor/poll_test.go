package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPollSeesChild runs without privileges on any OS with a sleep
// command.
func TestPollSeesChild(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command:", err)
	}
	p := NewProcess(Options{ForcePoll: true, PollInterval: 20 * time.Millisecond})
	out := runSensor(t, p)
	if mode, reason := waitMode(t, p); mode != "poll" || reason == "" {
		t.Fatalf("Mode() = %q, %q", mode, reason)
	}

	cmd := exec.Command(sleep, "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	pid := cmd.Process.Pid

	deadline := time.After(3 * time.Second)
	for started := false; ; {
		select {
		case e := <-out:
			if e.Process == nil || e.Process.PID != pid {
				continue
			}
			if e.Event.Category != "process" || e.Event.Module != "poll" {
				t.Errorf("event.* = %+v", e.Event)
			}
			if !started {
				if e.Event.Type != "start" {
					t.Fatalf("first event of the child is %q, want start", e.Event.Type)
				}
				pr := e.Process
				if filepath.Base(pr.Executable) != "sleep" || pr.Name != "sleep" {
					t.Errorf("executable %q, name %q, want sleep", pr.Executable, pr.Name)
				}
				if !slices.Equal(pr.Args, []string{sleep, "2"}) || pr.CommandLine != sleep+" 2" {
					t.Errorf("args %q, command line %q", pr.Args, pr.CommandLine)
				}
				if pr.EntityID == "" || pr.Start.IsZero() || pr.User.ID == "" {
					t.Errorf("entity id %q, start %v, user %+v: want all set", pr.EntityID, pr.Start, pr.User)
				}
				if pr.Parent == nil || pr.Parent.PID != os.Getpid() || pr.Parent.EntityID == "" {
					t.Errorf("parent = %+v, want this test with an entity id", pr.Parent)
				}
				started = true
				// Ending it early makes the end event come quickly; it
				// stays in the process table until reaped.
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				continue
			}
			if e.Event.Type != "end" {
				t.Fatalf("second event of the child is %q, want end", e.Event.Type)
			}
			return
		case <-deadline:
			t.Fatalf("no start and end events for pid %d within 3s (stats %+v)", pid, p.Stats())
		}
	}
}
