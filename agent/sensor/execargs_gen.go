package sensor

// The eBPF program that captures argv at exec is compiled into
// execargs_bpfel.o and its Go loader execargs_bpfel.go, both committed so
// that building the agent needs no clang. After changing bpf/execargs.c,
// regenerate with `go generate ./agent/sensor` (needs clang and libbpf's
// headers: apt-get install clang libbpf-dev).
//go:generate go tool bpf2go -tags linux -target bpfel -go-package sensor execArgs bpf/execargs.c -- -O2 -g -Wall
