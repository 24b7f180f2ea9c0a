package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordon-edr/cordon/detectors/coverage"
)

var updateCoverage = flag.Bool("update", false, "rewrite the live section of docs/detection-coverage.md (TestAtomicLive)")

const (
	atomicsJSON = "../../detectors/coverage/testdata/linux-tests.json"
	atomicsSrc  = "../../detectors/coverage/testdata/src"
	// Inside the disposable environment.
	sandboxAgent = "/opt/cordon-e2e/cordon-agent"
	sandboxState = "/var/lib/cordon-e2e"
	// atomicTimeout bounds each test, prerequisite and cleanup.
	atomicTimeout = 10 * time.Second
	// fileSettle is how long after a test ends its file changes may still
	// be read by the agent; file findings carry no process, so they are
	// attributed by time.
	fileSettle = time.Second
	// atomicInput is every test's standard input: it ends the shells the
	// interactive test (T1059.006, pty.spawn) starts.
	atomicInput = "exit\nexit\n"
)

// sandboxSetup builds the disposable environment inside a new mount
// namespace: the root becomes an overlay over the host's / with its upper
// folder on a tmpfs, with fresh tmpfs on /tmp, /var/tmp, /run and
// /dev/shm (so no host socket in them can be reached through the overlay,
// systemd's and D-Bus's included), a read-only /sys, and the host's old
// root unmounted after pivot_root. Then it runs the agent there.
const sandboxSetup = `set -eu
mount -t tmpfs -o size=1g,mode=0700 cordon-atomics "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
R="$W/root"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -o remount,bind,ro "$R/sys"
mount --rbind /dev "$R/dev"
for d in tmp var/tmp run dev/shm; do mount -t tmpfs -o mode=1777 tmpfs "$R/$d"; done
mkdir -p "$R/opt/cordon-e2e" "$R$STATE" "$R/tmp/AtomicRedTeam/atomics"
cp "$AGENT" "$R/opt/cordon-e2e/cordon-agent"
cp -a "$ENROLLED/." "$R$STATE/"
for d in "$SRC"/*/; do
	t=$(basename "$d")
	mkdir -p "$R/tmp/AtomicRedTeam/atomics/$t/src"
	cp -r "$d." "$R/tmp/AtomicRedTeam/atomics/$t/src/"
done
chmod -R a+rX "$R/tmp/AtomicRedTeam"
printf 'state: %s\n' "$STATE" > "$R/opt/cordon-e2e/agent.yaml"
# A host administered over SSH has an authorized_keys file.
mkdir -p -m 0700 "$R/root/.ssh"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVvYmVycGFzc3dvcmRzYXJlbm90a2V5c2F0YWxs admin@example\n' > "$R/root/.ssh/authorized_keys"
mkdir "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
exec /opt/cordon-e2e/cordon-agent run --config /opt/cordon-e2e/agent.yaml --state "$STATE"
`

// sandbox is the running disposable environment and its agent.
type sandbox struct {
	agent *exec.Cmd
	done  chan struct{}
	log   string
	netns string
}

func (s *sandbox) pid() string { return strconv.Itoa(s.agent.Process.Pid) }

// run executes script with shell inside the environment: in the agent's
// mount namespace, the test's network namespace (loopback only) and a new
// PID namespace with its own /proc, whose processes all end when the
// shell does. It returns the pid (in the host's namespace) of the process
// every process of the run descends from.
func (s *sandbox) run(shell, script string) (root int, out string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), atomicTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--target", s.pid(), "--mount", "--net=/run/netns/"+s.netns, "--",
		"unshare", "--pid", "--mount-proc", "--kill-child", "--wd=/root", "--", shell, "-c", script)
	cmd.Env = []string{"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "LANG=C.UTF-8",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin = strings.NewReader(atomicInput)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("starting %s in the environment: %w", shell, err)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", atomicTimeout)
	}
	return cmd.Process.Pid, b.String(), err
}

// ctl runs a cordon-agent command against the agent inside.
func (s *sandbox) ctl(args ...string) ([]byte, error) {
	return exec.Command("nsenter", append([]string{"--target", s.pid(), "--mount", "--", sandboxAgent}, args...)...).Output()
}

