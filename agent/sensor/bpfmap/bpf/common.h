// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// common.h: what the sensors' eBPF programs share. The few kernel types
// they need, instead of the uapi headers, so that they build with clang
// and libbpf's headers alone; the per-CPU count of records their ring
// had no room for, read by bpfmap.Capture.Lost; and emit, which puts a
// record on a ring and counts it there when the ring is full.

#ifndef CORDON_SENSOR_COMMON_H
#define CORDON_SENSOR_COMMON_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_SK_STORAGE = 24,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_NOEXIST = 1,
	BPF_F_NO_PREALLOC = 1,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
};

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// Records the ring had no room for, per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// emit puts len bytes of rec on ring, or counts them in lost when the
// ring is full. flags are bpf_ringbuf_output's (BPF_RB_*).
static __always_inline void emit(void *ring, void *rec, __u64 len, __u64 flags)
{
	__u32 zero = 0;
	__u64 *n;

	if (bpf_ringbuf_output(ring, rec, len, flags) < 0) {
		n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

#endif
