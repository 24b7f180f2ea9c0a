package sensor

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A process reaped before the sensor reads /proc is still reported with
// its executable, argv, parent and entity id, from the kernel's record.
func TestExecCaptureFillsReapedProcess(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: loading eBPF programs needs root")
	}
	c, err := openExecCapture()
	if err != nil {
		t.Skipf("skipping: eBPF exec capture unavailable here: %v", err)
	}
	c.bad = func(err error) { t.Errorf("record: %v", err) }
	defer c.close()

	p := NewProcess(Options{NoEBPF: true})
	p.execs = c
	p.bootID, _ = p.fs.bootID()
	p.boot, _ = p.fs.bootTime()

	marker := "cordon-ebpf-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	long := strings.Repeat("x", 3000) // past one page, under the 4 KiB cap
	cmd := exec.Command("/bin/true", marker, long)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// The process is reaped: /proc knows nothing of it.
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Skip("pid reused already")
	}
	ev := p.execEvent(procEvent{kind: procEventExec, pid: pid, tgid: pid}, time.Now())
	pr := ev.Process
	if !slices.Equal(pr.Args, []string{"/bin/true", marker, long}) {
		t.Fatalf("args = %.80q, want /bin/true %s and the long argument", pr.Args, marker)
	}
	if pr.Executable != "/bin/true" || pr.Name != "true" {
		t.Errorf("executable %q name %q", pr.Executable, pr.Name)
	}
	if pr.Parent == nil || pr.Parent.PID != os.Getpid() {
		t.Errorf("parent %+v, want this test (pid %d)", pr.Parent, os.Getpid())
	}
	if !strings.HasPrefix(pr.EntityID, p.bootID+"-"+strconv.Itoa(pid)+"-") || pr.EntityID == p.bootID+"-"+strconv.Itoa(pid)+"-0" {
		t.Errorf("entity id %q", pr.EntityID)
	}
	if d := time.Since(pr.Start); d < 0 || d > time.Minute {
		t.Errorf("start %v is not a moment ago", pr.Start)
	}
	if pr.User.ID != "0" {
		t.Errorf("user id %q", pr.User.ID)
	}
	if p.Stats().Lost != 0 {
		t.Errorf("a process recovered from the kernel's record counted as lost: %+v", p.Stats())
	}
}

// A live process takes its arguments from the kernel's record and the
// rest (resolved executable, working directory) from /proc.
func TestExecCaptureLiveProcess(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: loading eBPF programs needs root")
	}
	c, err := openExecCapture()
	if err != nil {
		t.Skipf("skipping: eBPF exec capture unavailable here: %v", err)
	}
	c.bad = func(err error) { t.Errorf("record: %v", err) }
	defer c.close()
	p := NewProcess(Options{NoEBPF: true})
	p.execs = c
	p.bootID, _ = p.fs.bootID()
	p.boot, _ = p.fs.bootTime()

	cmd := exec.Command("/bin/sleep", "5")
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	// Start returns once the exec is past its point of no return, which
	// comes before the tracepoint: wait for the record, as the
	// connector's event, sent after the tracepoint, would.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.drain()
		if len(c.store.byPID[pid]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no kernel record of the exec")
		}
	}
	ev := p.execEvent(procEvent{kind: procEventExec, pid: pid, tgid: pid}, time.Now())
	pr := ev.Process
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	st, err := p.fs.stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	// The entity id built from the kernel's start time is the one /proc
	// gives, so events from either source name the same process.
	if want := p.bootID + "-" + strconv.Itoa(pid) + "-" + strconv.FormatUint(st.startTicks, 10); pr.EntityID != want || pr.Parent == nil || pr.Parent.PID != os.Getpid() {
		t.Errorf("entity id %q parent %+v, want %q and this test", pr.EntityID, pr.Parent, want)
	}
	if !slices.Equal(pr.Args, []string{"/bin/sleep", "5"}) || pr.Executable != exe || pr.WorkingDirectory != "/" || pr.User.ID != "0" {
		t.Errorf("event %+v, want args from the kernel and executable %s, cwd / from /proc", pr, exe)
	}
}
