package fswatch

import (
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in        string
		pattern   string
		recursive bool
		err       string
	}{
		{in: "/etc/...", pattern: "/etc", recursive: true},
		{in: "/etc/", pattern: "/etc"},
		{in: " /root ", pattern: "/root"},
		{in: "/home/*/.ssh/...", pattern: "/home/*/.ssh", recursive: true},
		{in: "/...", pattern: "/", recursive: true},
		{in: "/a/../b", pattern: "/b"},
		{in: "", err: "empty"},
		{in: "etc/...", err: "not an absolute path"},
		{in: "/a/.../b", err: "may only end"},
		{in: "/a/[", err: "bad pattern"},
	} {
		sp, err := parseSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("parseSpec(%q) error = %v, want one naming the path and %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || sp.pattern != tc.pattern || sp.recursive != tc.recursive {
			t.Errorf("parseSpec(%q) = %+v, %v; want %q recursive=%v", tc.in, sp, err, tc.pattern, tc.recursive)
		}
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		spec, path string
		want       bool
	}{
		{"/etc/...", "/etc/cron.d/job", true},
		{"/etc/...", "/etcetera/x", false},
		{"/root", "/root/.bashrc", true},
		{"/root", "/root/.ssh/authorized_keys", false},
		{"/home/*/.ssh/...", "/home/bob/.ssh/keys/x", true},
		{"/home/*", "/home/bob/.profile", true},
		{"/home/*", "/home/bob/x/y", false},
	} {
		sp, err := parseSpec(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := sp.covers(tc.path); got != tc.want {
			t.Errorf("%q covers %q = %v, want %v", tc.spec, tc.path, got, tc.want)
		}
	}
}

func TestDefaultPathsParse(t *testing.T) {
	if err := ParsePaths(DefaultPaths()); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range append(DefaultPaths(), "", "...", "/a/.../b", "rel", "/a/[") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parseSpec(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(sp.pattern, "/") {
			t.Errorf("parseSpec(%q) accepted a relative pattern %q", s, sp.pattern)
		}
		_ = sp.covers(sp.pattern + "/x")
	})
}
