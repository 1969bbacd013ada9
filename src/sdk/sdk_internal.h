/* Private declarations shared by the tracing API (src/trace) and SDK (src/sdk). Not
 * installed. Internal names start with ots_ ("otelprof trace SDK"); the library is built
 * with hidden visibility, so none of them is exported from libotelprof-trace.so. */
#ifndef OTELPROF_SDK_INTERNAL_H
#define OTELPROF_SDK_INTERNAL_H

#include <otelprof/sdk.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An ops-table entry usable on obj: the table's sz covers it (implementations built
 * against an older header have shorter tables) and it is set. */
#define OTS_HAS_OP(obj, type, member)                                                              \
    ((obj) && (obj)->ops &&                                                                        \
     (obj)->ops->sz >= offsetof(type, member) + sizeof((obj)->ops->member) && (obj)->ops->member)

/* ---- log.c: the core's log callback ---- */
void ots_log(otelprof_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- util.c ---- */
uint64_t ots_now_ns(void);  /* CLOCK_REALTIME */
uint64_t ots_mono_ns(void); /* CLOCK_MONOTONIC */
/* Largest n <= max such that s[0..n) does not end inside a UTF-8 sequence. Bytes that are
 * not part of a well-formed sequence count as one character each. */
size_t ots_utf8_cut(const char *s, size_t len, size_t max);
bool ots_utf8_valid(const char *s, size_t len);
/* Length of the well-formed UTF-8 character at s[0..n), or 0 when there is none
 * (RFC 3629: no overlongs, surrogates or code points above U+10FFFF). */
size_t ots_utf8_seq(const char *s, size_t n);
char *ots_strdup(const char *s);                   /* NULL -> NULL */
size_t ots_value_str_len(const otelprof_value *v); /* resolves OTELPROF_NUL_TERMINATED */

/* An attribute's deep copy lives in one block that starts with the key, so freeing the key
 * pointer frees the copy. max_len truncates string values (UINT32_MAX: no limit). */
bool ots_kv_valid(const otelprof_kv *kv);
size_t ots_kv_copy_size(const otelprof_kv *src, uint32_t max_len);
/* Writes the copy into mem (ots_kv_copy_size bytes, 8-aligned) and fills *dst. */
void ots_kv_copy_into(void *mem, const otelprof_kv *src, uint32_t max_len, otelprof_kv *dst);
/* The same in two steps that measure the key and a string value once: ots_kv_measure
 * returns the copy's size and fills *l, which ots_kv_write then uses. */
typedef struct ots_kv_lens {
    size_t key; /* strlen(key) */
    size_t str; /* a string value's bytes to copy (after the length limit) */
} ots_kv_lens;
size_t ots_kv_measure(const otelprof_kv *src, uint32_t max_len, ots_kv_lens *l);
void ots_kv_write(void *mem, const otelprof_kv *src, uint32_t max_len, const ots_kv_lens *l,
                  otelprof_kv *dst);
/* malloc'd copy; false on allocation failure. Free with free((void *)dst->key). */
bool ots_kv_copy(const otelprof_kv *src, uint32_t max_len, otelprof_kv *dst);

/* Environment variables (OTel configuration rules: empty = unset, enums
 * case-insensitive; a bad value is logged and the caller keeps its default). */
const char *ots_env(const char *name); /* NULL when unset or empty (after trimming) */
/* Non-negative integer <= max. false (logged) when malformed; *out unchanged. */
bool ots_env_u32(const char *name, uint32_t max, uint32_t *out);
/* true/false (case-insensitive); anything else logs a warning and gives false. */
bool ots_env_bool(const char *name);
/* Case-insensitive comparison of s[0..n) with a NUL-terminated word. */
bool ots_word_eq(const char *s, size_t n, const char *word);

/* A bump allocator for data that lives as long as one span (events, links). */
typedef struct ots_arena_block ots_arena_block;
typedef struct ots_arena {
    ots_arena_block *head;
} ots_arena;
void *ots_arena_alloc(ots_arena *a, size_t n);
void ots_arena_free(ots_arena *a);

/* Deep copy of finished span data in one malloc block (free() it). The resource is
 * referenced, not copied: it lives as long as the provider. NULL on allocation failure. */
otelprof_span_data *ots_span_data_clone(const otelprof_span_data *src);
/* The same into caller memory: ots_span_data_clone_size(src) bytes, 8-aligned. */
size_t ots_span_data_clone_size(const otelprof_span_data *src);
otelprof_span_data *ots_span_data_clone_into(const otelprof_span_data *src, void *mem);

/* ---- ids.c ---- */
void ots_new_trace_id(uint8_t out[16]);
void ots_new_span_id(uint8_t out[8]);

/* ---- trace/api.c and sdk/noop.c: spans that record nothing ---- */
/* A span with an invalid context whose operations do nothing (allocation failures, NULL
 * results). Static: ending it is a no-op. */
extern otelprof_span ots_invalid_span;
/* A non-recording span carrying a copy of ctx; ots_invalid_span when ctx is NULL or
 * invalid, or when allocation fails. */
otelprof_span *ots_nonrecording_span_new(const otelprof_span_context *ctx);
/* The no-op provider's tracer (static): what an SDK provider hands out after shutdown. */
otelprof_tracer *ots_noop_tracer(void);
/* Copy the caller's start options into a zeroed struct, reading only what its sz covers. */
void ots_start_opts_read(const otelprof_span_start_opts *in, otelprof_span_start_opts *out);
/* The parent a span started with these options gets: explicit, else current, else NULL.
 * NULL also when the candidate is an invalid context. */
const otelprof_span_context *ots_resolve_parent(const otelprof_span_start_opts *o);

/* ---- sampler.c ---- */
/* The `ot` tracestate entry's sub-key value (e.g. "rv"), or NULL; *len gets its length. */
const char *ots_ot_subkey(const otelprof_tracestate *ts, const char *key, size_t *len);

/* ---- processor_batch.c: defaults resolved from the environment ---- */
void ots_batch_opts_resolve(const otelprof_batch_opts *in, otelprof_batch_opts *out);

/* ---- options structs: libbpf OPTS rules ---- */
/* OK when the caller's struct (sz bytes) is usable with ours (ours_sz bytes): sz at least
 * sizeof(size_t), and any bytes beyond ours are zero. */
otelprof_status ots_opts_check(const void *opts, size_t sz, size_t ours_sz);

#endif
