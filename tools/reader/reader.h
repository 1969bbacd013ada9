/* otelprof_reader: an out-of-process reader of the contexts profilers look for.
 *
 * Written from the readers' side of the ABIs (OTEP 4947 thread context, OTEP 4719
 * process context, polarsignals custom-labels v1), never from the writer's headers: a
 * writer mistake must show up here, not be mirrored. Shared by `otelprof inspect` and a
 * later `otelprof record`.
 *
 * Everything read from another process is untrusted: every length is bounded and every
 * read can fail because the target changes underneath (threads exit, libraries unload).
 */
#ifndef OTELPROF_READER_H
#define OTELPROF_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- the ABIs ---- */

/* OTEP 4947 */
#define RD_TC_SYMBOL     "otel_thread_ctx_v1"
#define RD_TC_HEADER     28
#define RD_TC_RECORD_MAX 640 /* the eBPF profiler's copy limit */
#define RD_TC_ATTRS_MAX  (RD_TC_RECORD_MAX - RD_TC_HEADER)
#define RD_TC_OFF_SPAN   16
#define RD_TC_OFF_VALID  24
#define RD_TC_OFF_FLAGS  25
#define RD_TC_OFF_ASIZE  26

/* custom-labels v1 (LP64) */
#define RD_CL_SET_SYMBOL   "custom_labels_current_set"
#define RD_CL_ABI_SYMBOL   "custom_labels_abi_version"
#define RD_CL_SET_SIZE     24 /* {label *storage; size_t count; size_t capacity} */
#define RD_CL_LABEL_SIZE   32 /* {{len, buf}, {len, buf}} */
#define RD_CL_MAX_SHOWN    64 /* this tool's cap on count */
#define RD_CL_PARCA_LABELS 10
#define RD_CL_PARCA_KEY    25
#define RD_CL_PARCA_VALUE  53
#define RD_CL_STR_MAX      4096 /* longest key/value this tool copies */

/* OTEP 4719 */
#define RD_PC_HEADER      32
#define RD_PC_VERSION     2
#define RD_PC_PAYLOAD_MAX 65536
#define RD_PC_KEYS_MAX    256

/* ------------------------------------------------------------------ errors ---- */

/* Reader functions return 0 or a negative errno; text goes to an error buffer. */
#define RD_ERRLEN 512

/* ---------------------------------------------------------------- procfs.c ---- */

struct rd_mapping {
    uint64_t start, end, offset, inode;
    unsigned dev_major, dev_minor;
    char perms[5];
    char *path; /* "" for anonymous mappings; may end in " (deleted)" */
};

struct rd_maps {
    struct rd_mapping *v;
    size_t n;
};

/* 0, -ENOENT/-ESRCH (no process), -EACCES/-EPERM, or another -errno. */
int rd_maps_read(pid_t pid, struct rd_maps *out);
void rd_maps_free(struct rd_maps *m);

/* Copy len bytes at addr from the process. 0 only when all of them were read; -EFAULT
 * for an unmapped range, -ESRCH when the process is gone, -EPERM when not allowed. */
int rd_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* The thread ids in /proc/PID/task, sorted. */
int rd_tasks(pid_t pid, pid_t **tids, size_t *n);
/* /proc/PID/task/TID/comm without the newline; "" if the thread is gone. */
void rd_thread_name(pid_t pid, pid_t tid, char *buf, size_t len);
/* True when /proc/PID exists. */
bool rd_pid_exists(pid_t pid);
/* The TracerPid of a thread (0 when none, -1 unknown). */
long rd_tracer_pid(pid_t pid, pid_t tid);
/* True when the thread is gone or exiting (no /proc entry, or state Z or X): ptrace then
 * fails with EPERM or ESRCH, and the thread is skipped, not reported as an error. */
bool rd_thread_gone(pid_t pid, pid_t tid);

/* ------------------------------------------------------------------- elf.c ---- */

struct rd_elf {
    const unsigned char *data;
    size_t size;
    uint16_t type; /* ET_EXEC / ET_DYN */
    /* .dynsym and its strings, from the section headers or the dynamic segment */
    uint64_t dynsym_off, dynsym_count, dynstr_off, dynstr_size;
    /* relocation tables from the dynamic segment (DT_RELA, DT_JMPREL), file offsets */
    uint64_t rela_off, rela_size, jmprel_off, jmprel_size;
    bool has_tls;
    uint64_t tls_memsz, tls_align;
    uint64_t phoff;
    uint16_t phnum;
};

struct rd_sym {
    uint32_t index;
    uint64_t value, size;
    unsigned type, bind, visibility;
    uint16_t shndx;
};

