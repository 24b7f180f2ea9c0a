//go:build !linux

package sensor

import (
	"context"
	"errors"
	"runtime"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// execCapture is Linux's: elsewhere it never opens.
type execCapture struct{}

func openExecCapture() (*execCapture, error) {
	return nil, errors.New("eBPF process capture is Linux's, not " + runtime.GOOS + "'s")
}

func (p *Process) runCapture(context.Context, *execCapture, chan<- ecs.Event) error {
	return errors.New("eBPF process capture is Linux's, not " + runtime.GOOS + "'s")
}
