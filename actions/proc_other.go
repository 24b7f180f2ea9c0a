//go:build !unix

package actions

import "os/exec"

// setProcessGroup does nothing where drills do not run.
func setProcessGroup(*exec.Cmd) {}
