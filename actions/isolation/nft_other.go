//go:build !linux

package isolation

import (
	"fmt"
	"runtime"
)

// unsupported is the firewall of systems Cordon cannot isolate yet: every
// operation fails with a message naming the system, never a silent
// success.
type unsupported struct{}

func newFirewall() firewall { return unsupported{} }

func (unsupported) err() error {
	return fmt.Errorf("isolation unsupported on %s", runtime.GOOS)
}

func (u unsupported) Apply([]Rule) error     { return u.err() }
func (u unsupported) Remove() error          { return u.err() }
func (u unsupported) Check([]Rule) error     { return u.err() }
func (u unsupported) Present() (bool, error) { return false, nil }
