// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// udpflow: the network sensor's source of UDP flows, so that a socket
// that lives less than the reader's periodic dump (a resolver's query, a
// beacon over UDP) is still seen, with its process. Both programs run in
// the context of the task that sends, and put records on the ring the
// TCP program writes to; neither kprobes nor tracefs are needed.
//
// on_send, at the sock:sock_send_length BTF tracepoint (after each
// sendmsg), reports a connected UDP socket at its first datagram: by
// then its local port is bound. A flag in the socket's local storage
// keeps later datagrams quiet. The socket cookie is the one sock_diag
// reports, so the periodic dump does not report the socket again.
//
// on_sendmsg4 and on_sendmsg6, cgroup sock_addr hooks attached to the
// root of the cgroup v2 hierarchy, run for sends that name their peer
// (sendto on an unconnected socket) and report each socket and peer
// once, remembered in an LRU map. They only look: they always return 1,
// which lets the datagram go.

#include "conn.h"

#define SOCK_STORAGE_GET_F_CREATE 1

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} reported SEC(".maps");

// A socket and a peer it sent to.
struct peer {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;
	__u8 pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct peer);
	__type(value, __u8);
} peers SEC(".maps");

static __always_inline void current_task(struct conn *e)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

// void trace_sock_send_length(struct sock *sk, int ret, int flags)
SEC("tp_btf/sock_send_length")
int on_send(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	struct conn e = {};
	__u32 *done;

	if (ret < 0)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	if (BPF_CORE_READ(sk, __sk_common.skc_dport) == 0)
		// Not connected: the sendmsg hooks see its peers.
		return 0;
	done = bpf_sk_storage_get(&reported, sk, 0, SOCK_STORAGE_GET_F_CREATE);
	if (!done || *done)
		return 0;
	*done = 1;
	e.kind = KIND_UDP_CONNECT;
	current_task(&e);
	if (fill(&e, sk) < 0)
		return 0;
	emit(&events, &e, sizeof(e), 0);
	return 0;
}

// send reports ctx's socket and peer unless already reported.
static __always_inline void send(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bpf_sock *sk = ctx->sk;
	struct peer p = {};
	struct conn e = {};
	__u8 one = 1;

	if (ctx->protocol != IPPROTO_UDP || !sk)
		return;
	if (sk->dst_port != 0)
		// Connected: on_send reports it.
		return;
	p.cookie = bpf_get_socket_cookie(ctx);
	p.port = __builtin_bswap16((__u16)ctx->user_port);
	if (family == AF_INET) {
		__builtin_memcpy(p.addr, &ctx->user_ip4, 4);
	} else {
		__u32 a[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
		__builtin_memcpy(p.addr, a, 16);
	}
	if (bpf_map_update_elem(&peers, &p, &one, BPF_NOEXIST) != 0)
		return;
	e.kind = KIND_UDP_SEND;
	current_task(&e);
	e.cookie = p.cookie;
	e.family = family;
	e.sport = sk->src_port;
	e.dport = p.port;
	__builtin_memcpy(e.daddr, p.addr, 16);
	if (family == AF_INET) {
		__u32 a = sk->src_ip4;
		__builtin_memcpy(e.saddr, &a, 4);
	} else {
		__u32 a[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
		__builtin_memcpy(e.saddr, a, 16);
	}
	emit(&events, &e, sizeof(e), 0);
}

SEC("cgroup/sendmsg4")
int on_sendmsg4(struct bpf_sock_addr *ctx)
{
	send(ctx, AF_INET);
	return 1;
}

SEC("cgroup/sendmsg6")
int on_sendmsg6(struct bpf_sock_addr *ctx)
{
	send(ctx, AF_INET6);
	return 1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
