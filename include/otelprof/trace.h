/* otelprof tracing API: tracer provider -> tracer -> span, as interfaces.
 *
 * Each object is a small public base struct whose first member points at a table of
 * operations; an implementation embeds the base as its first member. Any implementation
 * (the SDK in sdk.h, the profiling wrapper otelprof_tracer_provider_wrap, a no-op, a
 * user's own) can therefore be decorated or replaced, the way the OpenTelemetry API
 * separates API from SDK. Users call the otelprof_span_* / otelprof_tracer_* functions,
 * never the tables directly.
 *
 * Lifetimes: a provider owns its tracers (valid until the provider is freed); a span is
 * owned by the caller from start until otelprof_span_end, which releases it (the handle
 * must not be used afterwards). Strings and attribute arrays passed in are copied.
 *
 * Thread-safety: providers and tracers are thread-safe. A span may be used from any
 * thread, but not from two threads at once (like the OTel C++ SDK's Span). None of this
 * is async-signal-safe.
 */
#ifndef OTELPROF_TRACE_H
#define OTELPROF_TRACE_H

#include <otelprof/common.h>
#include <otelprof/propagation.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attribute values ---- */

typedef enum otelprof_value_type {
    OTELPROF_VALUE_STRING = 1,
    OTELPROF_VALUE_BOOL = 2,
    OTELPROF_VALUE_INT = 3,
    OTELPROF_VALUE_DOUBLE = 4,
    OTELPROF_VALUE_STRING_ARRAY = 5,
    OTELPROF_VALUE_BOOL_ARRAY = 6,
    OTELPROF_VALUE_INT_ARRAY = 7,
    OTELPROF_VALUE_DOUBLE_ARRAY = 8,
} otelprof_value_type;

typedef struct otelprof_value {
    otelprof_value_type type;
    union {
        struct {
            const char *ptr; /* UTF-8 */
            size_t len;      /* OTELPROF_NUL_TERMINATED: strlen(ptr) */
        } str;
        bool b;
        int64_t i;
        double d;
        struct {
            const void
                *items; /* const char *const[], const bool[], const int64_t[], const double[] */
            size_t n;
        } array;
    } u;
} otelprof_value;

typedef struct otelprof_kv {
    const char *key;
    otelprof_value value;
} otelprof_kv;

#ifndef OTELPROF_NUL_TERMINATED
#define OTELPROF_NUL_TERMINATED ((size_t)-1)
#endif

#define OTELPROF_KV_STR(k, v)                                                                      \
    ((otelprof_kv){(k), {.type = OTELPROF_VALUE_STRING, .u.str = {(v), OTELPROF_NUL_TERMINATED}}})
#define OTELPROF_KV_BOOL(k, v)   ((otelprof_kv){(k), {.type = OTELPROF_VALUE_BOOL, .u.b = (v)}})
#define OTELPROF_KV_INT(k, v)    ((otelprof_kv){(k), {.type = OTELPROF_VALUE_INT, .u.i = (v)}})
#define OTELPROF_KV_DOUBLE(k, v) ((otelprof_kv){(k), {.type = OTELPROF_VALUE_DOUBLE, .u.d = (v)}})

/* ---- spans ---- */

/* Values match OTLP's Span.SpanKind. */
typedef enum otelprof_span_kind {
    OTELPROF_SPAN_KIND_INTERNAL = 1,
    OTELPROF_SPAN_KIND_SERVER = 2,
    OTELPROF_SPAN_KIND_CLIENT = 3,
    OTELPROF_SPAN_KIND_PRODUCER = 4,
    OTELPROF_SPAN_KIND_CONSUMER = 5,
} otelprof_span_kind;

/* Values match OTLP's Status.StatusCode. */
typedef enum otelprof_span_status {
    OTELPROF_SPAN_STATUS_UNSET = 0,
    OTELPROF_SPAN_STATUS_OK = 1,
    OTELPROF_SPAN_STATUS_ERROR = 2,
} otelprof_span_status;

typedef struct otelprof_link {
    const otelprof_span_context *context;
    const otelprof_kv *attrs;
    size_t n_attrs;
} otelprof_link;

typedef struct otelprof_span_start_opts {
    size_t sz;
    otelprof_span_kind kind; /* 0: INTERNAL */
    /* Explicit parent. NULL: the calling thread's current span context (see
     * otelprof_scope_enter), unless `root` is set. */
    const otelprof_span_context *parent;
    bool root;              /* start a new trace even if a current context exists */
    uint64_t start_time_ns; /* CLOCK_REALTIME ns since the epoch; 0: now */
    const otelprof_kv *attrs;
    size_t n_attrs;
    const otelprof_link *links;
    size_t n_links;
} otelprof_span_start_opts;
#define OTELPROF_SPAN_START_OPTS(...)                                                              \
    ((otelprof_span_start_opts){.sz = sizeof(otelprof_span_start_opts), __VA_ARGS__})

typedef struct otelprof_span otelprof_span;
typedef struct otelprof_tracer otelprof_tracer;
typedef struct otelprof_tracer_provider otelprof_tracer_provider;

