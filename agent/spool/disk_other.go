//go:build !linux

package spool

// DiskFree returns nil where the free space is not read: the queue is then
// bounded by its count only.
func DiskFree(dir string) FreeSpace { return nil }
