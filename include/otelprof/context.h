/* otelprof core: publish the calling thread's trace context where profilers read it.
 *
 * One attach publishes, in the formats that are switched on:
 *   - OTel Thread Context (OTEP 4947): the TLS pointer `otel_thread_ctx_v1` to a packed
 *     record {trace-id[16], span-id[8], valid, trace-flags, attrs-size, attrs};
 *   - OTel Process Context (OTEP 4719): the `OTEL_CTX` mapping, with the resource and the
 *     attribute key map (published by otelprof_init and on every key registration);
 *   - polarsignals custom-labels v1 (read by Parca Agent): the TLS pointer
 *     `custom_labels_current_set` with labels otel_traceid / otel_spanid + attributes.
 * See docs/architecture.md for the byte layouts and docs/threads.md for the threading
 * model.
 *
 * Nesting works like Go's pprof.Do: attach returns a token; detaching it restores exactly
 * the context that was current before the attach.
 *
 * Linking: executables that link libotelprof statically must export the TLS symbols into
 * .dynsym. pkg-config (`pkg-config --libs otelprof`) and the CMake targets
 * (otelprof::otelprof, otelprof::otelprof_static) carry the needed
 * -Wl,--export-dynamic-symbol flags.
 */
#ifndef OTELPROF_CONTEXT_H
#define OTELPROF_CONTEXT_H

#include <otelprof/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Formats, a bit mask. */
#define OTELPROF_FORMAT_THREAD_CTX    0x1u /* OTEP 4947 otel_thread_ctx_v1 */
#define OTELPROF_FORMAT_PROCESS_CTX   0x2u /* OTEP 4719 OTEL_CTX mapping */
#define OTELPROF_FORMAT_CUSTOM_LABELS 0x4u /* polarsignals custom-labels v1 */
#define OTELPROF_FORMAT_ALL           0x7u
/* In otelprof_init_opts.formats: "no format at all" (0 means "the default"). */
#define OTELPROF_FORMAT_NONE 0x80000000u

/* Limits of the OTEP 4947 record. */
#define OTELPROF_RECORD_MAX    640 /* whole record, the eBPF profiler's limit */
#define OTELPROF_RECORD_HEADER 28
#define OTELPROF_ATTRS_MAX     (OTELPROF_RECORD_MAX - OTELPROF_RECORD_HEADER) /* 612 */
#define OTELPROF_VALUE_MAX     255 /* one entry's length is a u8 */
#define OTELPROF_MAX_KEYS      256
#define OTELPROF_MAX_DEPTH     128 /* nested attaches per thread */

/* W3C trace-flags bits. */
#define OTELPROF_FLAG_SAMPLED         0x01u
#define OTELPROF_FLAG_RANDOM_TRACE_ID 0x02u

/* The ids published for a thread; W3C byte order (trace_id[0] is the first hex pair). */
typedef struct otelprof_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
} otelprof_context;

/* One attribute of a context: a registered key index and a UTF-8 value of at most
 * OTELPROF_VALUE_MAX bytes. value_len == OTELPROF_NUL_TERMINATED means strlen(value). */
#define OTELPROF_NUL_TERMINATED ((size_t)-1)
typedef struct otelprof_attr {
    uint32_t key;
    const char *value;
    size_t value_len;
} otelprof_attr;

/* Restores the previous context on detach. Treat as opaque; a zero-initialised token
 * (OTELPROF_TOKEN_INIT) is the "null token": detaching it does nothing. */
typedef struct otelprof_token {
    uint64_t priv[2];
} otelprof_token;
#define OTELPROF_TOKEN_INIT                                                                        \
    {                                                                                              \
        {                                                                                          \
            0, 0                                                                                   \
        }                                                                                          \
    }

/* Options for otelprof_init. Fill with OTELPROF_INIT_OPTS(...) so that `sz` is set; fields
 * the caller's struct does not cover take their defaults (libbpf OPTS convention). */
typedef struct otelprof_init_opts {
    size_t sz;
    /* OTELPROF_FORMAT_* mask; 0: the environment variable OTELPROF_FORMATS or, without
     * it, all formats. */
    unsigned formats;
    /* Custom-labels key names for the ids; NULL: OTELPROF_CUSTOM_LABELS_TRACE_KEY /
     * _SPAN_KEY or "otel_traceid" / "otel_spanid". At most 25 bytes (Parca's limit). */
    const char *trace_id_label;
    const char *span_id_label;
    /* service.name; NULL: OTEL_SERVICE_NAME, then service.name in
     * OTEL_RESOURCE_ATTRIBUTES, then "unknown_service:<program name>". */
    const char *service_name;
} otelprof_init_opts;
#define OTELPROF_INIT_OPTS(...)                                                                    \
    ((otelprof_init_opts){.sz = sizeof(otelprof_init_opts), __VA_ARGS__})

