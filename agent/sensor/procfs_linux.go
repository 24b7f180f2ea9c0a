package sensor

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// readFile reads a procfs file into buf, growing it as needed, with
// nothing but open, read and close: on the exec path every microsecond
// counts. A procfs file shorter than the buffer comes whole in one read.
func readFile(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	for errors.Is(err, unix.EINTR) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	}
	if err != nil {
		return buf[:0], &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf[:n], make([]byte, len(buf)+4096)...)
		}
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return buf[:0], &fs.PathError{Op: "read", Path: path, Err: err}
		}
		n += m
		if m == 0 || n < len(buf) {
			return buf[:n], nil
		}
	}
}

// readlink is readlink(2), retried on EINTR.
func readlink(path string, buf []byte) (int, error) {
	for {
		n, err := unix.Readlink(path, buf)
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}
