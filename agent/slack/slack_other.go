//go:build !linux

package slack

import (
	"fmt"
	"time"
)

// Apply returns an error wrapping ErrUnsupported: only Linux lets a
// process widen its timers' slack.
func Apply(time.Duration) error {
	return fmt.Errorf("setting the timer slack: %w", ErrUnsupported)
}
