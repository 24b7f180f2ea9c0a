// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// execargs: on every exec, the kernel's own record of the new program
// (pid, parent, uid, start time, file name and argv) is put on a ring
// buffer, so a process that exits before /proc can be read still has its
// command line. Attached to the sched_process_exec raw tracepoint, which
// needs neither kprobes nor tracefs; structure offsets are relocated
// against the running kernel's BTF.

// The few kernel types the program needs, instead of the uapi headers, so
// it builds with clang and libbpf's headers alone.
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
	BPF_MAP_TYPE_RINGBUF = 27,
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ARGS_MAX 4096
#define NAME_MAX_ 256

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct cred {
	struct {
		__u32 val;
	} euid;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	const struct cred *cred;
	__u64 start_boottime;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

// The record read by parseExecRecord in execrecord.go: keep both in step.
struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 args_len;
	__u64 start_boottime;
	__u8 truncated;
	__u8 pad[7];
	char filename[NAME_MAX_];
	char args[ARGS_MAX];
};

// Records are built in a per-CPU scratch slot and copied to the ring with
// only the bytes of argv they hold, so a typical exec takes a few hundred
// bytes of the ring rather than the full 4 KiB.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} events SEC(".maps");

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct exec_event *e;
	unsigned long start, end, len;
	__u32 zero = 0;

	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, euid.val);
	e->start_boottime = BPF_CORE_READ(task, start_boottime);
	e->truncated = 0;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));

	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	len = end - start;
	if (len > ARGS_MAX) {
		len = ARGS_MAX;
		e->truncated = 1;
	}
	if (bpf_probe_read_user(e->args, len, (void *)start) < 0)
		len = 0;
	e->args_len = len;
	if (len > ARGS_MAX)
		len = ARGS_MAX;
	// A full ring drops the record: the sensor falls back to /proc.
	bpf_ringbuf_output(&events, e, sizeof(*e) - ARGS_MAX + len, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
