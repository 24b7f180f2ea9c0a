package fswatch

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// The fixtures under testdata/fanotify are reads of a fanotify group with
// FAN_REPORT_DFID_NAME, as Linux 6.18 on x86-64 returned them, with marks
// on a folder and on its subfolder "sub", taken by one process (pid
// 13957) doing what each fixture's name says.
const fixturePID = 13957

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fanotify", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFanotifyFixtures(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixtures were read on a little-endian machine")
	}
	type want struct {
		mask uint64
		name string
		ops  fsnotify.Op
	}
	for _, tc := range []struct {
		file string
		want []want
		// sameDir lists the records whose folder is the first record's.
		sameDir []int
	}{
		{"create-modify.bin", []want{
			// The kernel merged the creation and the write.
			{fanCreate | fanModify, "passwd", fsnotify.Create | fsnotify.Write},
		}, nil},
		{"attrib-rename-delete.bin", []want{
			// Merged again, by entry name.
			{fanAttrib | fanMovedFrom, "passwd", fsnotify.Chmod | fsnotify.Rename},
			{fanMovedTo | fanDelete, "shadow", fsnotify.Create | fsnotify.Remove},
		}, []int{1}},
		{"dirs.bin", []want{
			{fanCreate | fanOnDir, "newdir", fsnotify.Create},
			// The subfolder's own mark: the folder itself, named ".".
			{fanDeleteSelf | fanOnDir, ".", fsnotify.Remove},
			{fanDelete | fanOnDir, "sub", fsnotify.Remove},
		}, []int{2}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			recs, err := parseFanotify(readFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(tc.want) {
				t.Fatalf("%d records %+v, want %d", len(recs), recs, len(tc.want))
			}
			for i, w := range tc.want {
				r := recs[i]
				if r.Mask != w.mask || r.Name != w.name || r.PID != fixturePID || r.Dir == "" || fanOps(r.Mask) != w.ops {
					t.Errorf("record %d: mask %#x name %q pid %d ops %v, want mask %#x name %q pid %d ops %v",
						i, r.Mask, r.Name, r.PID, fanOps(r.Mask), w.mask, w.name, fixturePID, w.ops)
				}
			}
			for _, i := range tc.sameDir {
				if recs[i].Dir != recs[0].Dir {
					t.Errorf("record %d: folder handle differs from record 0's", i)
				}
			}
		})
	}
}

func TestParseFanotifyBad(t *testing.T) {
	good := readFixture(t, "attrib-rename-delete.bin")
	ne := binary.NativeEndian
	for _, tc := range []struct {
		name    string
		mangle  func(b []byte) []byte
		wantErr string
		wantN   int
	}{
		{"short header", func(b []byte) []byte { return b[:10] }, "shorter than its 24 byte header", 0},
		{"version", func(b []byte) []byte { b[4] = 2; return b }, "version 2", 0},
		{"metadata_len", func(b []byte) []byte { ne.PutUint16(b[6:], 8); return b }, "metadata_len 8", 0},
		{"event_len past the read", func(b []byte) []byte { return b[:40] }, "event_len", 0},
		{"info len", func(b []byte) []byte { ne.PutUint16(b[26:], 2); return b }, "len 2 outside", 0},
		{"handle_bytes", func(b []byte) []byte { ne.PutUint32(b[36:], 4000); return b }, "handle_bytes 4000", 0},
		{"name without NUL", func(b []byte) []byte {
			n := ne.Uint32(b)
			for i := 24 + 4 + 8 + 8 + int(ne.Uint32(b[36:])); i < int(n); i++ {
				b[i] = 'x'
			}
			return b
		}, "terminating NUL", 0},
		{"second event cut", func(b []byte) []byte { return b[:int(ne.Uint32(b))+30] }, "event_len", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mangle(append([]byte(nil), good...))
			recs, err := parseFanotify(b)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if len(recs) != tc.wantN {
				t.Errorf("%d records before the error, want %d", len(recs), tc.wantN)
			}
		})
	}
}

func TestFanOps(t *testing.T) {
	if op := fanOps(fanQOverflow); op != 0 {
		t.Errorf("overflow: ops %v, want none", op)
	}
	if op := fanOps(fanMoveSelf | fanOnDir); op != fsnotify.Rename {
		t.Errorf("folder moved: ops %v, want rename", op)
	}
	if op := fanOps(fanCloseWrite | fanAccess); op != 0 {
		t.Errorf("close and access: ops %v, want none", op)
	}
}

func TestParseStat(t *testing.T) {
	stat := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 200 18446744073709551615"
	if comm, v, err := parseStat([]byte(stat)); err != nil || v != 987654 || comm != "a) b (c)" {
		t.Errorf("parseStat = %q, %d, %v, want \"a) b (c)\", 987654", comm, v, err)
	}
	for _, bad := range []string{"", "4242 (a S 1", "4242 )a( S 1", "4242 (a) S 1 2 3", "4242 (a) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 x 1"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): want error", bad)
		}
	}
	if got := commandLine([]byte("/bin/sh\x00-c\x00echo hi\x00")); got != "/bin/sh -c echo hi" {
		t.Errorf("commandLine = %q", got)
	}
}

func FuzzParseFanotify(f *testing.F) {
	for _, name := range []string{"create-modify.bin", "attrib-rename-delete.bin", "dirs.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fanotify", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseFanotify(b)
		if err == nil && len(b) > 0 && len(recs) == 0 {
			t.Errorf("%d bytes parsed into no record without an error", len(b))
		}
		for _, r := range recs {
			_ = fanOps(r.Mask)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1000000 200 0"))
	f.Add([]byte("2 (a) b)) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		comm, _, err := parseStat(b)
		if err == nil && !bytes.Contains(b, []byte("("+comm+")")) {
			t.Errorf("command name %q is not between parentheses in %q", comm, b)
		}
	})
}
