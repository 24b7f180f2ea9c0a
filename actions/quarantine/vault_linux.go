package quarantine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func isCrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// Quarantine moves the file at path into the vault, strips its
// permissions and records its hash and metadata.
func (v *Vault) Quarantine(path, command string) (Record, error) {
	fi, err := v.checkPath(path)
	if err != nil {
		return Record{}, err
	}
	if err := v.open(); err != nil {
		return Record{}, err
	}
	path = filepath.Clean(path)
	st := fi.Sys().(*syscall.Stat_t)
	sum, size, err := hashFile(path)
	if err != nil {
		return Record{}, fmt.Errorf("hashing %s: %w", path, err)
	}
	r := Record{
		ID: newID(), Path: path, SHA256: sum, Size: size,
		Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid),
		ATime:         time.Unix(st.Atim.Sec, st.Atim.Nsec).UTC(),
		MTime:         time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
		QuarantinedAt: time.Now().UTC(), Command: command,
	}
	// The record first: a file in the vault is never without the means
	// to put it back.
	if err := writeRecord(v.recordPath(r.ID), r); err != nil {
		return Record{}, fmt.Errorf("recording the quarantine of %s: %w", path, err)
	}
	data := v.dataPath(r.ID)
	if err := move(path, data, 0); err != nil {
		os.Remove(v.recordPath(r.ID))
		return Record{}, fmt.Errorf("moving %s into the quarantine: %w", path, err)
	}
	if err := unix.Chmod(data, 0); err != nil {
		return r, fmt.Errorf("stripping the permissions of quarantined %s: %w", path, err)
	}
	if err := os.Chown(data, 0, 0); err != nil && os.Geteuid() == 0 {
		return r, fmt.Errorf("handing quarantined %s to root: %w", path, err)
	}
	if got, _, err := hashFile(data); err != nil || got != sum {
		return r, fmt.Errorf("quarantined %s does not hash as before (%s, %v)", path, got, err)
	}
	syncDir(v.dir)
	syncDir(filepath.Dir(path))
	return r, nil
}

// Restore puts a quarantined file back where it was, with its mode,
// owner and times, by id or (the latest of) its original path. It
// refuses to overwrite a file that has since appeared there.
func (v *Vault) Restore(id, path string) (Record, error) {
	r, err := v.find(id, path)
	if err != nil {
		return r, err
	}
	if _, err := os.Lstat(r.Path); err == nil {
		return r, fmt.Errorf("restoring %s: a file exists there now; move it away first", r.Path)
	}
	if _, err := os.Stat(filepath.Dir(r.Path)); err != nil {
		return r, fmt.Errorf("restoring %s: %w", r.Path, err)
	}
	data := v.dataPath(r.ID)
	if got, _, err := hashFile(data); err != nil || got != r.SHA256 {
		return r, fmt.Errorf("restoring %s: the quarantined copy does not hash as recorded (%s, %v)", r.Path, got, err)
	}
	if err := move(data, r.Path, 0); err != nil {
		return r, fmt.Errorf("restoring %s: %w", r.Path, err)
	}
	// Owner first: chown clears set-id bits, which the chmod puts back.
	if err := os.Lchown(r.Path, r.UID, r.GID); err != nil && os.Geteuid() == 0 {
		return r, fmt.Errorf("restoring the owner of %s: %w", r.Path, err)
	}
	if err := unix.Chmod(r.Path, r.Mode); err != nil {
		return r, fmt.Errorf("restoring the mode of %s: %w", r.Path, err)
	}
	if err := os.Chtimes(r.Path, r.ATime, r.MTime); err != nil {
		return r, fmt.Errorf("restoring the times of %s: %w", r.Path, err)
	}
	if err := os.Remove(v.recordPath(r.ID)); err != nil {
		return r, fmt.Errorf("removing the quarantine record of %s: %w", r.Path, err)
	}
	syncDir(filepath.Dir(r.Path))
	syncDir(v.dir)
	return r, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
