// Package quarantine moves suspicious files into a root-only folder of
// the agent's state, with their permissions stripped, and puts them back
// exactly as they were: same path, mode, owner and times, verified by
// their SHA-256.
package quarantine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Dir is the name of the quarantine folder in the agent's state folder.
const Dir = "quarantine"

// Record is what is kept about one quarantined file.
type Record struct {
	ID            string    `json:"id"`
	Path          string    `json:"path"`
	SHA256        string    `json:"sha256"`
	Size          int64     `json:"size"`
	Mode          uint32    `json:"mode"` // permission and set-id bits
	UID           int       `json:"uid"`
	GID           int       `json:"gid"`
	ATime         time.Time `json:"atime"`
	MTime         time.Time `json:"mtime"`
	QuarantinedAt time.Time `json:"quarantined_at"`
	Command       string    `json:"command,omitempty"`
}

// Vault is the quarantine folder.
type Vault struct {
	dir string
	// protect lists folders whose files are never quarantined (the
	// agent's own state).
	protect []string
}

// New returns the vault in stateDir.
func New(stateDir string) *Vault {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	return &Vault{dir: filepath.Join(abs, Dir), protect: []string{abs}}
}

func (v *Vault) open() error {
	if err := os.MkdirAll(v.dir, 0o700); err != nil {
		return fmt.Errorf("creating the quarantine folder: %w", err)
	}
	// An existing folder is tightened too.
	if err := os.Chmod(v.dir, 0o700); err != nil {
		return fmt.Errorf("securing the quarantine folder: %w", err)
	}
	return nil
}

func (v *Vault) dataPath(id string) string   { return filepath.Join(v.dir, id+".bin") }
func (v *Vault) recordPath(id string) string { return filepath.Join(v.dir, id+".json") }

// checkPath refuses what must not be quarantined: relative paths, paths
// inside the agent's state, anything but a regular file.
func (v *Vault) checkPath(path string) (os.FileInfo, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("path %q: want an absolute path", path)
	}
	clean := filepath.Clean(path)
	for _, p := range v.protect {
		if clean == p || strings.HasPrefix(clean, p+string(filepath.Separator)) {
			return nil, fmt.Errorf("path %s is inside the agent's state folder; refused", clean)
		}
	}
	fi, err := os.Lstat(clean)
	if err != nil {
		return nil, fmt.Errorf("quarantining %s: %w", clean, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("quarantining %s: not a regular file (%s)", clean, fi.Mode().Type())
	}
	return fi, nil
}

// List returns the records of the quarantined files, oldest first.
func (v *Vault) List() ([]Record, error) {
	ents, err := os.ReadDir(v.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the quarantine: %w", err)
	}
	var out []Record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := v.read(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QuarantinedAt.Before(out[j].QuarantinedAt) })
	return out, nil
}

func (v *Vault) read(id string) (Record, error) {
	var r Record
	b, err := os.ReadFile(v.recordPath(id))
	if err != nil {
		return r, fmt.Errorf("reading quarantine record %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reading quarantine record %s: %w", id, err)
	}
	return r, nil
}

// find returns the record with id, or the latest one of path.
func (v *Vault) find(id, path string) (Record, error) {
	if id != "" {
		if strings.ContainsAny(id, `/\.`) {
			return Record{}, fmt.Errorf("quarantine id %q is not an id", id)
		}
		return v.read(id)
	}
	recs, err := v.List()
	if err != nil {
		return Record{}, err
	}
	clean := filepath.Clean(path)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Path == clean {
			return recs[i], nil
		}
	}
	return Record{}, fmt.Errorf("no quarantined file was at %s", clean)
}

func writeRecord(path string, r Record) error {
	b, _ := json.MarshalIndent(r, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// move renames src to dst, or copies and removes src when they are on
// different file systems. The copy is synced before src goes.
func move(src, dst string, mode os.FileMode) error {
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	var le *os.LinkError
	if !errors.As(err, &le) || !isCrossDevice(le.Err) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	return os.Remove(src)
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