typedef struct otelprof_span_ops {
    size_t sz;
    const otelprof_span_context *(*context)(const otelprof_span *span);
    bool (*is_recording)(const otelprof_span *span);
    void (*set_attributes)(otelprof_span *span, const otelprof_kv *attrs, size_t n);
    void (*add_event)(otelprof_span *span, const char *name, uint64_t time_ns,
                      const otelprof_kv *attrs, size_t n);
    void (*add_link)(otelprof_span *span, const otelprof_link *link);
    void (*set_status)(otelprof_span *span, otelprof_span_status code, const char *description);
    void (*update_name)(otelprof_span *span, const char *name);
    /* Ends and releases the span. */
    void (*end)(otelprof_span *span, uint64_t end_time_ns);
} otelprof_span_ops;

struct otelprof_span {
    const otelprof_span_ops *ops;
};

typedef struct otelprof_tracer_ops {
    size_t sz;
    /* Never NULL for a valid tracer: a non-recording span when nothing is sampled or on
     * allocation failure (whose end() is a no-op). */
    otelprof_span *(*start_span)(otelprof_tracer *tracer, const char *name,
                                 const otelprof_span_start_opts *opts);
} otelprof_tracer_ops;

struct otelprof_tracer {
    const otelprof_tracer_ops *ops;
};

typedef struct otelprof_tracer_provider_ops {
    size_t sz;
    /* The tracer for an instrumentation scope; the same name/version/schema_url returns
     * the same tracer. Owned by the provider. */
    otelprof_tracer *(*get_tracer)(otelprof_tracer_provider *provider, const char *name,
                                   const char *version, const char *schema_url);
    otelprof_status (*force_flush)(otelprof_tracer_provider *provider, uint32_t timeout_ms);
    otelprof_status (*shutdown)(otelprof_tracer_provider *provider, uint32_t timeout_ms);
    /* Shuts down if needed and frees the provider and its tracers. */
    void (*free)(otelprof_tracer_provider *provider);
} otelprof_tracer_provider_ops;

struct otelprof_tracer_provider {
    const otelprof_tracer_provider_ops *ops;
};

/* ---- calls (thin dispatch through the tables; NULL-safe) ---- */

OTELPROF_API otelprof_tracer *otelprof_tracer_provider_get_tracer(otelprof_tracer_provider *p,
                                                                  const char *name,
                                                                  const char *version,
                                                                  const char *schema_url);
/* force_flush and shutdown: bounded by timeout_ms; OTELPROF_E_TIMEOUT (since 0.2) when they
 * gave up at it, or when the spans they cover did not get out in time (an exporter's own
 * timeout, e.g. OTLP's); what was started may continue in the background. Thread-safe. */
OTELPROF_API otelprof_status otelprof_tracer_provider_force_flush(otelprof_tracer_provider *p,
                                                                  uint32_t timeout_ms);
OTELPROF_API otelprof_status otelprof_tracer_provider_shutdown(otelprof_tracer_provider *p,
                                                               uint32_t timeout_ms);
/* NULL: no-op. */
OTELPROF_API void otelprof_tracer_provider_free(otelprof_tracer_provider *p);

/* opts may be NULL (INTERNAL span, parent = current context). Never returns NULL when
 * tracer is non-NULL. */
OTELPROF_API otelprof_span *otelprof_tracer_start_span(otelprof_tracer *tracer, const char *name,
                                                       const otelprof_span_start_opts *opts);

OTELPROF_API const otelprof_span_context *otelprof_span_get_context(const otelprof_span *span);
OTELPROF_API bool otelprof_span_is_recording(const otelprof_span *span);
OTELPROF_API void otelprof_span_set_attributes(otelprof_span *span, const otelprof_kv *attrs,
                                               size_t n);
OTELPROF_API void otelprof_span_add_event(otelprof_span *span, const char *name, uint64_t time_ns,
                                          const otelprof_kv *attrs, size_t n);
OTELPROF_API void otelprof_span_add_link(otelprof_span *span, const otelprof_link *link);
OTELPROF_API void otelprof_span_set_status(otelprof_span *span, otelprof_span_status code,
                                           const char *description);
OTELPROF_API void otelprof_span_update_name(otelprof_span *span, const char *name);
/* end_time_ns 0: now. Releases the span. */
OTELPROF_API void otelprof_span_end(otelprof_span *span, uint64_t end_time_ns);

/* ---- the calling thread's current span context ---- */

/* A scope makes a span context current on the calling thread until it is left; scopes
 * nest. Leave them in reverse order on the thread that entered them. No allocation after
 * the thread's first scope (a fixed per-thread stack of OTELPROF_SCOPE_MAX_DEPTH, mapped
 * once per thread). */
#define OTELPROF_SCOPE_MAX_DEPTH 64
typedef struct otelprof_scope {
    uint64_t priv[2];
} otelprof_scope;

OTELPROF_API otelprof_status otelprof_scope_enter(const otelprof_span_context *ctx,
                                                  otelprof_scope *scope);
OTELPROF_API otelprof_status otelprof_scope_leave(otelprof_scope *scope);
/* The calling thread's current span context, or NULL when none. Valid until the scope
 * that made it current is left. */
OTELPROF_API const otelprof_span_context *otelprof_current_span_context(void);

#ifdef __cplusplus
}
#endif
#endif
