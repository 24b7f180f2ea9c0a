package netwatch

// The eBPF program that reports TCP connections is compiled into
// connstate_bpfel.o and its Go loader connstate_bpfel.go, both committed
// so that building the agent needs no clang. After changing
// bpf/connstate.c, regenerate with `go generate ./agent/sensor/netwatch`
// (needs clang and libbpf's headers: apt-get install clang libbpf-dev).
//go:generate go tool bpf2go -tags linux -target bpfel -go-package netwatch connState bpf/connstate.c -- -O2 -g -Wall
