//go:build !linux

package hunter

import "time"

// Outside Linux the benchmark reports no CPU time or resident size.
func cpuTime() time.Duration { return 0 }
func resetPeakRSS() uint64   { return 0 }
func peakRSS() uint64        { return 0 }
