package fswatch

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/random/boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// describeProc reads what procfs says about a live process: its
// executable, name, command line and the entity id the process sensor gives
// it (boot id, pid and start time). It returns false when the process is
// gone.
func describeProc(pid int) (ecs.Parent, bool) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ecs.Parent{}, false
	}
	ref := ecs.Parent{PID: pid}
	if comm, ticks, err := parseStat(stat); err == nil {
		// The kernel's name for it, all there is once it has exited.
		ref.Name = comm
		if b := bootID(); b != "" {
			ref.EntityID = ecs.EntityID(b, pid, ticks)
		}
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		ref.Executable = exe
		ref.Name = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		ref.CommandLine = commandLine(cmd)
	}
	return ref, true
}
