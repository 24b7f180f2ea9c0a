//go:build !linux

package fswatch

import "github.com/cordon-edr/cordon/protocol/ecs"

// describeProc is used with fanotify only, which is Linux only.
func describeProc(int) (ecs.Parent, bool) { return ecs.Parent{}, false }
