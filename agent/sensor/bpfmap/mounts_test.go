package bpfmap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupRoot(t *testing.T) {
	for name, want := range map[string]string{
		"hybrid":  "/sys/fs/cgroup/unified",
		"unified": "/sys/fs/cgroup",
		"v1-only": "",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "mounts-"+name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := CgroupRoot(b)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

func FuzzCgroupRoot(f *testing.F) {
	for _, name := range []string{"hybrid", "unified", "v1-only"} {
		b, err := os.ReadFile(filepath.Join("testdata", "mounts-"+name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := CgroupRoot(b)
		if err == nil && (root == "" || !bytes.Contains(b, []byte(root))) {
			t.Fatalf("root %q not from the input", root)
		}
	})
}
