//go:build unix

package fswatch

import (
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
)

// owner returns the uid, gid and owner name of a file.
func owner(fi fs.FileInfo) (uid, gid, name string) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", "", ""
	}
	uid = strconv.FormatUint(uint64(st.Uid), 10)
	gid = strconv.FormatUint(uint64(st.Gid), 10)
	return uid, gid, userName(uid)
}

// names caches user names by uid; it is cleared when full.
var names = struct {
	sync.Mutex
	m map[string]string
}{m: make(map[string]string)}

func userName(uid string) string {
	names.Lock()
	defer names.Unlock()
	if n, ok := names.m[uid]; ok {
		return n
	}
	if len(names.m) >= 1024 {
		clear(names.m)
	}
	var n string
	if u, err := user.LookupId(uid); err == nil {
		n = u.Username
	}
	names.m[uid] = n
	return n
}

// openNoFollow opens path for reading without following a final symbolic
// link and without blocking on a FIFO.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
