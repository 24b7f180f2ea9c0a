package trim

import (
	"errors"
	"testing"
)

// The test binary trims itself: its code and read-only data leave
// memory, and it goes on running.
func TestBinaryReclaims(t *testing.T) {
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