/* A TLS relocation against a symbol. */
struct rd_tls_reloc {
    unsigned type;   /* R_X86_64_TLSDESC, R_X86_64_TPOFF64, R_X86_64_DTPMOD64 */
    uint64_t offset; /* r_offset: the GOT slot's link-time address */
    int64_t addend;
    bool by_symbol;        /* false: a symbol-less relocation matched by its addend */
    int64_t dtpoff_addend; /* DTPMOD64: addend of the DTPOFF64 in the next GOT word */
};

/* Map and check an ELF64 little-endian x86-64 file. 0 or -errno (-ENOEXEC: not an ELF
 * this tool reads). */
int rd_elf_open(struct rd_elf *e, int fd, char *err, size_t errlen);
void rd_elf_close(struct rd_elf *e);
/* Look a defined-or-undefined symbol up in .dynsym only. 0, or -ENOENT. */
int rd_elf_dynsym(const struct rd_elf *e, const char *name, struct rd_sym *out);
/* The module's dynamic TLS relocation for sym (TLSDESC preferred, then TPOFF64, then
 * DTPMOD64); 0 or -ENOENT. */
int rd_elf_tls_reloc(const struct rd_elf *e, const struct rd_sym *sym, struct rd_tls_reloc *out);
/* File offset of a link-time address inside a PT_LOAD's file bytes; -1 when none. */
int64_t rd_elf_vaddr_to_off(const struct rd_elf *e, uint64_t vaddr, uint64_t len);
/* Load bias of a mapping of this file starting at map_start with file offset map_off;
 * false when no PT_LOAD starts in that page. */
bool rd_elf_bias(const struct rd_elf *e, uint64_t map_start, uint64_t map_off, uint64_t *bias);

/* -------------------------------------------------------------- modules.c ---- */

enum rd_tls_kind {
    RD_TLS_UNKNOWN = 0, /* no way to locate the variable */
    RD_TLS_STATIC,      /* address = tp + tp_offset + st_value */
    RD_TLS_DTV,         /* address = dtv[module_id].val + offset */
};

/* Where one TLS symbol of one module lives, valid for every thread of the process. */
struct rd_tls_loc {
    enum rd_tls_kind kind;
    const char *how;      /* "local-exec/initial-exec (main executable)", "TLSDESC", ... */
    int64_t block_offset; /* STATIC: the module's TLS block start relative to tp */
    int64_t var_offset;   /* STATIC: the variable relative to tp */
    uint64_t module_id;   /* DTV */
    uint64_t dtv_offset;  /* DTV: offset of the variable in the module's block */
    uint64_t gen_count;   /* DTV via TLSDESC: generation the descriptor needs (0: none) */
    char why[160];        /* RD_TLS_UNKNOWN: the reason */
};

struct rd_module {
    char *path;
    uint64_t base, bias;
    bool is_main;
    bool has_tc, has_cl, has_abi;
    struct rd_sym tc_sym, cl_sym, abi_sym;
    uint32_t abi_value; /* read from process memory */
    int abi_read_err;   /* 0 when abi_value was read */
    struct rd_tls_loc tc, cl;
    /* Parca's view of custom_labels_current_set in this module */
    bool cl_parca_ok;
    char cl_parca_why[200];
    char *notes; /* symbols found but rejected, "" if none */
};

struct rd_modules {
    struct rd_module *v;
    size_t n;
    int tc_index, cl_index; /* the module threads are read from, -1 if none */
};

/* Walk the maps and find the modules exporting the symbols. 0 or -errno; per-module
 * problems are recorded in the module, not returned. */
int rd_modules_find(pid_t pid, const struct rd_maps *maps, struct rd_modules *out, char *err,
                    size_t errlen);
void rd_modules_free(struct rd_modules *m);

/* ------------------------------------------------------------------ tls.c ---- */

/* Stop one thread (PTRACE_SEIZE + PTRACE_INTERRUPT + waitpid). 0, -ESRCH when it is gone
 * (skip it quietly), -EPERM, or another -errno. *pending_sig: a signal that the stop
 * intercepted and that rd_thread_release must hand back. */
int rd_thread_stop(pid_t tid, int *pending_sig);
/* Let it go again (PTRACE_DETACH, re-injecting pending_sig). */
void rd_thread_release(pid_t tid, int pending_sig);
/* The stopped thread's thread pointer (x86-64 fs_base). -ENOTSUP on other machines. */
int rd_thread_pointer(pid_t tid, uint64_t *tp);

/* Address of the variable for this thread. 0 and *addr; 1: the thread has no storage for
 * the module yet (dynamic TLS never touched): no context, not an error; or -errno. */
int rd_tls_address(pid_t pid, uint64_t tp, const struct rd_tls_loc *loc, uint64_t *addr);

/* --------------------------------------------------------------- record.c ---- */

struct rd_attr {
    unsigned key;
    uint8_t len;
    const uint8_t *value; /* points into rd_thread_ctx.attrs */
};

