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

#include "conn.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

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
	if (fill(&e, sk) < 0)
		return 0;
	emit(&events, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
