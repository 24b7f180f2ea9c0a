package fswatch

import (
	"bytes"
	"fmt"
	"strconv"
)

// statStartTicks returns the start time, in clock ticks after boot, from
// the contents of /proc/PID/stat (field 22, counted after the command
// name, which may itself hold spaces and parentheses).
func statStartTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no closing parenthesis after the command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 20", len(f))
	}
	v, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: starttime (field 22): %w", err)
	}
	return v, nil
}

// commandLine joins the NUL-separated arguments of /proc/PID/cmdline
// with spaces.
func commandLine(b []byte) string {
	return string(bytes.Join(bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}), []byte{' '}))
}
