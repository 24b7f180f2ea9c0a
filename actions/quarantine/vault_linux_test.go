package quarantine

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
	state, work := t.TempDir(), t.TempDir()
	v := New(state)
	path := filepath.Join(work, "dropper.sh")
	content := []byte("#!/bin/sh\necho evil\n")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	// Set-id bits and times that a careless restore would lose.
	if err := syscall.Chmod(path, 0o4751); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 4242, 4343
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(path, 0o4751); err != nil {
			t.Fatal(err)
		}
	}
	// An access time ahead of the change time, which relatime leaves
	// alone when something on the host reads the file (file scanners do).
	atime := time.Now().Add(time.Hour).Round(time.Microsecond).UTC()
	mtime := time.Date(2021, 6, 7, 8, 9, 10, 1100, time.UTC)
	if err := os.Chtimes(path, atime, mtime); err != nil {
		t.Fatal(err)
	}

	r, err := v.Quarantine(path, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the file is still at its path: %v", err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(content)); r.SHA256 != want {
		t.Errorf("sha256 %q", r.SHA256)
	}
	if r.Mode != 0o4751 || r.UID != uid || r.GID != gid || !r.MTime.Equal(mtime) || !r.ATime.Equal(atime) || r.Size != int64(len(content)) {
		t.Errorf("record %+v", r)
	}
	data := filepath.Join(state, Dir, r.ID+".bin")
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0 || fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		t.Errorf("quarantined file mode %v, want no permission at all", fi.Mode())
	}
	// So that only the record can give the access time back.
	if err := os.Chtimes(data, time.Now().Add(2*time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if dfi, _ := os.Stat(filepath.Join(state, Dir)); dfi.Mode().Perm() != 0o700 {
		t.Errorf("quarantine folder mode %v, want 0700", dfi.Mode().Perm())
	}

	// Nothing is overwritten on restore.
	if err := os.WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore("", path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("restore over an existing file: %v", err)
	}
	os.Remove(path)

	if _, err := v.Restore("", path); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o4751 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("restored mode %04o owner %d:%d, want 4751 %d:%d", st.Mode&0o7777, st.Uid, st.Gid, uid, gid)
	}
	if m := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !m.Equal(mtime) {
		t.Errorf("restored mtime %v, want %v", m, mtime)
	}
	if a := time.Unix(st.Atim.Sec, st.Atim.Nsec); !a.Equal(atime) {
		t.Errorf("restored atime %v, want %v", a, atime)
	}
	// Read after the stat: reading moves the access time.
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(content) {
		t.Fatalf("restored content %q, %v", got, err)
	}
	if recs, _ := v.List(); len(recs) != 0 {
		t.Errorf("records left after restore: %+v", recs)
	}
	// By id too, and an unknown id is an error.
	r2, err := v.Quarantine(path, "cmd-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore("nope", ""); err == nil {
		t.Error("restore of an unknown id succeeded")
	}
	if _, err := v.Restore("../../etc/passwd", ""); err == nil {
		t.Error("restore of a path-like id succeeded")
	}
	if _, err := v.Restore(r2.ID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestQuarantineRefusals(t *testing.T) {
	state, work := t.TempDir(), t.TempDir()
	v := New(state)
	own := filepath.Join(state, "agent.json")
	os.WriteFile(own, []byte("{}"), 0o600)
	link := filepath.Join(work, "link")
	os.Symlink("/etc/hostname", link)
	for _, p := range []string{"relative/file", own, work, link, filepath.Join(work, "missing")} {
		if _, err := v.Quarantine(p, ""); err == nil {
			t.Errorf("quarantine of %s succeeded", p)
		}
	}
}
