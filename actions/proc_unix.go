//go:build unix

package actions

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own and has a
// cancelled context kill the whole group, so no drill process outlives
// the drill.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
