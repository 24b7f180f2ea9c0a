package fswatch

import (
	"bytes"
	"fmt"
	"strconv"
)

// parseStat returns the command name (field 2, as the kernel keeps it:
// at most 15 bytes, which may hold spaces and parentheses) and the start
// time in clock ticks after boot (field 22) from the contents of
// /proc/PID/stat.
func parseStat(b []byte) (comm string, startTicks uint64, err error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("stat: no command name in parentheses")
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return "", 0, fmt.Errorf("stat: %d fields after the command name, want at least 20", len(f))
	}
	v, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("stat: starttime (field 22): %w", err)
	}
	return string(b[open+1 : end]), v, nil
}

// commandLine joins the NUL-separated arguments of /proc/PID/cmdline
// with spaces.
func commandLine(b []byte) string {
	return string(bytes.Join(bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}), []byte{' '}))
}
