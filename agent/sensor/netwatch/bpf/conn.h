// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// conn.h: what the network sensor's programs share: the kernel's socket
// fields they read, the connection record they put on their ring buffer
// (read by parseConnRecord in record.go: keep both in step), the ring
// itself, declared alike in connstate.c and udpflow.c so that the UDP
// programs, loaded second, can be handed the TCP program's, and fill,
// which copies a socket's addresses into a record.

#ifndef CORDON_NETWATCH_CONN_H
#define CORDON_NETWATCH_CONN_H

#include "../../bpfmap/bpf/common.h"

// Record kinds.
#define KIND_CONNECT 1
#define KIND_ACCEPT 2
#define KIND_LISTEN 3
#define KIND_UDP_CONNECT 4
#define KIND_UDP_SEND 5

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define AF_INET 2
#define AF_INET6 10

struct in6_addr {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

// The kernel's view of a socket to cgroup programs (uapi linux/bpf.h:
// fixed, not relocated).
struct bpf_sock {
	__u32 bound_dev_if;
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 mark;
	__u32 priority;
	__u32 src_ip4;
	__u32 src_ip6[4];
	__u32 src_port; // host order
	__be16 dst_port;
	__u16 pad;
	__u32 dst_ip4;
	__u32 dst_ip6[4];
	__u32 state;
	__s32 rx_queue_mapping;
};

// The context of cgroup sock_addr programs (uapi linux/bpf.h).
struct bpf_sock_addr {
	__u32 user_family;
	__u32 user_ip4; // network order
	__u32 user_ip6[4]; // network order
	__u32 user_port; // network order
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 msg_src_ip4;
	__u32 msg_src_ip6[4];
	union {
		struct bpf_sock *sk;
		__u64 :64;
	};
};

// One record; 80 bytes.
struct conn {
	__u64 cookie;
	__u32 kind;
	__u32 pid;
	__u32 uid;
	__u16 family;
	__u16 sport; // host order
	__u16 dport; // host order
	__u8 pad[6];
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} events SEC(".maps");

// fill copies the cookie, family, ports and addresses of sk into e. It
// returns 0, or -1 for a family other than IPv4 and IPv6.
static __always_inline int fill(struct conn *e, struct sock *sk)
{
	e->cookie = bpf_get_socket_cookie(sk);
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_daddr);
	} else if (e->family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return -1;
	}
	return 0;
}

#endif
