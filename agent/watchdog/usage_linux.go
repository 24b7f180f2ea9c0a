package watchdog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the clock-tick fields of /proc/PID/stat, fixed
// at 100 for user space.
const userHZ = 100

// SelfUsage reads the process's own usage from /proc/self/stat.
func SelfUsage() (Usage, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return Usage{}, fmt.Errorf("reading the agent's own usage: %w", err)
	}
	u, err := parseStat(b, os.Getpagesize())
	if err != nil {
		return Usage{}, fmt.Errorf("reading the agent's own usage: %w", err)
	}
	return u, nil
}

// parseStat reads utime and stime (fields 14 and 15, clock ticks) and rss
// (field 24, pages) from the content of /proc/PID/stat. Fields are counted
// from the last closing parenthesis, as the command name in field 2 may
// hold spaces and parentheses.
func parseStat(b []byte, pageSize int) (Usage, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return Usage{}, errors.New("parse stat: no command name in parentheses")
	}
	fields := bytes.Fields(b[end+1:])
	// Field N is at index N-3.
	const utime, stime, rss = 14 - 3, 15 - 3, 24 - 3
	if len(fields) <= rss {
		return Usage{}, fmt.Errorf("parse stat: %d fields after the command name, want at least %d", len(fields), rss+1)
	}
	num := func(i int, name string) (uint64, error) {
		v, err := strconv.ParseUint(string(fields[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat %s: %w", name, err)
		}
		return v, nil
	}
	ut, err := num(utime, "utime")
	if err != nil {
		return Usage{}, err
	}
	st, err := num(stime, "stime")
	if err != nil {
		return Usage{}, err
	}
	pages, err := num(rss, "rss")
	if err != nil {
		return Usage{}, err
	}
	const maxTicks = uint64(1<<63-1) / uint64(time.Second/userHZ)
	if ut > maxTicks || st > maxTicks-ut {
		return Usage{}, fmt.Errorf("parse stat: cpu time %d+%d ticks out of range", ut, st)
	}
	return Usage{
		CPU: time.Duration(ut+st) * (time.Second / userHZ),
		RSS: pages * uint64(pageSize),
	}, nil
}
