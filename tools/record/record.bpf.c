// SPDX-License-Identifier: GPL-2.0
/* `otelprof record`: the perf_event sampler (libbpf CO-RE).
 *
 * On every cpu-clock sample of a target process: both stacks (frame-pointer unwinding by
 * bpf_get_stackid) and the thread's OTEP 4947 record, read the way the OTel eBPF profiler
 * reads it: thread pointer (task->thread.fsbase) -> TLS variable (static offset, or the
 * DTV for dynamic TLS) -> pointer -> 28-byte header -> attributes only if valid == 1 and
 * size > 0. Processes without the OTEP symbol are read through custom-labels v1 instead.
 * The interrupted thread cannot run while its CPU is in here, and only it writes its
 * record, so what we copy is a consistent snapshot.
 *
 * GPL: bpf_probe_read_user and the perf-event helpers are GPL-only.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "record_abi.h"

#define MAX_STACK_DEPTH 127
#define DTV_ENTRY       16
#define TCB_DTV_OFFSET  8
#define DTV_UNALLOCATED ((__u64)-1)
#define EFAULT_         14

char LICENSE[] SEC("license") = "GPL";

/* The PID namespace user space sees (st_dev as the kernel's dev_t, inode of
 * /proc/self/ns/pid): pids are reported in it, so the tool works inside a container too.
 * 0: use the initial namespace's ids. Set before load. */
const volatile __u64 pidns_dev = 0;
const volatile __u64 pidns_ino = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct rec_proc);
} procs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 16384);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, REC_STAT_NR);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
    __u64 *v = bpf_map_lookup_elem(&stats, &which);
    if (v)
        *v += 1;
}

/* Address of the TLS variable for the current thread; the state says why there is none. */
static __always_inline int tls_address(const struct rec_proc *p, __u64 tp, __u64 *addr)
{
    if (p->tls_kind == REC_TLS_STATIC) {
        *addr = tp + (__u64)p->tp_offset;
        return REC_CTX_OK;
    }
    if (p->tls_kind != REC_TLS_DTV)
        return REC_CTX_NONE;
    /* glibc x86-64: tcbhead_t.dtv at tp + 8; dtv[-1] holds the slot count, dtv[0] the
     * generation, dtv[i] = { void *val; bool is_static; } for module i. */
    __u64 dtv = 0, slots = 0, gen = 0, val = 0;
    if (bpf_probe_read_user(&dtv, sizeof dtv, (void *)(tp + TCB_DTV_OFFSET)) || dtv < DTV_ENTRY)
        return REC_CTX_FAULT;
    if (bpf_probe_read_user(&slots, sizeof slots, (void *)(dtv - DTV_ENTRY)))
        return REC_CTX_FAULT;
    if (p->module_id > slots)
        return REC_CTX_NO_TLS;
    if (p->gen_count) {
        if (bpf_probe_read_user(&gen, sizeof gen, (void *)dtv))
            return REC_CTX_FAULT;
        if (gen < p->gen_count)
            return REC_CTX_NO_TLS;
    }
    if (bpf_probe_read_user(&val, sizeof val, (void *)(dtv + p->module_id * DTV_ENTRY)))
        return REC_CTX_FAULT;
    if (val == 0 || val == DTV_UNALLOCATED)
        return REC_CTX_NO_TLS;
    *addr = val + p->dtv_offset;
    return REC_CTX_OK;
}

static __always_inline int read_otep(struct rec_event *e, __u64 rec)
{
    if (bpf_probe_read_user(e->hdr, REC_TC_HEADER, (void *)rec))
        return REC_CTX_FAULT;
    if (e->hdr[24] != 1)
        return REC_CTX_INVALID;
    __u32 size = (__u32)e->hdr[26] | ((__u32)e->hdr[27] << 8); /* little-endian u16 */
    if (size > REC_ATTRS_MAX)
        size = REC_ATTRS_MAX;
    if (size > 0) {
        /* re-bound in a form the verifier tracks through the helper's size argument */
        size &= 0x3ff;
        if (size > REC_ATTRS_MAX)
            return REC_CTX_FAULT;
        if (bpf_probe_read_user(e->u.attrs, size, (void *)(rec + REC_TC_HEADER)))
            return REC_CTX_FAULT;
    }
    e->attrs_len = (__u16)size;
    return REC_CTX_OK;
}