enum rd_state { RD_ST_ABSENT = 0, RD_ST_NONE, RD_ST_ATTACHED, RD_ST_INVALID, RD_ST_UNREADABLE };

struct rd_thread_ctx {
    enum rd_state state;
    uint64_t record_addr;
    uint8_t trace_id[16], span_id[8];
    uint8_t valid, trace_flags;
    uint16_t attrs_size; /* as published */
    uint16_t attrs_read; /* after the 612-byte clamp */
    bool truncated;      /* an entry ran past the end */
    uint8_t attrs[RD_TC_ATTRS_MAX];
    /* entries after "last wins": at most one per key index */
    struct rd_attr entries[256];
    size_t n_entries;
    char why[160];
};

struct rd_label {
    uint8_t *key, *value; /* NUL-terminated copies; value NULL when absent */
    size_t key_len, value_len;
};

struct rd_custom_labels {
    enum rd_state state;
    uint64_t set_addr;
    uint64_t count, capacity;
    struct rd_label labels[RD_CL_MAX_SHOWN];
    size_t n_labels;
    bool via_dtv_only; /* read through the DTV: Parca cannot */
    char why[200];
};

/* Decode a record header + attrs already copied out (no process access). */
void rd_tc_decode(struct rd_thread_ctx *tc);
/* Read the record that the pointer at slot_addr points to. */
void rd_tc_read(pid_t pid, uint64_t slot_addr, struct rd_thread_ctx *tc);
/* Read a custom-labels set from the pointer at slot_addr. */
void rd_cl_read(pid_t pid, uint64_t slot_addr, struct rd_custom_labels *cl);
void rd_cl_free(struct rd_custom_labels *cl);

/* -------------------------------------------------------------- procctx.c ---- */

enum rd_anykind {
    RD_ANY_NONE = 0,
    RD_ANY_STRING,
    RD_ANY_BOOL,
    RD_ANY_INT,
    RD_ANY_DOUBLE,
    RD_ANY_ARRAY,
    RD_ANY_OTHER
};

/* A decoded AnyValue; strings and arrays point into the payload copy. */
struct rd_any {
    enum rd_anykind kind;
    const uint8_t *s; /* STRING; ARRAY: the raw ArrayValue message */
    size_t len;
    int64_t i;
    double d;
    bool b;
};

struct rd_kv {
    const uint8_t *key;
    size_t key_len;
    struct rd_any value;
};

struct rd_procctx {
    bool found;
    char mapping[128];
    uint64_t mapping_addr;
    uint32_t version, payload_size;
    uint64_t published_at, payload_addr;
    bool decoded;
    char why[200];    /* found but not decoded: the reason */
    uint8_t *payload; /* owned copy */
    struct rd_kv *resource;
    size_t n_resource;
    struct rd_kv *attrs; /* ProcessContext.attributes */
    size_t n_attrs;
    bool has_schema;
    const uint8_t *schema;
    size_t schema_len;
    bool has_key_map;
    const uint8_t *keys[RD_PC_KEYS_MAX];
    size_t key_len[RD_PC_KEYS_MAX];
    size_t n_keys;
};

/* Protobuf decoding of a ProcessContext payload (bounds-checked, for untrusted bytes).
 * Takes ownership of payload (malloc'd). 0 or -EBADMSG. */
int rd_procctx_decode(struct rd_procctx *pc, uint8_t *payload, size_t len);
/* Find the OTEL_CTX mapping, read it consistently and decode. 0 (pc->found tells
 * whether there was one) or -errno for a failure reading the process. */
int rd_procctx_read(pid_t pid, const struct rd_maps *maps, struct rd_procctx *pc);
void rd_procctx_free(struct rd_procctx *pc);
/* Iterate the AnyValues of an ARRAY: *pos starts at 0; false at the end or on bad input. */
bool rd_any_array_next(const struct rd_any *arr, size_t *pos, struct rd_any *item);

/* ----------------------------------------------------------------- text.c ---- */

bool rd_utf8_valid(const uint8_t *s, size_t n);
void rd_hex(char *out, const uint8_t *in, size_t n); /* writes 2n chars + NUL */

/* A growing output buffer with a JSON writer (strings escaped, invalid UTF-8 bytes as
 * \u00XX so the output is always valid JSON). */
struct rd_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void rd_buf_put(struct rd_buf *b, const void *s, size_t n);
void rd_buf_puts(struct rd_buf *b, const char *s);
void rd_buf_printf(struct rd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rd_buf_json_str(struct rd_buf *b, const uint8_t *s, size_t n);
/* Printable text for a table: control and invalid bytes as \xNN. */
void rd_buf_text_str(struct rd_buf *b, const uint8_t *s, size_t n);
void rd_buf_free(struct rd_buf *b);

#endif
