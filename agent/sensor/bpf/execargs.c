// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// execargs: the process sensor's source of process events. Every new
// process (fork), every exec and every exit is put on a ring buffer; an
// exec's record carries everything the sensor reports of the new program
// (pid, parent, uid, start time, resolved executable, working directory
// and argv), so a process that exits at once is still fully described
// and nothing has to be read from /proc. Attached to the sched_process_*
// raw tracepoints, which need neither kprobes nor tracefs; structure
// offsets are relocated against the running kernel's BTF.
//
// The reader is woken only when the ring holds a batch worth reading
// (wake_bytes); otherwise it reads on a short timer of its own, so an
// exec storm costs one wakeup per batch rather than one per event.

#include "../bpfmap/bpf/common.h"

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#define ARGS_MAX 4096
#define PATH_LEN 256
#define PATH_MASK (PATH_LEN - 1)
// Path components followed from a file up to the root; deeper paths are
// marked truncated and completed from /proc.
#define PATH_DEPTH 32

// Record kinds and flags, read by parseRecord in record.go: keep both in
// step.
#define KIND_EXEC 1
#define KIND_FORK 2
#define KIND_EXIT 3

#define FLAG_ARGS_TRUNCATED 1
#define FLAG_EXE_TRUNCATED 2
#define FLAG_CWD_TRUNCATED 4
#define FLAG_EXE_DELETED 8

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct inode {
	unsigned int i_nlink;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct cred {
	struct {
		__u32 val;
	} euid;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct fs_struct *fs;
	const struct cred *cred;
	__u64 start_boottime;
} __attribute__((preserve_access_index));

// The record. Fork and exit records end after the header (hdr_len
// bytes); exec records carry exe, cwd and as many bytes of argv as
// args_len says.
struct header {
	__u32 kind;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u64 ts;
	__u64 start_boottime;
	__u32 exit_code;
	__u32 args_len;
	__u8 flags;
	__u8 pad[7];
};

struct event {
	struct header h;
	char exe[PATH_LEN];
	char cwd[PATH_LEN];
	char args[ARGS_MAX];
};


// Per-CPU scratch: the record being built and the path components being
// walked.
struct scratch {
	struct event e;
	// Room for a path component read at the last offset of cwd.
	char spill[PATH_LEN];
	__u64 names[PATH_DEPTH];
	// path_of's walk: the dentry and mount reached, the names noted, the
	// bytes written.
	__u64 d, mnt;
	__u32 n, off;
	__u32 truncated;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

// Bytes in the ring that wake the reader early. Set before loading.
volatile const __u64 wake_bytes = 128 << 10;

// emit_batched puts a record on the ring. Without flags the kernel wakes
// the reader when, as the record is committed, the reader has caught up
// with it: a reader that took every record and waits (on an idle host,
// with no timer) is woken by the next one, without the race of deciding
// from the ring's fill before writing. Records that land while the
// reader is busy, or pausing to let a burst gather, wake no one, unless
// the ring holds wake_bytes.
static __always_inline void emit_batched(void *rec, __u64 len)
{
	__u64 flags = 0;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + len >= wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	emit(&events, rec, len, flags);
}

// walk holds what path_of's loops need on the stack; the rest of their
// state is in the scratch map, where the verifier does not track values
// and so sees every round of a loop alike (tracked, each distinct
// counter value would be a new state, past the verifier's budget).
struct walk {
	struct scratch *s;
	char *out;
};

// walk_up takes one step from s->d towards the root, noting the name of
// each dentry left and crossing mount points; it stops at the root of the
// mount tree.
static long walk_up(__u64 i, struct walk *w)
{
	struct scratch *s = w->s;
	struct dentry *d = (struct dentry *)s->d;
	struct mount *mnt = (struct mount *)s->mnt;
	struct vfsmount *vmnt = (struct vfsmount *)((char *)mnt + bpf_core_field_offset(struct mount, mnt));
	struct dentry *root = BPF_CORE_READ(vmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	__u32 n;

	if (d == root || d == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (d != root || up == mnt) {
			s->truncated = 0;
			return 1;
		}
		s->d = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		s->mnt = (__u64)up;
		return 0;
	}
	n = s->n;
	if (n >= PATH_DEPTH)
		return 1;
	s->names[n & (PATH_DEPTH - 1)] = (__u64)BPF_CORE_READ(d, d_name.name);
	s->n = n + 1;
	s->d = (__u64)parent;
	return 0;
}

// write_name appends "/" and the i-th name from the root to w->out.
static long write_name(__u64 i, struct walk *w)
{
	struct scratch *s = w->s;
	char *out = w->out;
	__u32 n = s->n, off = s->off;
	long len;

	if (i >= n)
		return 1;
	if (off >= PATH_LEN - 1) {
		s->truncated = 1;
		return 1;
	}
	out[off & PATH_MASK] = '/';
	off++;
	len = bpf_probe_read_kernel_str(&out[off & PATH_MASK], PATH_LEN,
					(const void *)s->names[(n - 1 - i) & (PATH_DEPTH - 1)]);
	if (len <= 0)
		return 1;
	s->off = off + len - 1;
	return 0;
}

// path_of writes the path of p into out (PATH_LEN bytes followed by at
// least PATH_LEN more of scratch) the way d_path does, crossing mount
// points up to the root of the mount tree. It returns 1 if the path did
// not fit (too long or too deep).
static __always_inline int path_of(struct scratch *s, struct path *p, char *out)
{
	struct vfsmount *vmnt = BPF_CORE_READ(p, mnt);
	struct walk w = {.s = s, .out = out};
	__u32 end;

	s->d = (__u64)BPF_CORE_READ(p, dentry);
	s->mnt = (__u64)((char *)vmnt - bpf_core_field_offset(struct mount, mnt));
	s->n = 0;
	s->off = 0;
	s->truncated = 1;
	// Mount points crossed take steps too: twice the depth.
	bpf_loop(2 * PATH_DEPTH, walk_up, &w, 0);
	bpf_loop(PATH_DEPTH, write_name, &w, 0);
	end = s->off;
	if (s->n == 0) {
		out[0] = '/';
		end = 1;
	}
	if (end >= PATH_LEN) {
		end = PATH_LEN - 1;
		s->truncated = 1;
	}
	out[end & PATH_MASK] = 0;
	return s->truncated;
}

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct scratch *s;
	struct event *e;
	struct file *exe;
	struct path pwd;
	unsigned long start, end, len;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	e = &s->e;
	e->h.kind = KIND_EXEC;
	e->h.pid = BPF_CORE_READ(task, tgid);
	e->h.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->h.uid = BPF_CORE_READ(task, cred, euid.val);
	e->h.ts = bpf_ktime_get_ns();
	e->h.start_boottime = BPF_CORE_READ(task, start_boottime);
	e->h.exit_code = 0;
	e->h.flags = 0;

	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct path fp = BPF_CORE_READ(exe, f_path);
		if (path_of(s, &fp, e->exe))
			e->h.flags |= FLAG_EXE_TRUNCATED;
		if (BPF_CORE_READ(fp.dentry, d_inode, i_nlink) == 0)
			e->h.flags |= FLAG_EXE_DELETED;
	} else {
		e->exe[0] = 0;
		e->h.flags |= FLAG_EXE_TRUNCATED;
	}
	pwd = BPF_CORE_READ(task, fs, pwd);
	if (path_of(s, &pwd, e->cwd))
		e->h.flags |= FLAG_CWD_TRUNCATED;

	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	len = end - start;
	if (len > ARGS_MAX) {
		len = ARGS_MAX;
		e->h.flags |= FLAG_ARGS_TRUNCATED;
	}
	if (bpf_probe_read_user(e->args, len, (void *)start) < 0)
		len = 0;
	e->h.args_len = len;
	if (len > ARGS_MAX)
		len = ARGS_MAX;
	emit_batched(e, sizeof(*e) - ARGS_MAX + len);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct header e = {};

	// A new thread shares its process's tgid: only new processes count.
	e.pid = BPF_CORE_READ(child, pid);
	if (e.pid != BPF_CORE_READ(child, tgid))
		return 0;
	e.kind = KIND_FORK;
	e.ppid = BPF_CORE_READ(child, real_parent, tgid);
	e.ts = bpf_ktime_get_ns();
	e.start_boottime = BPF_CORE_READ(child, start_boottime);
	emit_batched(&e, sizeof(e));
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct header e = {};

	// The process ends with its main thread, as the process connector
	// reports it.
	e.pid = BPF_CORE_READ(task, pid);
	if (e.pid != BPF_CORE_READ(task, tgid))
		return 0;
	e.kind = KIND_EXIT;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.ts = bpf_ktime_get_ns();
	e.exit_code = BPF_CORE_READ(task, exit_code);
	emit_batched(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
