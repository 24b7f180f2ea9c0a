//go:build !linux

package netwatch

import "runtime"

// openImpl polls gopsutil: sock_diag is Linux's.
func openImpl() (osImpl, string, string, error) {
	return pollImpl{}, ModePoll, "sock_diag is not available on " + runtime.GOOS, nil
}
