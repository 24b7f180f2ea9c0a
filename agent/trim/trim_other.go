//go:build !linux

package trim

import "fmt"

// Binary returns an error wrapping ErrUnsupported: only Linux reclaims a
// process's pages on request.
func Binary() (Result, error) {
	return Result{}, fmt.Errorf("trimming the agent's binary: %w", ErrUnsupported)
}