func startSandbox(t *testing.T, enrolled string) *sandbox {
	t.Helper()
	s := &sandbox{done: make(chan struct{}), netns: fmt.Sprintf("cordon-art%d%d", os.Getpid()%10000, rand.IntN(1000))}
	sh(t, "ip", "netns", "add", s.netns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.netns).Run() })
	sh(t, "ip", "-n", s.netns, "link", "set", "lo", "up")

	src, err := filepath.Abs(atomicsSrc)
	if err != nil {
		t.Fatal(err)
	}
	s.log = filepath.Join(t.TempDir(), "cordon-agent.log")
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.agent = exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", sandboxSetup)
	s.agent.Env = append(os.Environ(), "W="+t.TempDir(), "AGENT="+bin("cordon-agent"), "ENROLLED="+enrolled,
		"STATE="+sandboxState, "SRC="+src)
	s.agent.Stdout, s.agent.Stderr = f, f
	if err := s.agent.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.agent.Wait(); f.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("log of the agent in the environment:\n%s", b)
		}
	})
	return s
}

// stop ends the agent, and with it the environment: its mount namespace
// goes with its last process, the overlay's tmpfs with it.
func (s *sandbox) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.agent.Process.Signal(unix.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.agent.Process.Kill()
		<-s.done
	}
}

// liveFinding is the part of a finding the live run reads.
type liveFinding struct {
	ID   string `json:"id"`
	Rule struct {
		Name string `json:"name"`
	} `json:"rule"`
	Attack struct {
		Techniques []string `json:"techniques"`
	} `json:"attack"`
	Evidence []struct {
		Timestamp time.Time `json:"@timestamp"`
		Process   *struct {
			PID    int `json:"pid"`
			Parent *struct {
				PID int `json:"pid"`
			} `json:"parent"`
			Ancestry []struct {
				PID int `json:"pid"`
			} `json:"ancestry"`
		} `json:"process"`
		File *struct {
			Path string `json:"path"`
		} `json:"file"`
	} `json:"evidence"`
}

// liveResult is what happened to one test.
type liveResult struct {
	a          *coverage.Atomic
	skipped    string // why it did not run
	root       int
	start, end time.Time
	exit       string
	rules      []string
	techniques []string
	detected   bool
	right      bool
}

// belongs reports whether a finding was raised for the test's run: one
// of its evidence events is by a process descending from the run's root
// process (by pid, within the run's time), or, for an event whose process
// comes without lineage (a file change whose writer the agent could not
// trace, or one with no writer at all), happened while the test ran.
func (r *liveResult) belongs(f *liveFinding) bool {
	for _, ev := range f.Evidence {
		if p := ev.Process; p != nil && (p.Parent != nil || len(p.Ancestry) > 0) {
			if ev.Timestamp.Before(r.start.Add(-2*time.Second)) || ev.Timestamp.After(r.end.Add(2*time.Second)) {
				continue
			}
			pids := []int{p.PID}
			if p.Parent != nil {
				pids = append(pids, p.Parent.PID)
			}
			for _, a := range p.Ancestry {
				pids = append(pids, a.PID)
			}
			if slices.Contains(pids, r.root) {
				return true
			}
			continue
		}
		if !ev.Timestamp.Before(r.start) && !ev.Timestamp.After(r.end.Add(fileSettle)) {
			return true
		}
	}
	return false
}

var notFound = regexp.MustCompile(`(?m)^(?:[\w/.-]+: )?(?:line \d+: |\d+: )?([\w.+-]+): (?:command )?not found$`)