/* Initialise the process-wide state: reads the environment (OTELPROF_FORMATS,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTELPROF_CUSTOM_LABELS_*_KEY, OTELPROF_LOG),
 * and publishes the process context. opts may be NULL. Calling it again after
 * otelprof_shutdown re-initialises; calling it twice without shutdown returns OK and
 * keeps the first configuration. If never called, the first otelprof_key_register or
 * otelprof_attach calls it with NULL options.
 * Thread-safe (internally locked). Not async-signal-safe. Fork: the child inherits the
 * configuration, and the process context is republished in the child automatically
 * (pthread_atfork). Since 0.1. */
OTELPROF_API otelprof_status otelprof_init(const otelprof_init_opts *opts);

/* Stop publishing: unmaps the process context and makes later attaches publish nothing
 * (they still return usable tokens). Threads' current records stay readable until each
 * thread's next attach/detach. Thread-safe. Not async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_shutdown(void);

/* The OTELPROF_FORMAT_* mask in effect (0 before init and after shutdown).
 * Thread-safe, async-signal-safe. Since 0.1. */
OTELPROF_API unsigned otelprof_formats(void);

/* Set (or replace) a string resource attribute of the process context, e.g.
 * "service.version". Copied. Republishes the process context when initialised.
 * Thread-safe. Not async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_resource_set(const char *key, const char *value);

/* Register an attribute key (e.g. "http.route") and get its index, stable for the life of
 * the process; registering the same name again returns the same index. Appends to the
 * process context's threadlocal.attribute_key_map and republishes it. At most 256 keys
 * (OTELPROF_E_KEY_LIMIT). name: non-empty UTF-8, at most 255 bytes, copied.
 * Thread-safe. Not async-signal-safe (call at start-up). Since 0.1. */
OTELPROF_API otelprof_status otelprof_key_register(const char *name, uint32_t *index_out);

/* The name of a registered key index, or NULL. The string lives as long as the process.
 * Thread-safe, async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_key_name(uint32_t index);

/* Prepare the calling thread's state (one mmap). attach does this itself on a thread's
 * first use; call it first on threads whose first attach happens in a signal handler.
 * Thread-safe. Async-signal-safe on Linux (mmap + a pthread key slot), though not in the
 * POSIX list. Since 0.1. */
OTELPROF_API otelprof_status otelprof_thread_init(void);

/* Publish ctx and attrs for the calling thread. On success *token restores the previous
 * context on detach. Both ids must be non-zero (OTELPROF_E_INVALID_ID); each attribute key
 * registered (OTELPROF_E_UNKNOWN_KEY) and at most once (OTELPROF_E_DUP_KEY); values valid
 * UTF-8 (OTELPROF_E_UTF8) of at most 255 bytes, and all entries together at most 612 bytes
 * (OTELPROF_E_TOO_LARGE): nothing is truncated. OTELPROF_E_DEPTH when the thread already
 * holds OTELPROF_MAX_DEPTH nested contexts or their 64 KiB arena is full (63 frames of the
 * largest size always fit). On any error nothing is
 * published, the thread keeps its current context and *token is the null token. Thread-safe (per
 * thread). After the thread's first use: no allocation, no lock, no syscall, async-signal-safe (a
 * handler that attaches must detach before it returns). Fork: the child's copy of this thread keeps
 * its context. Since 0.1. */
OTELPROF_API otelprof_status otelprof_attach(const otelprof_context *ctx,
                                             const otelprof_attr *attrs, size_t n_attrs,
                                             otelprof_token *token);

/* Publish "no context" for the calling thread, restorable like an attach.
 * Same guarantees as otelprof_attach. Since 0.1. */
OTELPROF_API otelprof_status otelprof_clear(otelprof_token *token);

/* Restore the context that was current before the attach/clear that returned *token, and
 * reset *token to the null token. Detaching an outer token while inner ones are still
 * attached unwinds them too (they then return OTELPROF_E_STALE_TOKEN). A token from another
 * thread returns OTELPROF_E_WRONG_THREAD and changes nothing. The null token: OK, no-op.
 * No allocation, no lock, no syscall; async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_detach(otelprof_token *token);

/* Read back the calling thread's current context. attrs (may be NULL when cap is 0)
 * receives up to cap attributes whose value pointers stay valid until this thread's next
 * attach/detach; *n_attrs (may be NULL) the number the context holds. Returns
 * OTELPROF_E_NO_CONTEXT when nothing is attached (or after otelprof_clear).
 * Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_current(otelprof_context *ctx, otelprof_attr *attrs,
                                              size_t cap, size_t *n_attrs);

#ifdef __cplusplus
}
#endif
#endif
