package bpfmap

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// SumPerCPU returns the sum over every CPU of a per-CPU array's uint64 at
// key: the count a kernel program keeps without locks, one slot per CPU
// (records the ring had no room for, for instance).
func SumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(key, &perCPU); err != nil {
		return 0, fmt.Errorf("reading the per-CPU counter %s[%d]: %w", m.String(), key, err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}