// TestAtomicLive runs every Atomic Red Team Linux test of the corpus
// against a real agent in a disposable environment, with its cleanup,
// and checks the share the agent detects against the targets. Run with
// -update to rewrite the live section of docs/detection-coverage.md.
func TestAtomicLive(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the test builds a disposable environment from mount, network and PID namespaces over an overlay of /, and the agent reads process events from the kernel")
	}
	for _, tool := range []string{"unshare", "nsenter", "pivot_root", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux, iproute2) to build the disposable environment", tool)
		}
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(b, []byte("\toverlay\n")) {
		t.Skip("needs overlayfs for the disposable environment's root")
	}
	atomics, err := coverage.Load(atomicsJSON)
	if err != nil {
		t.Fatal(err)
	}
	// Tests that change the machine until their cleanup runs go last.
	sort.SliceStable(atomics, func(i, j int) bool { return !atomics[i].Caution() && atomics[j].Caution() })
	before := hostSnapshot(t, atomics)

	c := newCollector(t)
	enrolled, id := c.enroll(t)
	s := startSandbox(t, enrolled)
	c.agentOnline(t, id)
	var modes map[string]string
	eventually(t, 30*time.Second, "the agent's sensors running in the environment", func() error {
		out, err := s.ctl("status", "--state", sandboxState, "--json")
		if err != nil {
			return err
		}
		var st statusJSON
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		modes = map[string]string{}
		for _, sn := range st.Sensors {
			modes[sn.Name] = sn.Mode
		}
		// The kernel's own events (eBPF, or the connector as its
		// fallback), not a poll that misses short-lived processes.
		if p := modes["process"]; (p != "ebpf" && !strings.HasPrefix(p, "netlink")) || !strings.HasPrefix(modes["file"], "fsnotify") {
			return fmt.Errorf("sensor modes %v", modes)
		}
		return nil
	})
	// The environment is what it should be: the agent's root is the
	// overlay, and a run has only loopback.
	if _, out, err := s.run("sh", "grep -q '^[0-9]* [0-9]* [0-9:]* / / .* - overlay ' /proc/self/mountinfo || { echo root is not the overlay; exit 1; }; ip -o link | grep -v ': lo:' && exit 1; exit 0"); err != nil {
		t.Fatalf("the disposable environment is not isolated: %v\n%s", err, out)
	}

	results := make([]*liveResult, len(atomics))
	for i := range atomics {
		a := &atomics[i]
		r := &liveResult{a: a}
		results[i] = r
		for _, d := range a.Dependencies() {
			if _, _, err := s.run(a.DependencyShell(), d.Check); err == nil {
				continue
			}
			_, out, err := s.run(a.DependencyShell(), d.Get)
			if _, _, cerr := s.run(a.DependencyShell(), d.Check); cerr != nil {
				how := "getting it ran, the check still fails"
				if err != nil {
					how = fmt.Sprintf("getting it failed: %v: %s", err, lastLine(out))
				}
				r.skipped = fmt.Sprintf("prerequisite not met: %s (%s)", strings.TrimSuffix(d.Description, "."), how)
				break
			}
		}
		if r.skipped != "" {
			t.Logf("%s %s: skipped: %s", a.Technique, a.Name, r.skipped)
			continue
		}
		r.start = time.Now()
		root, out, err := s.run(a.Executor, a.CommandLine())
		r.end = time.Now()
		r.root = root
		r.exit = "0"
		if err != nil {
			r.exit = err.Error()
		}
		var missing []string
		for _, m := range notFound.FindAllStringSubmatch(out, -1) {
			if !slices.Contains(missing, m[1]) {
				missing = append(missing, m[1])
			}
		}
		if len(missing) > 0 {
			r.skipped = "needs " + strings.Join(missing, ", ") + ", not installed"
		}
		t.Logf("%s %s: %s in %s, root pid %d%s", a.Technique, a.Name, r.exit, r.end.Sub(r.start).Round(time.Millisecond), root,
			map[bool]string{true: ", skipped: " + r.skipped, false: ""}[r.skipped != ""])
		time.Sleep(fileSettle)
		if cl := a.CleanupLine(); cl != "" {
			if _, out, err := s.run(a.Executor, cl); err != nil {
				t.Logf("%s %s: cleanup: %v %s", a.Technique, a.Name, err, lastLine(out))
			}
		}
	}

	// Findings reach the collector through the spool, oldest first: once
	// a finding raised after the last test has arrived, all of the
	// tests' findings have.
	end := &liveResult{start: time.Now()}
	root, out, err := s.run("sh", "touch -m -t 197001010000.00 /tmp/cordon-atomics-end")
	if err != nil {
		t.Fatalf("the closing run: %v\n%s", err, out)
	}
	end.root, end.end = root, time.Now()
	var findings []liveFinding
	eventually(t, 90*time.Second, "the finding of the closing run at the collector", func() error {
		out, err := c.ctl("findings", "--agent", id, "--json")
		if err != nil {
			return err
		}
		findings = nil
		if err := json.Unmarshal([]byte(out), &findings); err != nil {
			return err
		}
		for i := range findings {
			if end.belongs(&findings[i]) {
				return nil
			}
		}
		return fmt.Errorf("not among %d findings", len(findings))
	})
	s.stop()

	ran, detected, right := 0, 0, 0
	for _, r := range results {
		if r.skipped != "" {
			continue
		}
		ran++
		for i := range findings {
			f := &findings[i]
			if !r.belongs(f) {
				continue
			}
			if !slices.Contains(r.rules, f.Rule.Name) {
				r.rules = append(r.rules, f.Rule.Name)
			}
			for _, tech := range f.Attack.Techniques {
				if !slices.Contains(r.techniques, tech) {
					r.techniques = append(r.techniques, tech)
				}
				if coverage.SameTechnique(tech, r.a.Technique) {
					r.right = true
				}
			}
		}
		coverage.SortFound(r.a.Technique, r.techniques, r.rules)
		r.detected = len(r.rules) > 0
		if r.detected {
			detected++
		}
		if r.right {
			right++
		}
	}
	if ran == 0 {
		t.Fatal("no test ran")
	}

	// The host is as it was: every file the tests write or remove, and
	// the account, cron, systemd and shell profile files, are unchanged.
	after := hostSnapshot(t, atomics)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("the host's %s changed during the run: %s before, %s after", p, v, after[p])
		}
	}

	share := func(n int) float64 { return 100 * float64(n) / float64(ran) }
	t.Logf("live: %d of %d tests ran (%d skipped); %d detected (%.0f%%), %d with the right technique (%.0f%%)",
		ran, len(results), len(results)-ran, detected, share(detected), right, share(right))
	for _, r := range results {
		if r.skipped == "" {
			t.Logf("  %-10s %-60.60s detected=%-5v right=%-5v %s", r.a.Technique, r.a.Name, r.detected, r.right, strings.Join(r.rules, "; "))
		}
	}
	if *updateCoverage {
		writeLiveCoverage(t, results, modes, ran, detected, right)
	}
	if share(detected) < 85 || share(right) < 70 {
		t.Errorf("below the targets: %.0f%% detected (target 85%%), %.0f%% with the right technique (target 70%%)", share(detected), share(right))
	}
}

