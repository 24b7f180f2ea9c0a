package netwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// openImpl opens a sock_diag netlink socket, or falls back to polling
// gopsutil when the kernel refuses one.
func openImpl() (osImpl, string, string, error) {
	d, err := openDiag("/proc")
	if err != nil {
		return pollImpl{}, ModePoll, err.Error(), nil
	}
	return d, ModeSockDiag, "netlink sock_diag", nil
}

// diagImpl dumps the socket table over NETLINK_SOCK_DIAG.
type diagImpl struct {
	fd       int
	procRoot string
	seq      uint32
	buf      []byte
	// inodes maps socket inodes to their owners, as of the last scan of
	// /proc.
	inodes map[uint32]int
}

func openDiag(procRoot string) (*diagImpl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("opening a sock_diag netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding the sock_diag netlink socket: %w", err)
	}
	// A dump that stalls must not hang the sensor.
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("setting the sock_diag receive timeout: %w", err)
	}
	return &diagImpl{fd: fd, procRoot: procRoot, buf: make([]byte, 64<<10), inodes: map[uint32]int{}}, nil
}

func (d *diagImpl) sockets(ctx context.Context, dst []sock) ([]sock, error) {
	for _, q := range [...]struct{ family, proto uint8 }{
		{familyINET, protoTCP}, {familyINET6, protoTCP},
		{familyINET, protoUDP}, {familyINET6, protoUDP},
	} {
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		var err error
		dst, err = d.dump(dst, q.family, q.proto, ^uint32(0))
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (d *diagImpl) listeners(dst []sock) ([]sock, error) {
	for _, family := range [...]uint8{familyINET, familyINET6} {
		var err error
		dst, err = d.dump(dst, family, protoTCP, 1<<stateListen)
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// dump runs one inet_diag dump for the states in the mask.
func (d *diagImpl) dump(dst []sock, family, proto uint8, states uint32) ([]sock, error) {
	d.seq++
	req := diagRequest(d.seq, family, proto, states)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return dst, fmt.Errorf("sending a sock_diag request: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return dst, fmt.Errorf("reading a sock_diag answer: %w", err)
		}
		var done bool
		dst, done, err = parseDiag(d.buf[:n], proto, dst)
		if err != nil {
			return dst, err
		}
		if done {
			return dst, nil
		}
	}
}

// owners finds the owners of socket inodes, scanning /proc again when one
// is not in the cache.
func (d *diagImpl) owners(inodes []uint32) map[uint32]int {
	for _, in := range inodes {
		if _, ok := d.inodes[in]; !ok {
			d.inodes = scanSockets(d.procRoot)
			break
		}
	}
	out := make(map[uint32]int, len(inodes))
	for _, in := range inodes {
		if pid, ok := d.inodes[in]; ok {
			out[in] = pid
		}
	}
	return out
}

// scanSockets maps the inode of every socket open in any process to the
// process, reading /proc/*/fd.
func scanSockets(procRoot string) map[uint32]int {
	out := map[uint32]int{}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fdDir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or a kernel thread
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			if in, ok := parseSocketLink(link); ok {
				if _, seen := out[in]; !seen {
					out[in] = pid
				}
			}
		}
	}
	return out
}

func (d *diagImpl) describe(pid int) (ecs.Parent, bool) {
	dir := filepath.Join(d.procRoot, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	cmd, err2 := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil && err2 != nil {
		return ecs.Parent{}, false
	}
	ref := ecs.Parent{PID: pid, Executable: exe}
	if exe != "" {
		ref.Name = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	ref.CommandLine = string(bytes.Join(bytes.Split(bytes.TrimRight(cmd, "\x00"), []byte{0}), []byte{' '}))
	return ref, true
}

func (d *diagImpl) close() error { return unix.Close(d.fd) }
