package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestQuarantineRestore(t *testing.T) {
	needLinux(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	path := filepath.Join(t.TempDir(), "payload.bin")
	content := []byte("MZ pretend this is malware\n")
	if err := os.WriteFile(path, content, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(path, 0o2750); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2022, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(path, time.Now().Add(time.Hour), mtime); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(path, &before); err != nil {
		t.Fatal(err)
	}

	out, err := c.ctl("quarantine", id, "--path", path, "--reason", "e2e", "--wait")
	if err != nil {
		t.Fatalf("quarantine: %v\n%s", err, out)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(content))
	if !strings.Contains(out, sum) {
		t.Errorf("the result does not carry the file's sha256 %s:\n%s", sum, out)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the file is still in place after quarantine: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(state, "quarantine", "*.bin"))
	if len(files) != 1 {
		t.Fatalf("quarantine folder holds %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0 {
		t.Fatalf("quarantined copy: %v, %v; want mode 0000", fi.Mode(), err)
	}

	if out, err := c.ctl("restore", id, "--path", path, "--wait"); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid || after.Mtim != before.Mtim || after.Atim != before.Atim {
		t.Errorf("restored file differs: mode %o→%o owner %d:%d→%d:%d mtime %v→%v atime %v→%v",
			before.Mode, after.Mode, before.Uid, before.Gid, after.Uid, after.Gid, before.Mtim, after.Mtim, before.Atim, after.Atim)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != string(content) {
		t.Fatalf("restored content %q, %v", got, err)
	}
	// A second restore has nothing to put back.
	if out, err := c.ctl("restore", id, "--path", path, "--wait"); err == nil {
		t.Fatalf("a second restore succeeded:\n%s", out)
	}
}
