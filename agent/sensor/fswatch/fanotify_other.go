//go:build !linux

package fswatch

import (
	"context"
	"errors"

	"github.com/fsnotify/fsnotify"
)

// fanSource is Linux only: elsewhere the sensor watches with fsnotify
// alone.
type fanSource struct{}

func newFanSource() (*fanSource, error) {
	return nil, errors.New("fanotify is Linux only")
}

func (*fanSource) add(string) error { return errors.New("fanotify is Linux only") }
func (*fanSource) remove(string)    {}
func (*fanSource) close()           {}

func (*fanSource) run(context.Context, func(string, fsnotify.Op, int), func(string)) error {
	return nil
}
