//go:build !linux

package sensor

import (
	"fmt"
	"runtime"
)

// openConnector fails: the netlink process connector exists only on Linux.
func openConnector() (connector, error) {
	return nil, fmt.Errorf("netlink process connector: not supported on %s", runtime.GOOS)
}
