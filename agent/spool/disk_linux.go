//go:build linux

package spool

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DiskFree returns a function reporting the bytes an unprivileged writer
// may still use on the filesystem holding dir.
func DiskFree(dir string) FreeSpace {
	return func() (uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}
