package watchdog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseStat(b, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// utime 1234 + stime 566 ticks; rss 5120 pages.
	if u.CPU != 18*time.Second || u.RSS != 5120*4096 {
		t.Fatalf("usage %+v", u)
	}
	for _, tc := range []struct{ name, in, err string }{
		{"empty", "", "no command name"},
		{"short", "1 (x) S 0 1", "fields after the command name"},
		{"bad utime", strings.Replace(string(b), " 1234 ", " x ", 1), "utime"},
		{"huge", strings.Replace(string(b), " 1234 ", " 99999999999999999999 ", 1), "utime"},
		{"overflow", strings.Replace(string(b), " 1234 ", " 184467440737095516 ", 1), "out of range"},
	} {
		if _, err := parseStat([]byte(tc.in), 4096); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "stat"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("1 (a) b) S 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseStat(b, 4096)
		if err == nil && u.CPU < 0 {
			t.Fatalf("negative cpu time %v", u.CPU)
		}
	})
}
