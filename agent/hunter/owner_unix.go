//go:build !windows

package hunter

import (
	"io/fs"
	"strconv"
	"syscall"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func fileOwner(fi fs.FileInfo, f *ecs.File) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.UID = strconv.FormatUint(uint64(st.Uid), 10)
		f.GID = strconv.FormatUint(uint64(st.Gid), 10)
	}
}
