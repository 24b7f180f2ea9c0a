// Package bpfmap loads the sensors' eBPF programs, attaches them and
// reads what they share with the sensors: the ring buffer of records and
// the maps beside it. The C header the programs share is bpf/common.h.
package bpfmap
