package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Once start-up is over, the agent hands back the pages of its binary
// that start-up touched, stays online, and what it runs afterwards does
// not bring them all back.
func TestAgentHandsBackStartupPages(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	state, id := c.enroll(t)
	exe := diskCopy(t, bin("cordon-agent"))
	agent := startCmd(t, "cordon-agent", exec.Command(exe, "run", "--state", state))
	c.agentOnline(t, id)

	done := regexp.MustCompile(`handed back the binary's start-up pages".*resident_before_mib=([0-9.]+) resident_after_mib=([0-9.]+)`)
	var m []string
	eventually(t, 40*time.Second, "the agent's log to say it handed back its start-up pages", func() error {
		log := agent.Log()
		if strings.Contains(log, "start-up pages stay resident") {
			t.Skipf("this kernel cannot reclaim pages on request:\n%s", log)
		}
		if strings.Contains(log, "the kernel kept most of the binary's start-up pages") {
			t.Fatalf("the agent, run from its own flushed copy, could not hand back its pages:\n%s", log)
		}
		if m = done.FindStringSubmatch(log); m == nil {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	before, _ := strconv.ParseFloat(m[1], 64)
	after, _ := strconv.ParseFloat(m[2], 64)
	if before < 4 || after > before/2 {
		t.Errorf("resident MiB of the binary: %.1f before, %.1f after: want most of it handed back", before, after)
	}
	// The agent goes on, and what it touches comes back a page at a time,
	// not the whole binary.
	time.Sleep(3 * time.Second)
	c.agentOnline(t, id)
	if now := float64(binaryRssKB(agent.cmd.Process.Pid)) / 1024; now > 0.75*before {
		t.Errorf("the binary's resident MiB went back to %.1f, from %.1f before trimming", now, before)
	}
}

// Two agents run from one file share its pages, which the kernel does not
// take from either: each says so instead of claiming it handed them back.
func TestAgentSaysWhenPagesStay(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	exe := diskCopy(t, bin("cordon-agent"))
	var agents []*proc
	for range 2 {
		state, id := c.enroll(t)
		agents = append(agents, startCmd(t, "cordon-agent", exec.Command(exe, "run", "--state", state)))
		c.agentOnline(t, id)
	}
	eventually(t, 40*time.Second, "the agents' logs to say the kernel kept their pages", func() error {
		for _, agent := range agents {
			log := agent.Log()
			if strings.Contains(log, "start-up pages stay resident") {
				t.Skipf("this kernel cannot reclaim pages on request:\n%s", log)
			}
			if strings.Contains(log, "handed back the binary's start-up pages") {
				t.Fatalf("an agent sharing its binary claims it handed back its pages:\n%s", log)
			}
			if !strings.Contains(log, "the kernel kept most of the binary's start-up pages") {
				return fmt.Errorf("not yet")
			}
		}
		return nil
	})
}

// diskCopy copies an executable to a folder on a disk-backed file system
// and flushes it, so that the kernel can drop its clean pages: the test's
// temporary folder, or else one beside the test when that is in memory
// (from tmpfs the pages would leave the agent but stay in memory), so
// that the agent runs as an installed one does.
func diskCopy(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	if inMemory(dir) {
		d, err := os.MkdirTemp(".", ".cordon-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if dir = d; inMemory(dir) {
			t.Skip("both the temporary folder and the test's own are in memory (tmpfs): no disk-backed file to run the agent from")
		}
	}
	dst := copyExec(t, src, dir)
	// Written pages are dirty until flushed, and the kernel does not
	// hand back a dirty page on request.
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// inMemory reports whether dir is on tmpfs or ramfs.
func inMemory(dir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && (fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC)
}
