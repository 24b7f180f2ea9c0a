// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// connstate: the network sensor's source of TCP connections. At the
// sock:inet_sock_set_state tracepoint (a BTF tracepoint: neither kprobes
// nor tracefs are needed) it puts a record on a ring buffer for each
// outbound connection that completes its handshake (SYN_SENT to
// ESTABLISHED), each inbound one (SYN_RECV to ESTABLISHED) and each new
// listener (to LISTEN). A connection completes in softirq context, where
// the current task is whoever ran: the owner of an outbound connection is
// the task that called connect, remembered at CLOSE to SYN_SENT; the
// owner of an inbound one is the listener's, found by the reader. The
// socket cookie is the one sock_diag reports, so the reader's periodic
// dump can tell the sockets it already knows.

#include "../../bpfmap/bpf/common.h"

// Record kinds, read by parseConnRecord in record.go: keep both in step.
#define KIND_CONNECT 1
#define KIND_ACCEPT 2
#define KIND_LISTEN 3

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

#define IPPROTO_TCP 6
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

// The task that called connect, by socket, until the handshake ends.
struct owner {
	__u32 pid;
	__u32 uid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct owner);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} events SEC(".maps");

static __always_inline void current_owner(struct owner *o)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

SEC("tp_btf/inet_sock_set_state")
int on_state(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int oldstate = (int)ctx[1];
	int newstate = (int)ctx[2];
	__u64 key = (__u64)sk;
	struct owner *o, cur = {};
	struct conn e = {};

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT) {
		// connect(2), in the caller's context.
		current_owner(&cur);
		bpf_map_update_elem(&connecting, &key, &cur, 0);
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
		e.kind = KIND_CONNECT;
		o = bpf_map_lookup_elem(&connecting, &key);
		if (o) {
			e.pid = o->pid;
			e.uid = o->uid;
			__builtin_memcpy(e.comm, o->comm, sizeof(e.comm));
			bpf_map_delete_elem(&connecting, &key);
		}
	} else if (oldstate == TCP_SYN_SENT) {
		// Refused or timed out.
		bpf_map_delete_elem(&connecting, &key);
		return 0;
	} else if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		e.kind = KIND_ACCEPT;
	} else if (newstate == TCP_LISTEN) {
		// listen(2), in the caller's context.
		e.kind = KIND_LISTEN;
		current_owner(&cur);
		e.pid = cur.pid;
		e.uid = cur.uid;
		__builtin_memcpy(e.comm, cur.comm, sizeof(e.comm));
	} else {
		return 0;
	}
	e.cookie = bpf_get_socket_cookie(sk);
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e.family == AF_INET) {
		BPF_CORE_READ_INTO(&e.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&e.daddr, sk, __sk_common.skc_daddr);
	} else if (e.family == AF_INET6) {
		BPF_CORE_READ_INTO(&e.saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e.daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	emit(&events, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