// hostPath finds the absolute paths the tests name below the folders they
// write to.
var hostPath = regexp.MustCompile(`(/(?:etc|root|home|tmp|var)/[A-Za-z0-9._/+-]*[A-Za-z0-9._+-])`)

// hostSnapshot describes, on the host, the state of every path the tests
// name and of the account, cron, systemd and shell files: a hash for a
// file, a listing for a folder, "absent" when missing.
func hostSnapshot(t *testing.T, atomics []coverage.Atomic) map[string]string {
	t.Helper()
	paths := []string{
		"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/profile", "/etc/rc.local",
		"/etc/cron.d", "/var/spool/cron", "/etc/systemd/system", "/root/.bashrc", "/root/.bash_history",
		"/root/.ssh", "/home", "/root/atomic.sh",
	}
	for i := range atomics {
		a := &atomics[i]
		text := a.CommandLine() + "\n" + a.CleanupLine()
		for _, d := range a.Dependencies() {
			text += "\n" + d.Check + "\n" + d.Get
		}
		for _, m := range hostPath.FindAllString(text, -1) {
			paths = append(paths, filepath.Clean(m))
		}
	}
	snap := map[string]string{}
	for _, p := range paths {
		snap[p] = describe(p)
	}
	return snap
}

func describe(path string) string {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		return "unreadable: " + err.Error()
	}
	if !fi.IsDir() {
		h := sha256.New()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return "unreadable: " + err.Error()
			}
			h.Write(b)
		}
		return fmt.Sprintf("%v sha256:%s", fi.Mode(), hex.EncodeToString(h.Sum(nil))[:16])
	}
	var list []string
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || len(list) > 2000 {
			return filepath.SkipDir
		}
		if info, err := d.Info(); err == nil {
			list = append(list, fmt.Sprintf("%s %v %d", p, info.Mode(), info.Size()))
		}
		if d.IsDir() && strings.Count(p, "/")-strings.Count(path, "/") >= 2 {
			return filepath.SkipDir
		}
		return nil
	})
	sum := sha256.Sum256([]byte(strings.Join(list, "\n")))
	return fmt.Sprintf("folder of %d entries sha256:%s", len(list), hex.EncodeToString(sum[:])[:16])
}

