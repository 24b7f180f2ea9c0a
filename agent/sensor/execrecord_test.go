package sensor

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// record encodes a struct exec_event as the eBPF program writes it.
func record(pid, ppid int, uid uint32, boot uint64, name string, args []byte) []byte {
	b := make([]byte, execRecordLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(pid))
	ne.PutUint32(b[4:], uint32(ppid))
	ne.PutUint32(b[8:], uid)
	ne.PutUint32(b[12:], uint32(len(args)))
	ne.PutUint64(b[16:], boot)
	copy(b[execRecordHeader:], name)
	copy(b[execRecordHeader+execRecordNameLen:], args)
	return b
}

func TestParseExecRecord(t *testing.T) {
	r, err := parseExecRecord(record(42, 1, 1000, 12_340_000_000, "/usr/bin/curl", []byte("curl\x00-s\x00http://x\x00")))
	if err != nil {
		t.Fatal(err)
	}
	if r.pid != 42 || r.ppid != 1 || r.uid != 1000 || r.filename != "/usr/bin/curl" || !slices.Equal(r.args, []string{"curl", "-s", "http://x"}) {
		t.Errorf("got %+v", r)
	}
	if r.startTicks() != 1234 {
		t.Errorf("start ticks %d, want 1234", r.startTicks())
	}
	for _, tc := range []struct {
		name string
		b    []byte
		err  string
	}{
		{"short", make([]byte, 100), "exec record of 100 bytes"},
		{"args past the end", record(5, 1, 0, 0, "x", []byte("abc"))[:execRecordHeader+execRecordNameLen+2], "argument length 3"},
		{"zero pid", record(0, 1, 0, 0, "x", nil), "pid 0"},
		{"args too long", func() []byte {
			b := record(5, 1, 0, 0, "x", nil)
			binary.NativeEndian.PutUint32(b[12:], execRecordArgsMax+1)
			return b
		}(), "argument length"},
	} {
		if _, err := parseExecRecord(tc.b); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestExecStore(t *testing.T) {
	s := newExecStore()
	s.put(execRecord{pid: 7, filename: "/bin/a"})
	s.put(execRecord{pid: 7, filename: "/bin/b"})
	if r, ok := s.take(7); !ok || r.filename != "/bin/a" {
		t.Fatalf("first take = %+v %v, want /bin/a: a pid's execs come in order", r, ok)
	}
	if r, ok := s.take(7); !ok || r.filename != "/bin/b" {
		t.Fatalf("second take = %+v %v", r, ok)
	}
	if _, ok := s.take(7); ok {
		t.Fatal("take from an empty store")
	}
	for i := range maxExecRecords + 10 {
		s.put(execRecord{pid: 100 + i})
	}
	if _, ok := s.take(100); ok {
		t.Error("the oldest record survived past the bound")
	}
	if _, ok := s.take(100 + maxExecRecords + 9); !ok {
		t.Error("the newest record was evicted")
	}
	if n := s.len(); n != maxExecRecords-1 {
		t.Errorf("%d records left, want %d", n, maxExecRecords-1)
	}
}

func FuzzParseExecRecord(f *testing.F) {
	f.Add(record(42, 1, 0, 1, "/bin/sh", []byte("sh\x00-c\x00id\x00")))
	f.Add(make([]byte, execRecordLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseExecRecord(b)
		if err == nil && (r.pid <= 0 || len(r.filename) > execRecordNameLen) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
