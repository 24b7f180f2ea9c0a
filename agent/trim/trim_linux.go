package trim

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Binary reclaims the resident pages of the running binary's code and
// read-only data, and turns off read-ahead on them. On a
// kernel without MADV_PAGEOUT (before 5.4) it changes nothing and returns
// an error wrapping ErrUnsupported.
func Binary() (Result, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, fmt.Errorf("finding the agent's binary: %w", err)
	}
	before, err := selfSmaps()
	if err != nil {
		return Result{}, err
	}
	ro := readOnly(before, exe)
	if len(ro) == 0 {
		return Result{}, fmt.Errorf("no read-only mapping of %s in /proc/self/smaps", exe)
	}
	res := Result{Mappings: len(ro), Before: resident(before, ro)}
	for _, m := range ro {
		res.Bytes += m.end - m.start
		// First, so that what runs between the two calls is read back a
		// page at a time, not with the pages around it.
		if err := madvise(m, unix.MADV_RANDOM); err != nil {
			return res, fmt.Errorf("advising random access to %s at %#x: %w", exe, m.start, err)
		}
		if err := madvise(m, unix.MADV_PAGEOUT); err != nil {
			madvise(m, unix.MADV_NORMAL)
			if errors.Is(err, unix.EINVAL) {
				return res, fmt.Errorf("reclaiming %s's pages: %w (madvise MADV_PAGEOUT needs Linux 5.4)", exe, ErrUnsupported)
			}
			return res, fmt.Errorf("reclaiming %s's pages at %#x: %w", exe, m.start, err)
		}
	}
	after, err := selfSmaps()
	if err != nil {
		return res, err
	}
	res.After = resident(after, ro)
	return res, nil
}

func selfSmaps() ([]mapping, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("reading the agent's own mappings: %w", err)
	}
	ms, err := parseSmaps(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading the agent's own mappings: %w", err)
	}
	return ms, nil
}

// madvise advises on a mapping of this process by its address: the
// mapping is not Go memory, so it is passed as numbers, not as a slice.
func madvise(m mapping, advice int) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice))
	if errno != 0 {
		return errno
	}
	return nil
}
