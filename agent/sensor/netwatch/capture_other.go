//go:build !linux

package netwatch

import (
	"errors"
	"runtime"
)

func openCapture() (capture, error) {
	return nil, errors.New("eBPF is not available on " + runtime.GOOS)
}