func writeLiveCoverage(t *testing.T, results []*liveResult, modes map[string]string, ran, detected, right int) {
	t.Helper()
	var u unix.Utsname
	_ = unix.Uname(&u)
	distro := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if m := regexp.MustCompile(`(?m)^PRETTY_NAME="?([^"\n]*)`).FindSubmatch(b); m != nil {
			distro = string(m[1])
		}
	}
	share := func(n int) float64 { return 100 * float64(n) / float64(ran) }
	var b strings.Builder
	fmt.Fprintf(&b, `## Live run

Each test runs for real against a real `+"`cordon-agent`"+`, its
prerequisites first (checked, fetched when missing, checked again), then its
command, then its cleanup; tests the corpus marks as needing caution run
last. Every run has a %s timeout and the same standard input (`+"`exit`"+`
lines, which end the shells the interactive pty test spawns).

The disposable environment: a new mount namespace whose root is an overlay
over the host's `+"`/`"+` with its upper folder on a tmpfs (pivot_root, the
host's root unmounted), fresh tmpfs on `+"`/tmp`, `/var/tmp`, `/run`"+` and
`+"`/dev/shm`"+` (so no host socket, systemd's or D-Bus's, is reachable
through the overlay) and a read-only `+"`/sys`"+`. Every file a test writes
(`+"`/etc/passwd`"+`, crontabs, systemd units, shell profiles) lands in the
tmpfs and vanishes with the namespace; the test asserts afterwards that the
host's copies of every path the tests name are unchanged. The agent runs
inside that mount namespace, so its file sensor watches the overlay, but in
the host's network and PID namespaces, as on a real host: its kernel event
sources report initial-namespace pids, and the process connector it falls
back to exists only in the initial network namespace.
Each test runs in the agent's mount namespace, in a network namespace with
only loopback (downloads fail, nothing leaves the machine), and in a new PID
namespace with its own `+"`/proc`"+`, so every process it leaves behind ends
with it. The agent is enrolled with a collector on the host's loopback. Like a host
administered over SSH, the environment's root has an `+"`authorized_keys`"+`
file (T1098.004 rewrites it only when it exists).

Attribution: a finding counts for a test when one of its evidence events is
by a process descending from the test's run (its ancestry, as the agent
reports it, holds the pid of the process that started the run, within the
run's time); file changes carry their writer's ancestry too. An event
without ancestry (a file change whose writer the agent could not trace)
is counted by time: it counts for the test running when it
happened (up to %s after the test ended, before its cleanup starts). Findings raised by
cleanups are not counted.

A test is skipped when a prerequisite is not met after trying to get it
(the environment has no network, so package installs fail), or when its
shell reports a command it needs as not found.

Generated by `+"`make build && go test -count=1 -run TestAtomicLive ./cmd/e2e/ -update`"+`
on %s, %s, kernel %s, process sensor `+"`%s`"+`, file sensor `+"`%s`"+`.

| | Tests | Share |
| --- | --- | --- |
| Ran | %d of %d | |
| Detected (any finding) | %d of %d | %.0f%% |
| Detected with the test's technique | %d of %d | %.0f%% |

`, atomicTimeout, fileSettle, time.Now().UTC().Format("2006-01-02"), distro, unix.ByteSliceToString(u.Release[:]),
		modes["process"], modes["file"], ran, len(results), detected, ran, share(detected), right, ran, share(right))
	b.WriteString("| Technique | Test | Detected | Right technique | Techniques found | Rules |\n| --- | --- | --- | --- | --- | --- |\n")
	yes := map[bool]string{true: "yes", false: "no"}
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "/") }
	var skipped []*liveResult
	for _, r := range results {
		if r.skipped != "" {
			skipped = append(skipped, r)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.a.Technique, cell(r.a.Name), yes[r.detected], yes[r.right],
			strings.Join(r.techniques, ", "), cell(strings.Join(r.rules, "; ")))
	}
	if len(skipped) > 0 {
		b.WriteString("\nSkipped:\n\n| Technique | Test | Why |\n| --- | --- | --- |\n")
		for _, r := range skipped {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r.a.Technique, cell(r.a.Name), cell(strings.ReplaceAll(r.skipped, "\n", " ")))
		}
	}
	const path = "../../docs/detection-coverage.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := coverage.ReplaceSection(string(doc), "live", b.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
