//go:build !linux

package quarantine

import (
	"fmt"
	"runtime"
)

func isCrossDevice(error) bool { return false }

// Quarantine fails with a message naming the system: never a silent
// success.
func (v *Vault) Quarantine(path, command string) (Record, error) {
	return Record{}, fmt.Errorf("quarantine unsupported on %s", runtime.GOOS)
}

// Restore fails with a message naming the system.
func (v *Vault) Restore(id, path string) (Record, error) {
	return Record{}, fmt.Errorf("restore unsupported on %s", runtime.GOOS)
}
