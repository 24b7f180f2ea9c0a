// Package trim hands back to the kernel the pages of cordon-agent's own
// binary that only its start-up used.
//
// Starting a Go program touches code and tables all over its binary: every
// package's initialisation, the rule compiler, the eBPF loader, the first
// TLS handshake. Each touch maps not one page but the 64 KiB around it
// (the kernel's fault-around maps the neighbours the page cache holds,
// and read-ahead fills the cache around a page read from disk), so by
// the time the agent settles nearly all of its binary, about 18 MiB, is
// resident, though an idle agent runs a small part of it. Binary asks
// the kernel to reclaim those pages (madvise MADV_PAGEOUT, Linux 5.4),
// which drops them from the page cache too, and not to read ahead on
// them (MADV_RANDOM): a page the agent touches again is read alone, and
// with its neighbours no longer cached it is mapped alone. So what the
// agent uses afterwards comes back a page at a time, and the rest stays
// on disk. The pages are clean copies of the file: reclaiming them loses
// nothing, and one the agent needs again is read back on its next touch.
// Pages another process also maps (a second agent run from the same
// file) are left alone by the kernel.
package trim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrUnsupported is returned where the system cannot reclaim a process's
// pages on request.
var ErrUnsupported = errors.New("reclaiming the binary's pages is not supported here")

// Result is what Binary did.
type Result struct {
	// Mappings is how many read-only mappings of the binary were advised.
	Mappings int
	// Bytes is their size.
	Bytes uint64
	// Before and After are their resident bytes before and just after.
	Before, After uint64
}

// mapping is one region of /proc/PID/smaps.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	rss        uint64 // bytes
}

// parseSmaps reads the regions of /proc/PID/smaps: each starts with a
// line in the format of /proc/PID/maps (range, permissions, offset,
// device, inode, then the path, which may hold spaces, or nothing) and
// goes on with "Key: value kB" lines, of which Rss is kept. Errors name
// the line.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if key, rest, ok := bytes.Cut(line, []byte(":")); ok && !bytes.ContainsAny(key, " -") {
			// A field of the current region.
			if len(out) == 0 {
				return nil, fmt.Errorf("smaps line %d: field %q before any region", n, key)
			}
			if string(key) != "Rss" {
				continue
			}
			f := strings.Fields(string(rest))
			if len(f) != 2 || f[1] != "kB" {
				return nil, fmt.Errorf("smaps line %d: Rss %q, want a number of kB", n, rest)
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil || kb > 1<<44 {
				return nil, fmt.Errorf("smaps line %d: Rss %q, want a number of kB", n, f[0])
			}
			out[len(out)-1].rss = kb << 10
			continue
		}
		m, err := parseRegion(string(line))
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading smaps: %w", err)
	}
	return out, nil
}

// parseRegion reads a region's first line:
// "00400000-00b48000 r-xp 00000000 fd:01 1234   /usr/bin/cordon-agent".
func parseRegion(line string) (mapping, error) {
	rest := line
	var f [5]string
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		var ok bool
		f[i], rest, ok = strings.Cut(rest, " ")
		if f[i] == "" || (!ok && i < 4) {
			return mapping{}, fmt.Errorf("region %q: want range, permissions, offset, device and inode", line)
		}
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("region range %q: want START-END", f[0])
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end < start {
		return mapping{}, fmt.Errorf("region range %q: want two hexadecimal addresses, the first not above the second", f[0])
	}
	if len(f[1]) != 4 {
		return mapping{}, fmt.Errorf("region permissions %q: want four letters like r-xp", f[1])
	}
	return mapping{start: start, end: end, perms: f[1], path: strings.TrimLeft(rest, " ")}, nil
}

// readOnly returns the mappings of the file at exe that the process
// cannot write to: its code and read-only data, clean copies of the file.
func readOnly(ms []mapping, exe string) []mapping {
	var out []mapping
	for _, m := range ms {
		if m.path == exe && m.perms[1] != 'w' && m.end > m.start {
			out = append(out, m)
		}
	}
	return out
}

// resident sums the resident bytes of the regions of ms that start at
// one of want's starts.
func resident(ms, want []mapping) uint64 {
	var n uint64
	for _, w := range want {
		for _, m := range ms {
			if m.start == w.start {
				n += m.rss
			}
		}
	}
	return n
}
