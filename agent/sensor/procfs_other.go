//go:build !linux

package sensor

import "os"

// readFile reads a file; buf is unused on this OS.
func readFile(path string, buf []byte) ([]byte, error) {
	return os.ReadFile(path)
}
