package netwatch

// The eBPF programs that report connections are compiled into
// connstate_bpfel.o (TCP) and udpflow_bpfel.o (UDP), with their Go
// loaders connstate_bpfel.go and udpflow_bpfel.go, all committed so that
// building the agent needs no clang. The UDP programs are an object of
// their own so that a kernel without their hooks still loads the TCP
// one. After changing anything under bpf/, regenerate with
// `go generate ./agent/sensor/netwatch` (needs clang and libbpf's
// headers: apt-get install clang libbpf-dev).
//go:generate go tool bpf2go -tags linux -target bpfel -go-package netwatch connState bpf/connstate.c -- -O2 -g -Wall
//go:generate go tool bpf2go -tags linux -target bpfel -go-package netwatch udpFlow bpf/udpflow.c -- -O2 -g -Wall