/* custom-labels v1: set = { label *storage; size_t count; size_t capacity; }, label =
 * { {len, buf} key; {len, buf} value; }. */
static __always_inline int read_cl(struct rec_event *e, __u64 set_addr)
{
    __u64 set[3];
    if (bpf_probe_read_user(set, sizeof set, (void *)set_addr))
        return REC_CTX_FAULT;
    e->cl_count = set[1];
    __u32 n = set[1] < REC_CL_LABELS ? (__u32)set[1] : REC_CL_LABELS;
    int state = REC_CTX_OK;
    __u32 got = 0;
    for (__u32 i = 0; i < REC_CL_LABELS; i++) {
        if (i >= n)
            break;
        __u64 lab[4];
        if (bpf_probe_read_user(lab, sizeof lab, (void *)(set[0] + (__u64)i * 32)))
            return REC_CTX_FAULT;
        if (lab[1] == 0) /* a NULL key buf: the label is being removed */
            continue;
        if (got >= REC_CL_LABELS)
            break;
        struct rec_cl_label *l = &e->u.labels[got];
        __u64 kl = lab[0], vl = lab[2];
        if (kl > REC_CL_KEY_MAX) {
            kl = REC_CL_KEY_MAX;
            state = REC_CTX_TRUNCATED;
        }
        if (vl > REC_CL_VALUE_MAX) {
            vl = REC_CL_VALUE_MAX;
            state = REC_CTX_TRUNCATED;
        }
        kl &= 0x3f;
        vl &= 0x7f;
        if (kl > REC_CL_KEY_MAX || vl > REC_CL_VALUE_MAX)
            return REC_CTX_FAULT;
        if (kl && bpf_probe_read_user(l->key, kl, (void *)lab[1]))
            return REC_CTX_FAULT;
        l->key_len = (__u8)kl;
        l->has_value = lab[3] != 0;
        l->value_len = 0;
        if (lab[3] && vl) {
            if (bpf_probe_read_user(l->value, vl, (void *)lab[3]))
                return REC_CTX_FAULT;
            l->value_len = (__u8)vl;
        }
        got++;
    }
    e->attrs_len = (__u16)got;
    return state;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    __u32 pid, tid;
    if (pidns_ino) {
        struct bpf_pidns_info ns = {};
        /* fails for tasks outside the namespace: not ours to sample */
        if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof ns))
            return 0;
        pid = ns.tgid;
        tid = ns.pid;
    } else {
        __u64 id = bpf_get_current_pid_tgid();
        pid = (__u32)(id >> 32);
        tid = (__u32)id;
    }
    if (pid == 0)
        return 0; /* idle */
    const struct rec_proc *p = bpf_map_lookup_elem(&procs, &pid);
    if (!p)
        return 0;
    count(REC_STAT_SAMPLES);

    struct rec_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
    if (!e) {
        count(REC_STAT_DROPPED);
        return 0;
    }
    e->boot_ns = bpf_ktime_get_boot_ns();
    e->pid = pid;
    e->tid = tid;
    e->cpu = bpf_get_smp_processor_id();
    e->format = (__u8)p->format;
    e->state = REC_CTX_NONE;
    e->attrs_len = 0;
    e->record_addr = 0;
    e->cl_count = 0;
    bpf_get_current_comm(e->comm, sizeof e->comm);

    e->ustack = (__s32)bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    if (e->ustack < 0)
        count(REC_STAT_USTACK_ERR);
    e->kstack = (__s32)bpf_get_stackid(ctx, &stacks, 0);
    if (e->kstack < 0 && e->kstack != -EFAULT_) /* -EFAULT: sampled in user mode */
        count(REC_STAT_KSTACK_ERR);

    if (p->format != REC_FMT_NONE) {
        struct task_struct *task = (struct task_struct *)bpf_get_current_task();
        __u64 tp = BPF_CORE_READ(task, thread.fsbase);
        __u64 var = 0, ptr = 0;
        int st = tp ? tls_address(p, tp, &var) : REC_CTX_FAULT;
        if (st == REC_CTX_OK) {
            if (bpf_probe_read_user(&ptr, sizeof ptr, (void *)var))
                st = REC_CTX_FAULT;
            else if (ptr == 0)
                st = REC_CTX_NONE;
            else if (p->format == REC_FMT_OTEP)
                st = read_otep(e, ptr);
            else
                st = read_cl(e, ptr);
        }
        e->record_addr = ptr;
        e->state = (__u8)st;
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}
