//go:build !linux

package watchdog

import (
	"fmt"
	"os"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// SelfUsage reads the process's own usage through gopsutil.
func SelfUsage() (Usage, error) {
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return Usage{}, fmt.Errorf("reading the agent's own usage: %w", err)
	}
	t, err := p.Times()
	if err != nil {
		return Usage{}, fmt.Errorf("reading the agent's own cpu time: %w", err)
	}
	m, err := p.MemoryInfo()
	if err != nil {
		return Usage{}, fmt.Errorf("reading the agent's own memory: %w", err)
	}
	return Usage{
		CPU: time.Duration((t.User + t.System) * float64(time.Second)),
		RSS: m.RSS,
	}, nil
}
