package trim

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary trims itself: its code and read-only data leave
// memory, and it goes on running.
func TestBinaryReclaims(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(exe, &fs); err == nil && (fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC) {
		t.Skipf("the test binary is on tmpfs or ramfs, whose pages have no disk copy to come back from; set GOTMPDIR to a disk folder to run this test")
	}
	res, err := Binary()
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("this kernel cannot reclaim pages on request: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Mappings < 1 || res.Bytes == 0 || res.Before == 0 {
		t.Fatalf("%+v: want the binary's read-only mappings, resident before", res)
	}
	if res.After >= res.Before {
		t.Errorf("resident bytes of the binary: %d before, %d after trimming", res.Before, res.After)
	}
	t.Logf("%d mappings, %d KiB: %d KiB resident before, %d KiB after", res.Mappings, res.Bytes>>10, res.Before>>10, res.After>>10)
}
