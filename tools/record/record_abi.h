/* What record.bpf.c and the user-space half of `otelprof record` exchange: the per-process
 * TLS description user space hands in, and the sample the BPF program hands out.
 *
 * Included by the BPF program (after vmlinux.h) and by user space (after <linux/types.h>),
 * so it uses only the kernel's __u8..__u64 / __s32 / __s64 types.
 */
#ifndef OTELPROF_RECORD_ABI_H
#define OTELPROF_RECORD_ABI_H

#define REC_TC_HEADER 28
#define REC_ATTRS_MAX 612 /* 640-byte record limit of the eBPF profiler, minus the header */
#define REC_COMM      16

/* custom-labels v1: how much of a set the probe copies. Parca stops at 10 labels, keys of 25
 * and values of 53 bytes; a little more room lets the trace id value (32 hex chars) and
 * longer keys through uncut. */
#define REC_CL_LABELS    10
#define REC_CL_KEY_MAX   32
#define REC_CL_VALUE_MAX 64

/* Which TLS variable a process is read through. */
enum rec_format {
    REC_FMT_NONE = 0, /* sample the stacks only */
    REC_FMT_OTEP = 1, /* otel_thread_ctx_v1 */
    REC_FMT_CL = 2,   /* custom_labels_current_set (no OTEP symbol in the process) */
};

/* How the variable's address is derived from the thread pointer. */
enum rec_tls_kind {
    REC_TLS_NONE = 0,
    REC_TLS_STATIC = 1, /* tp + tp_offset */
    REC_TLS_DTV = 2,    /* dtv[module_id].val + dtv_offset, dtv = *(tp + 8) */
};

/* Value of the `procs` map, keyed by the process id (tgid). */
struct rec_proc {
    __u32 format;   /* enum rec_format */
    __u32 tls_kind; /* enum rec_tls_kind */
    __s64 tp_offset;
    __u64 module_id;
    __u64 dtv_offset;
    __u64 gen_count; /* DTV reached through TLSDESC: generation the slot needs; 0 = any */
};

/* What the probe found at the sample. */
enum rec_ctx_state {
    REC_CTX_NONE = 0,     /* no variable, or the pointer is NULL: no context */
    REC_CTX_OK = 1,       /* header (+ attrs / labels) copied */
    REC_CTX_INVALID = 2,  /* OTEP record with valid != 1 */
    REC_CTX_NO_TLS = 3,   /* the thread has no storage for the module yet (DTV) */
    REC_CTX_FAULT = 4,    /* a read failed (page not present, bad pointer) */
    REC_CTX_TRUNCATED = 5 /* custom labels: a string longer than the probe copies */
};

struct rec_cl_label {
    __u8 key_len, value_len; /* bytes copied */
    __u8 has_value, pad;
    char key[REC_CL_KEY_MAX];
    char value[REC_CL_VALUE_MAX];
};

struct rec_event {
    __u64 boot_ns; /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME of the sample */
    __u32 pid, tid;
    __s32 ustack, kstack; /* stack map ids, negative errno when none */
    __u32 cpu;
    __u8 format, state;
    __u16 attrs_len; /* OTEP: attribute bytes copied; custom labels: labels copied */
    __u64 record_addr;
    __u64 cl_count; /* custom labels: the set's count as published */
    char comm[REC_COMM];
    __u8 hdr[REC_TC_HEADER]; /* OTEP header, copied as is */
    __u8 pad[4];
    union {
        __u8 attrs[REC_ATTRS_MAX];
        struct rec_cl_label labels[REC_CL_LABELS];
    } u;
};

/* Per-CPU counters (the `stats` array). */
enum rec_stat {
    REC_STAT_SAMPLES = 0, /* samples of target processes */
    REC_STAT_DROPPED,     /* ring buffer full */
    REC_STAT_USTACK_ERR,  /* bpf_get_stackid (user) failed */
    REC_STAT_KSTACK_ERR,  /* bpf_get_stackid (kernel) failed, other than "no kernel stack" */
    REC_STAT_NR
};

#endif
