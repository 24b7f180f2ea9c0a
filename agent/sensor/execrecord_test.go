package sensor

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// execRec encodes a struct event as the eBPF program writes an exec.
func execRec(pid, ppid int, uid uint32, boot uint64, flags byte, exe, cwd string, args []byte) []byte {
	b := make([]byte, recordExecFixed+len(args))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], recordExec)
	ne.PutUint32(b[4:], uint32(pid))
	ne.PutUint32(b[8:], uint32(ppid))
	ne.PutUint32(b[12:], uid)
	ne.PutUint64(b[16:], 5_000_000_000)
	ne.PutUint64(b[24:], boot)
	ne.PutUint32(b[36:], uint32(len(args)))
	b[40] = flags
	copy(b[recordHeader:], exe)
	copy(b[recordHeader+recordPathLen:], cwd)
	copy(b[recordExecFixed:], args)
	return b
}

// shortRec encodes a fork or exit record.
func shortRec(kind uint32, pid, ppid int, exitCode uint32) []byte {
	b := make([]byte, recordHeader)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], kind)
	ne.PutUint32(b[4:], uint32(pid))
	ne.PutUint32(b[8:], uint32(ppid))
	ne.PutUint32(b[32:], exitCode)
	return b
}

func TestParseRecord(t *testing.T) {
	var r kernelRecord
	if err := parseRecord(execRec(42, 1, 1000, 12_340_000_000, 0, "/usr/bin/curl", "/home/a", []byte("curl\x00-s\x00http://x\x00")), &r); err != nil {
		t.Fatal(err)
	}
	if r.kind != recordExec || r.pid != 42 || r.ppid != 1 || r.uid != 1000 || r.ts != 5_000_000_000 || r.exe != "/usr/bin/curl" || r.cwd != "/home/a" ||
		!slices.Equal(r.args, []string{"curl", "-s", "http://x"}) || r.cmdline != "curl -s http://x" || r.argsTruncated || r.exeTruncated || r.cwdTruncated {
		t.Errorf("got %+v", r)
	}
	if r.startTicks() != 1234 {
		t.Errorf("start ticks %d, want 1234", r.startTicks())
	}
	if err := parseRecord(execRec(42, 1, 0, 0, flagExeDeleted|flagCwdTruncated|flagArgsTruncated, "/memfd:x", "/a/b", []byte("a\x00\x00b")), &r); err != nil {
		t.Fatal(err)
	}
	if r.exe != "/memfd:x (deleted)" || !r.cwdTruncated || !r.argsTruncated || r.exeTruncated || !slices.Equal(r.args, []string{"a", "", "b"}) || r.cmdline != "a  b" {
		t.Errorf("got %+v", r)
	}
	if err := parseRecord(shortRec(recordExit, 7, 1, 3<<8), &r); err != nil || r.kind != recordExit || r.pid != 7 || r.exitCode != 3<<8 || r.args != nil {
		t.Errorf("exit record: %+v %v", r, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		err  string
	}{
		{"short", make([]byte, 40), "kernel record of 40 bytes"},
		{"exec cut short", execRec(5, 1, 0, 0, 0, "x", "/", nil)[:recordHeader+10], "exec record of pid 5: 58 bytes"},
		{"args past the end", execRec(5, 1, 0, 0, 0, "x", "/", []byte("abc"))[:recordExecFixed+2], "argument length 3"},
		{"zero pid", execRec(0, 1, 0, 0, 0, "x", "/", nil), "pid 0"},
		{"unknown kind", shortRec(9, 5, 1, 0), "unknown kind 9"},
		{"args too long", func() []byte {
			b := execRec(5, 1, 0, 0, 0, "x", "/", nil)
			binary.NativeEndian.PutUint32(b[36:], recordArgsMax+1)
			return b
		}(), "argument length"},
	} {
		if err := parseRecord(tc.b, &r); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

// splitArgs splits as parseCmdline does.
func TestSplitArgs(t *testing.T) {
	for _, in := range []string{"", "\x00", "a", "a\x00", "a\x00b\x00", "a\x00\x00b", "a b\x00c"} {
		cmdline, args := splitArgs([]byte(in))
		want := parseCmdline([]byte(in))
		if !slices.Equal(args, want) || cmdline != strings.Join(want, " ") {
			t.Errorf("splitArgs(%q) = %q, %q; want %q", in, cmdline, args, want)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add(execRec(42, 1, 0, 1, 0, "/bin/sh", "/", []byte("sh\x00-c\x00id\x00")))
	f.Add(shortRec(recordFork, 42, 1, 0))
	f.Add(make([]byte, recordExecMax))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r kernelRecord
		if err := parseRecord(b, &r); err == nil && (r.pid <= 0 || len(r.exe) > recordPathLen+len(" (deleted)") || len(r.cwd) > recordPathLen) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
