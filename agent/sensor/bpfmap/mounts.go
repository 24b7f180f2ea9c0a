package bpfmap

import (
	"bytes"
	"errors"
)

// CgroupRoot returns where the cgroup v2 hierarchy is mounted
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a host that mounts the
// v1 controllers there), read from mounts, the text of /proc/self/mounts.
func CgroupRoot(mounts []byte) (string, error) {
	for line := range bytes.Lines(mounts) {
		f := bytes.Fields(line)
		if len(f) >= 3 && string(f[2]) == "cgroup2" {
			return string(f[1]), nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}
