package fswatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// fanMarkMask is what each folder's mark asks for: the same changes
// inotify reports, on the folder's entries and on the folder itself.
const fanMarkMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO |
	unix.FAN_MODIFY | unix.FAN_ATTRIB | unix.FAN_DELETE_SELF | unix.FAN_MOVE_SELF |
	unix.FAN_ONDIR | unix.FAN_EVENT_ON_CHILD

// atHandleFID is AT_HANDLE_FID (include/uapi/linux/fcntl.h), which
// golang.org/x/sys/unix does not name yet.
const atHandleFID = 0x200

// fanReadBuf is the size of one read of the fanotify descriptor.
const fanReadBuf = 64 << 10

// fanSource reports who changed the watched folders: one fanotify
// group in notification class, reporting each event with the folder's
// file handle and the entry's name (FAN_REPORT_DFID_NAME, Linux 5.9),
// and one inode mark per watched folder. The folders' handles are taken
// when they are marked, so a handle in an event names its folder
// without opening anything.
type fanSource struct {
	f   *os.File
	raw syscall.RawConn

	mu      sync.Mutex
	dirs    map[string]string          // fidKey → folder
	paths   map[string]string          // folder → fidKey
	handles map[string]unix.FileHandle // folder → its handle, to find it once moved
}

// newFanSource starts a fanotify group, or says why it cannot.
func newFanSource() (*fanSource, error) {
	// Since Linux 5.13 a group like this one can be had without
	// privileges, but the kernel then reports pid 0 for every process
	// but the reader: nothing fsnotify would not tell.
	if ok, err := hasSysAdmin(); err != nil {
		return nil, fmt.Errorf("reading the agent's capabilities: %w", err)
	} else if !ok {
		return nil, errors.New("no CAP_SYS_ADMIN: the kernel would not name the processes behind changes")
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_DFID_NAME|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("fanotify_init: %w (needs CAP_SYS_ADMIN)", err)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("fanotify_init: %w (entry names need Linux 5.9 or later)", err)
		case errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("fanotify_init: %w (kernel built without fanotify)", err)
		}
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	f := os.NewFile(uintptr(fd), "fanotify")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fanotify descriptor: %w", err)
	}
	return &fanSource{f: f, raw: raw, dirs: make(map[string]string), paths: make(map[string]string),
		handles: make(map[string]unix.FileHandle)}, nil
}

// add marks the folder dir. It fails when the folder's filesystem cannot
// report file handles (some FUSE and network filesystems), and the
// caller watches that folder with inotify instead.
func (n *fanSource) add(dir string) error {
	// Ask for the handle as fanotify reports it: a file id, which
	// filesystems that cannot open files by handle (overlayfs) give too
	// (AT_HANDLE_FID, Linux 6.5); older kernels refuse the flag.
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, atHandleFID)
	if errors.Is(err, unix.EINVAL) {
		h, _, err = unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	}
	if err != nil {
		return fmt.Errorf("file handle of %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("filesystem id of %s: %w", dir, err)
	}
	var fsid [fanFsidLen]byte
	binary.NativeEndian.PutUint32(fsid[0:], uint32(st.Fsid.Val[0]))
	binary.NativeEndian.PutUint32(fsid[4:], uint32(st.Fsid.Val[1]))
	key := fidKey(fsid[:], h.Type(), h.Bytes())
	var merr error
	err = n.raw.Control(func(fd uintptr) {
		merr = unix.FanotifyMark(int(fd), unix.FAN_MARK_ADD|unix.FAN_MARK_ONLYDIR|unix.FAN_MARK_DONT_FOLLOW,
			fanMarkMask, unix.AT_FDCWD, dir)
	})
	if err == nil {
		err = merr
	}
	if err != nil {
		return fmt.Errorf("fanotify mark on %s: %w", dir, err)
	}
	n.mu.Lock()
	if old, ok := n.paths[dir]; ok {
		delete(n.dirs, old)
	}
	n.dirs[key], n.paths[dir] = dir, key
	n.handles[dir] = h
	n.mu.Unlock()
	return nil
}

// remove forgets the folder dir and removes its mark. The folder is
// reached by its handle, so that one renamed away (whose old path names
// nothing, or another folder) loses its mark too; by its path where the
// handle cannot be opened (a removed folder, whose mark went with it,
// or a filesystem whose handles only identify).
func (n *fanSource) remove(dir string) {
	n.mu.Lock()
	h, hasHandle := n.handles[dir]
	key, ok := n.paths[dir]
	delete(n.paths, dir)
	delete(n.handles, dir)
	if ok && n.dirs[key] != dir {
		// The same folder, renamed within the watched tree, is marked
		// under its new path already: its mark and events stay.
		n.mu.Unlock()
		return
	}
	delete(n.dirs, key)
	n.mu.Unlock()
	_ = n.raw.Control(func(fd uintptr) {
		if hasHandle {
			if obj, err := openByHandleBelow(dir, h); err == nil {
				err = unix.FanotifyMark(int(fd), unix.FAN_MARK_REMOVE|unix.FAN_MARK_ONLYDIR, fanMarkMask, obj, "")
				unix.Close(obj)
				if err == nil {
					return
				}
			}
		}
		_ = unix.FanotifyMark(int(fd), unix.FAN_MARK_REMOVE|unix.FAN_MARK_ONLYDIR|unix.FAN_MARK_DONT_FOLLOW,
			fanMarkMask, unix.AT_FDCWD, dir)
	})
}

// openByHandleBelow opens the folder with handle h on the filesystem of
// dir, reached through the nearest folder above dir that still exists
// (dir itself may be gone or renamed). fanotify_mark does not take
// path-only descriptors, so both are opened for reading.
func openByHandleBelow(dir string, h unix.FileHandle) (int, error) {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		mfd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
			unix.Close(mfd)
			return fd, err
		}
		if p == filepath.Dir(p) {
			return -1, err
		}
	}
}

// path returns the path a record names, or false when its folder is not
// (or no longer) watched.
func (n *fanSource) path(r fanRecord) (string, bool) {
	n.mu.Lock()
	dir, ok := n.dirs[r.Dir]
	n.mu.Unlock()
	if !ok {
		return "", false
	}
	if r.Name == "" || r.Name == "." {
		return dir, true
	}
	return filepath.Join(dir, r.Name), true
}

// run reads events until ctx is done and hands each to got, with the
// path it names and the operations it stands for. Overflows of the
// kernel's queue and malformed reads are passed to lost.
func (n *fanSource) run(ctx context.Context, got func(path string, op fsnotify.Op, pid int), lost func(why string)) error {
	stop := context.AfterFunc(ctx, func() { n.f.Close() })
	defer stop()
	buf := make([]byte, fanReadBuf)
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading fanotify events: %w", err)
		}
		recs, err := parseFanotify(buf[:k])
		if err != nil {
			lost(err.Error())
		}
		for _, r := range recs {
			if r.overflow() {
				lost("fanotify queue overflowed")
				continue
			}
			p, ok := n.path(r)
			if !ok {
				continue
			}
			if op := fanOps(r.Mask); op != 0 {
				got(p, op, r.PID)
			}
		}
	}
}

// close releases the group and its marks. Run closes it too when its
// context ends.
func (n *fanSource) close() { n.f.Close() }

// hasSysAdmin reports whether this process has CAP_SYS_ADMIN in effect.
func hasSysAdmin() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, err
	}
	return data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) != 0, nil
}
