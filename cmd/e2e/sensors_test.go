package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sensorEvent is the part of `cordon-agent events --json` these tests read.
type sensorEvent struct {
	Event struct {
		Category, Type, Action, Module string
	} `json:"event"`
	File *struct {
		Path string `json:"path"`
		Mode string `json:"mode"`
		Hash *struct {
			SHA256 string `json:"sha256"`
		} `json:"hash"`
	} `json:"file"`
	Process *struct {
		PID        int    `json:"pid"`
		Executable string `json:"executable"`
		EntityID   string `json:"entity_id"`
	} `json:"process"`
	Source *struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	} `json:"source"`
}

type statusJSON struct {
	Sensors []struct {
		Name, Mode, Reason    string
		Events, Lost, Dropped uint64
	} `json:"sensors"`
}

// The file and network sensors run in the real agent: a file written
// below a watched folder (in a folder created after the agent started)
// and a new listener reach `cordon-agent events`, and `cordon-agent
// status` names each sensor's mode and counters.
func TestFileAndNetworkSensors(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	watched := t.TempDir()
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	yaml := fmt.Sprintf("sensors:\n  file:\n    paths: [%q]\n    hash_max_bytes: 4096\n", watched+"/...")
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "cordon-agent", "run", "--state", state, "--config", conf)
	c.agentOnline(t, id)

	var st statusJSON
	eventually(t, 20*time.Second, "three sensors in status", func() error {
		out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		modes := map[string]string{}
		for _, s := range st.Sensors {
			modes[s.Name] = s.Mode
		}
		// As root the network sensor runs its eBPF program; sock_diag is
		// its fallback where eBPF cannot load.
		// As root the file sensor names the process behind each change
		// through fanotify.
		wantFile := "fsnotify"
		if os.Getuid() == 0 {
			wantFile = "fsnotify+fanotify"
		}
		if modes["process"] == "" || modes["file"] != wantFile || (modes["network"] != "ebpf" && modes["network"] != "sock_diag") {
			return fmt.Errorf("modes %v", modes)
		}
		return nil
	})

	out, _ := followEvents(t, state)
	events := make(chan sensorEvent, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev sensorEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		close(events)
	}()
	waitEvent := func(what string, match func(sensorEvent) bool) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("events stream ended before %s", what)
				}
				if match(ev) {
					return
				}
			case <-timeout:
				t.Fatalf("no event for %s", what)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // let the follower subscribe

	dir := filepath.Join(watched, "cron.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	payload := []byte("* * * * * root /dev/shm/x\n")
	job := filepath.Join(dir, "job")
	if err := os.WriteFile(job, payload, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	waitEvent("the job file with its hash", func(ev sensorEvent) bool {
		return ev.Event.Category == "file" && ev.File != nil && ev.File.Path == job &&
			ev.File.Hash != nil && ev.File.Hash.SHA256 == hex.EncodeToString(sum[:])
	})
	if err := os.Chmod(job, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	waitEvent("the setuid bit", func(ev sensorEvent) bool {
		return ev.Event.Category == "file" && ev.Event.Action == "attributes_modified" && ev.File.Path == job && ev.File.Mode == "4755"
	})

	if os.Getuid() == 0 {
		// Another process writes: the change names it. It lives on a
		// moment after the write, as most writers do.
		marker := filepath.Join(watched, "written-by-sh")
		sh := exec.Command("/bin/sh", "-c", `echo x > "$1"; sleep 2`, "writer", marker)
		if err := sh.Start(); err != nil {
			t.Fatal(err)
		}
		shExe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sh.Process.Pid))
		waitEvent("the shell's write with its process", func(ev sensorEvent) bool {
			return ev.Event.Category == "file" && ev.File != nil && ev.File.Path == marker && ev.Event.Module == "fanotify" &&
				ev.Process != nil && ev.Process.PID == sh.Process.Pid && ev.Process.Executable == shExe && ev.Process.EntityID != ""
		})
		if err := sh.Wait(); err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	self, _ := os.Executable()
	waitEvent("the new listener", func(ev sensorEvent) bool {
		return ev.Event.Category == "network" && ev.Event.Type == "start" && ev.Source != nil && ev.Source.Port == port &&
			ev.Process != nil && ev.Process.PID == os.Getpid() && filepath.Base(ev.Process.Executable) == filepath.Base(self)
	})

	out2, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out2, &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Sensors {
		if (s.Name == "file" || s.Name == "network") && s.Events == 0 {
			t.Errorf("sensor %s reports no events after delivering some: %+v", s.Name, s)
		}
	}
}

// An agent over its memory budget sheds the hashing of changed files, says
// so in status, and still reports the changes. The budget here is below
// what any agent needs, so it is over from its first sample.
func TestWatchdogShedsOverBudget(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	watched := t.TempDir()
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	yaml := fmt.Sprintf("sensors:\n  file:\n    paths: [%q]\nbudget:\n  memory_mib: 16\n", watched+"/...")
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "cordon-agent", "run", "--state", state, "--config", conf)
	c.agentOnline(t, id)

	var st struct {
		Self struct {
			CPUPercent     float64  `json:"cpu_percent"`
			RSSBytes       uint64   `json:"rss_bytes"`
			BudgetRSSBytes uint64   `json:"budget_rss_bytes"`
			OverBudget     string   `json:"over_budget"`
			Shed           []string `json:"shed"`
		} `json:"self"`
	}
	eventually(t, 30*time.Second, "file hashing shed in status", func() error {
		out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		if len(st.Self.Shed) == 0 || st.Self.Shed[0] != "file hashing off" || st.Self.OverBudget == "" {
			return fmt.Errorf("self %+v", st.Self)
		}
		return nil
	})
	if st.Self.RSSBytes <= 16<<20 || st.Self.BudgetRSSBytes != 16<<20 {
		t.Errorf("self %+v, want resident memory over the 16 MiB budget", st.Self)
	}
	human, err := exec.Command(bin("cordon-agent"), "status", "--state", state).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(human), "shed: file hashing off") {
		t.Errorf("status does not say what was shed:\n%s", human)
	}

	out, _ := followEvents(t, state)
	time.Sleep(500 * time.Millisecond) // let the follower subscribe
	path := filepath.Join(watched, "payload")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	got := make(chan sensorEvent, 1)
	go func() {
		for sc.Scan() {
			var ev sensorEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.File != nil && ev.File.Path == path {
				got <- ev
				return
			}
		}
	}()
	select {
	case ev := <-got:
		if ev.File.Hash != nil {
			t.Errorf("file event hashed while hashing is shed: %+v", ev.File)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event for the written file")
	}
}
