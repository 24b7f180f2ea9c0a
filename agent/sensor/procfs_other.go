//go:build !linux

package sensor

import "os"

// readFile reads a file; buf is unused on this OS.
func readFile(path string, buf []byte) ([]byte, error) {
	return os.ReadFile(path)
}

// readlink reads a symbolic link into buf.
func readlink(path string, buf []byte) (int, error) {
	s, err := os.Readlink(path)
	if err != nil {
		return 0, err
	}
	return copy(buf, s), nil
}
