//go:build !linux

package sensor

import (
	"context"
	"errors"
	"runtime"
)

// execCapture is Linux's: elsewhere it never opens.
type execCapture struct{ store *execStore }

func openExecCapture() (*execCapture, error) {
	return nil, errors.New("eBPF exec capture is Linux's, not " + runtime.GOOS + "'s")
}

func (c *execCapture) run(context.Context, func(error)) {}

func (c *execCapture) close() error { return nil }
