//go:build !linux

package sensor

import (
	"errors"
	"runtime"
)

// execCapture is Linux's: elsewhere it never opens.
type execCapture struct {
	store *execStore
	bad   func(error)
}

func openExecCapture() (*execCapture, error) {
	return nil, errors.New("eBPF exec capture is Linux's, not " + runtime.GOOS + "'s")
}

func (c *execCapture) take(pid int) (execRecord, bool) { return c.store.take(pid) }

func (c *execCapture) close() error { return nil }
