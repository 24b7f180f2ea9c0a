//go:build !linux

package process

import (
	"context"
	"fmt"
	"runtime"
)

// Controller refuses every action where processes cannot be signalled
// safely yet: never a silent success.
type Controller struct{}

// New returns the controller of this system.
func New(protected []string) (*Controller, error) { return &Controller{}, nil }

// Do fails with a message naming the system.
func (*Controller) Do(context.Context, Request) (string, error) {
	return "", fmt.Errorf("process actions unsupported on %s", runtime.GOOS)
}
