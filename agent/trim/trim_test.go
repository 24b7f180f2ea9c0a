package trim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSmaps(t *testing.T) {
	for _, tc := range []struct {
		file, exe string
		want      []mapping // the binary's read-only mappings
		regions   int
	}{
		{"agent.smaps", "/usr/bin/cordon-agent", []mapping{
			{0x400000, 0xca0000, "r-xp", "/usr/bin/cordon-agent", 6052 << 10},
			{0xca0000, 0x165a000, "r--p", "/usr/bin/cordon-agent", 7824 << 10},
		}, 8},
		// After an upgrade replaced the file, from a folder with a space.
		{"upgraded.smaps", "/opt/my cordon/cordon-agent (deleted)", []mapping{
			{0x400000, 0xca0000, "r-xp", "/opt/my cordon/cordon-agent (deleted)", 512 << 10},
			{0xca0000, 0x165a000, "r--p", "/opt/my cordon/cordon-agent (deleted)", 1024 << 10},
		}, 4},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ms, err := parseSmaps(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != tc.regions {
				t.Errorf("%d regions, want %d", len(ms), tc.regions)
			}
			got := readOnly(ms, tc.exe)
			if len(got) != len(tc.want) {
				t.Fatalf("read-only mappings of the binary: %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("mapping %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if r := resident(ms, got); r != tc.want[0].rss+tc.want[1].rss {
				t.Errorf("resident %d", r)
			}
		})
	}
}

func TestParseSmapsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Rss: 4 kB\n", "line 1: field \"Rss\" before any region"},
		{"00400000 r-xp 0 fe:00 1 /a\n", "line 1: region range \"00400000\""},
		{"00400000-0040zz00 r-xp 0 fe:00 1 /a\n", "line 1: region range"},
		{"00500000-00400000 r-xp 0 fe:00 1 /a\n", "the first not above the second"},
		{"00400000-00500000 rx 0 fe:00 1 /a\n", "line 1: region permissions \"rx\""},
		{"00400000-00500000 r-xp 0 fe:00\n", "want range, permissions, offset, device and inode"},
		{"00400000-00500000 r-xp 0 fe:00 1 /a\nSize: 4 kB\nRss: lots kB\n", "line 3: Rss \"lots\""},
		{"00400000-00500000 r-xp 0 fe:00 1 /a\nRss: 4 MB\n", "line 2: Rss"},
	} {
		_, err := parseSmaps(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseSmaps(f *testing.F) {
	for _, name := range []string{"agent.smaps", "upgraded.smaps"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("00400000-00500000 r-xp 0 fe:00 1\nRss: 4 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseSmaps(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.end < m.start || len(m.perms) != 4 || m.rss%1024 != 0 {
				t.Fatalf("bad region %+v from %q", m, b)
			}
		}
		for _, m := range readOnly(ms, "/usr/bin/cordon-agent") {
			if m.perms[1] == 'w' {
				t.Fatalf("writable region %+v kept", m)
			}
		}
	})
}
