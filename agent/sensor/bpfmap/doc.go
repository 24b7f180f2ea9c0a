// Package bpfmap reads the eBPF maps the sensors' kernel programs share
// with them.
package bpfmap
