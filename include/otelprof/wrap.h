/* The profiling tracer wrapper: the "drop-in" way in.
 *
 * otelprof_tracer_provider_wrap(inner, opts) returns a provider that behaves exactly as
 * `inner` and, for each span started through it, publishes the span's context on the
 * calling thread (otelprof_attach, see context.h) and restores the previous context when
 * the span ends: every CPU sample taken while the span is open carries its trace and span
 * ids, whatever the profiler (OTEP 4947 or custom-labels readers).
 *
 * Ending a span on another thread than the one that started it: nothing changes on the
 * ending thread (its own context stays as it was). The starting thread stops publishing
 * the span at its next operation through the wrapper (a span start or end there), or when
 * an enclosing span ends on it, whichever comes first; until then it keeps showing the
 * span, never a corrupted or foreign context. otelprof_wrap_thread_sync() lets a thread
 * drop such spans at once (e.g. at the end of a thread-pool task).
 */
#ifndef OTELPROF_WRAP_H
#define OTELPROF_WRAP_H

#include <otelprof/context.h>
#include <otelprof/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct otelprof_wrap_opts {
    size_t sz;
    /* Publish only local root spans (no parent, or a remote parent): one context per
     * request, like the HTTP middleware. Default: every span. */
    bool local_roots_only;
    /* Do not publish unsampled spans. Default: publish them (the trace flags carry the
     * sampled bit, so profiles can still be joined to sampled traces only). */
    bool skip_unsampled;
    /* Span attributes to publish as thread-context attributes, e.g. "http.route". The
     * value at span start is published (the last one when a key is given twice); a later
     * otelprof_span_set_attributes of one of these keys republishes, keeping the other
     * values, while the span is the thread's innermost and its context the current one
     * (not while code inside the span has attached a context of its own). Strings are
     * published as is; numbers and booleans as text. Values longer than 255 bytes are
     * left out; a value that is not UTF-8 leaves the span's ids published alone. */
    const char *const *attribute_keys;
    size_t n_attribute_keys;
    /* Also publish the span name under this key (e.g. "span.name"); NULL: do not. */
    const char *span_name_key;
    /* High-cardinality guard: at most this many distinct values per published key over
     * the provider's life; further new values are left out (and counted). 0: 1024. */
    uint32_t max_distinct_values;
    /* Free `inner` when the wrapper is freed. */
    bool take_ownership;
} otelprof_wrap_opts;
#define OTELPROF_WRAP_OPTS(...)                                                                    \
    ((otelprof_wrap_opts){.sz = sizeof(otelprof_wrap_opts), __VA_ARGS__})

/* Wrap `inner` (not owned unless opts->take_ownership). opts may be NULL. Registers the
 * attribute keys with otelprof_key_register (initialising otelprof if needed). NULL on
 * error, with *err (when non-NULL) set: OTELPROF_E_INVAL also for a key given twice, or a
 * span_name_key that is one of the attribute keys (since 0.2; before, such a provider
 * published the ids alone). Thread-safe; not async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_tracer_provider *
otelprof_tracer_provider_wrap(otelprof_tracer_provider *inner, const otelprof_wrap_opts *opts,
                              otelprof_status *err);

typedef struct otelprof_wrap_stats {
    uint64_t published;      /* spans whose context was attached */
    uint64_t not_published;  /* skipped by the options (unsampled, not a local root) */
    uint64_t attach_failed;  /* otelprof_attach refused (depth, ...) */
    uint64_t values_dropped; /* attribute values left out by the cardinality guard */
    uint64_t ended_on_other_thread;
} otelprof_wrap_stats;

/* Counters of a provider returned by otelprof_tracer_provider_wrap. Thread-safe. */
OTELPROF_API otelprof_status otelprof_wrap_get_stats(otelprof_tracer_provider *wrapped,
                                                     otelprof_wrap_stats *out);

/* Stop publishing, on the calling thread, spans that were ended on other threads.
 * Thread-safe (acts on the calling thread only). Since 0.1. */
OTELPROF_API void otelprof_wrap_thread_sync(void);

#ifdef __cplusplus
}
#endif
#endif
