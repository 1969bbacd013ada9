/* otelprof tracing SDK: the standard implementation of trace.h.
 *
 * Pieces, each an interface (ops table + state) so it can be replaced:
 *   sampler  -> decides at span start (always_on, always_off, traceidratio, parentbased_*)
 *   processor-> sees spans start and end (simple: export at end; batch: bounded queue and a
 *               background thread that exports; never blocks the caller, counts drops)
 *   exporter -> sends finished spans (console JSON, in-memory for tests, OTLP/HTTP in
 *               exporter_otlp.h when built with libcurl)
 * The provider owns its sampler, processors and exporters and frees them.
 *
 * Environment (read by otelprof_sdk_provider_new_from_env): OTEL_SDK_DISABLED,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG,
 * OTEL_TRACES_EXPORTER (otlp, console, none), OTEL_BSP_SCHEDULE_DELAY,
 * OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
 * OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
 * OTEL_SPAN_EVENT_COUNT_LIMIT, OTEL_SPAN_LINK_COUNT_LIMIT, OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT,
 * OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, OTEL_ATTRIBUTE_COUNT_LIMIT,
 * OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_PROPAGATORS and the OTEL_EXPORTER_OTLP_* family.
 * A bad value is reported through the log callback and the default is kept.
 */
#ifndef OTELPROF_SDK_H
#define OTELPROF_SDK_H

#include <otelprof/trace.h>

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- finished span data, as processors and exporters see it ---- */

typedef struct otelprof_event_data {
    const char *name;
    uint64_t time_ns;
    const otelprof_kv *attrs;
    size_t n_attrs;
    uint32_t dropped_attrs;
} otelprof_event_data;

typedef struct otelprof_link_data {
    otelprof_span_context context;
    const otelprof_kv *attrs;
    size_t n_attrs;
    uint32_t dropped_attrs;
} otelprof_link_data;

typedef struct otelprof_scope_info {
    const char *name;
    const char *version;    /* may be NULL */
    const char *schema_url; /* may be NULL */
} otelprof_scope_info;

typedef struct otelprof_resource otelprof_resource;

/* Read-only; valid during the processor/exporter call that receives it. */
typedef struct otelprof_span_data {
    otelprof_span_context context;
    uint8_t parent_span_id[8]; /* all zero: a root span */
    bool parent_is_remote;
    const char *name;
    otelprof_span_kind kind;
    uint64_t start_time_ns, end_time_ns; /* CLOCK_REALTIME ns */
    const otelprof_kv *attrs;
    size_t n_attrs;
    uint32_t dropped_attrs;
    const otelprof_event_data *events;
    size_t n_events;
    uint32_t dropped_events;
    const otelprof_link_data *links;
    size_t n_links;
    uint32_t dropped_links;
    otelprof_span_status status;
    const char *status_description; /* may be NULL */
    const otelprof_scope_info *scope;
    const otelprof_resource *resource;
} otelprof_span_data;

/* ---- ids ---- */

/* Random W3C ids from the SDK's per-thread generator (xoshiro256**, seeded from getrandom
 * per thread and again in a forked child); never all zero. The trace ids are random in all
 * 16 bytes, so a span using them may set the random-trace-id flag. Thread-safe; not
 * async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_random_trace_id(uint8_t out[16]);
OTELPROF_API void otelprof_random_span_id(uint8_t out[8]);

/* A user ID generator (the trace SDK spec's IdGenerator), set in otelprof_sdk_opts to
 * replace the built-in generator above for the spans of one provider. Since 0.2.
 *
 * - The provider copies this struct when it is created; `arg` must stay valid until the
 *   provider is freed (`free`, when set, is then called once with it — also when
 *   otelprof_sdk_provider_new fails, as for the other objects the options hand over).
 * - The callbacks run on every thread that starts spans, concurrently, with no SDK lock
 *   held: they must be thread-safe and must not block for long. They are not called from
 *   signal handlers. A generator with state should reseed itself in a forked child.
 * - An id left all zero (invalid in W3C) is replaced by one from the built-in generator,
 *   with one warning per provider: a span never gets an invalid id from a generator.
 * - Trace ids are made for root spans only (children keep their parent's); span ids for
 *   every span, recorded or not, after the sampler has decided (spec order).
 * - W3C random-trace-id flag (0x02): set on root spans only when `random_trace_ids` is
 *   true, i.e. the generator promises that the 56 right-most bits of its trace ids are
 *   random (TraceIdRatioBased and downstream samplers rely on them). A replacement id
 *   from the built-in generator is random, so it always gets the flag. */
typedef struct otelprof_id_generator {
    size_t sz; /* sizeof(otelprof_id_generator); OTELPROF_ID_GENERATOR() sets it */
    /* Write a new id into out. NULL: that kind of id comes from the built-in generator. */
    void (*generate_trace_id)(void *arg, uint8_t out[16]);
    void (*generate_span_id)(void *arg, uint8_t out[8]);
    void *arg;
    bool random_trace_ids;
    void (*free)(void *arg); /* may be NULL */
} otelprof_id_generator;
#define OTELPROF_ID_GENERATOR(...)                                                                 \
    ((otelprof_id_generator){.sz = sizeof(otelprof_id_generator), __VA_ARGS__})

/* ---- resource ---- */

/* A resource: string/bool/int/double attributes. Starts with service.name (default
 * "unknown_service:<program>") and telemetry.sdk.{name,language,version}; _from_env adds
 * OTEL_RESOURCE_ATTRIBUTES then OTEL_SERVICE_NAME. Thread-safe once built. */
OTELPROF_API otelprof_resource *otelprof_resource_new(void);
OTELPROF_API otelprof_resource *otelprof_resource_new_from_env(void);
OTELPROF_API otelprof_status otelprof_resource_put(otelprof_resource *r, const otelprof_kv *kv);
OTELPROF_API const otelprof_kv *otelprof_resource_attributes(const otelprof_resource *r, size_t *n);
OTELPROF_API void otelprof_resource_free(otelprof_resource *r);

/* ---- sampler ---- */

typedef enum otelprof_sampling_decision {
    OTELPROF_SAMPLING_DROP = 0,
    OTELPROF_SAMPLING_RECORD_ONLY = 1,
    OTELPROF_SAMPLING_RECORD_AND_SAMPLE = 2,
} otelprof_sampling_decision;

/* What ShouldSample receives (trace SDK spec, "ShouldSample"), for should_sample_v2. Valid
 * during the call only; a sampler keeps copies of what it needs. Read the fields that
 * params->sz covers: later versions append. Since 0.2. */
typedef struct otelprof_sampling_params {
    size_t sz;
    const otelprof_span_context *parent; /* NULL for a root span (never an invalid context) */
    const uint8_t *trace_id;             /* 16 bytes: the id the span will have */
    const char *name;                    /* never NULL */
    otelprof_span_kind kind;
    const otelprof_kv *attrs; /* the attributes given at start, as given */
    size_t n_attrs;
    /* The links given at start (otelprof_span_start_opts.links), exactly as given: also
     * those the span will not keep (invalid context without attributes or tracestate,
     * past the link limit). Links added later with otelprof_span_add_link are not seen. */
    const otelprof_link *links;
    size_t n_links;
} otelprof_sampling_params;

typedef struct otelprof_sampler otelprof_sampler;
typedef struct otelprof_sampler_ops {
    size_t sz;
    /* The original callback, kept for ABI: it does not receive the links. Used when
     * should_sample_v2 is NULL or not covered by sz.
     * parent: NULL or invalid for a root span. May replace *tracestate (same capacity). */
    otelprof_sampling_decision (*should_sample)(otelprof_sampler *s,
                                                const otelprof_span_context *parent,
                                                const uint8_t trace_id[16], const char *name,
                                                otelprof_span_kind kind, const otelprof_kv *attrs,
                                                size_t n_attrs, otelprof_tracestate *tracestate);
    /* e.g. "TraceIdRatioBased{0.25}", "ParentBased{root:AlwaysOnSampler,...}" */
    const char *(*description)(const otelprof_sampler *s);
    void (*free)(otelprof_sampler *s);
    /* Since 0.2: preferred over should_sample when set (a table built against 0.1 headers
     * is shorter and never has it). Receives everything should_sample does plus the links
     * given at span start. May replace *tracestate. Called on the thread starting the span,
     * concurrently from several threads: must be thread-safe. */
    otelprof_sampling_decision (*should_sample_v2)(otelprof_sampler *s,
                                                   const otelprof_sampling_params *params,
                                                   otelprof_tracestate *tracestate);
} otelprof_sampler_ops;
struct otelprof_sampler {
    const otelprof_sampler_ops *ops;
};

OTELPROF_API otelprof_sampler *otelprof_sampler_always_on(void);
OTELPROF_API otelprof_sampler *otelprof_sampler_always_off(void);
/* ratio in [0, 1]; decision from the trace id's lower 56 bits, as the spec's
 * TraceIdRatioBased with the random-trace-id flag. NULL on a bad ratio. */
OTELPROF_API otelprof_sampler *otelprof_sampler_traceidratio(double ratio);
/* Takes ownership of root. The four others default (NULL) to the spec's defaults. */
OTELPROF_API otelprof_sampler *otelprof_sampler_parentbased(otelprof_sampler *root,
                                                            otelprof_sampler *remote_sampled,
                                                            otelprof_sampler *remote_not_sampled,
                                                            otelprof_sampler *local_sampled,
                                                            otelprof_sampler *local_not_sampled);
/* From OTEL_TRACES_SAMPLER / _ARG; default parentbased_always_on. */
OTELPROF_API otelprof_sampler *otelprof_sampler_from_env(void);
OTELPROF_API void otelprof_sampler_free(otelprof_sampler *s);
/* Ask s for a decision the way the SDK does: should_sample_v2 when the table has it, else
 * should_sample (without the links). For samplers that delegate (as ParentBased does), so
 * their delegates see the links. No sampler (or no callback): RECORD_AND_SAMPLE. Thread-safe
 * as far as s is. Since 0.2. */
OTELPROF_API otelprof_sampling_decision otelprof_sampler_should_sample(
    otelprof_sampler *s, const otelprof_sampling_params *params, otelprof_tracestate *tracestate);

/* ---- exporter ---- */

typedef enum otelprof_export_result {
    OTELPROF_EXPORT_SUCCESS = 0,
    OTELPROF_EXPORT_FAILURE = 1,
} otelprof_export_result;

typedef struct otelprof_span_exporter otelprof_span_exporter;
typedef struct otelprof_span_exporter_ops {
    size_t sz;
    /* Called by one thread at a time (processors serialise). */
    otelprof_export_result (*export_spans)(otelprof_span_exporter *e,
                                           const otelprof_span_data *const *spans, size_t n);
    /* OTELPROF_E_TIMEOUT when giving up at timeout_ms, or (as the OTLP exporter does) when
     * spans it was given could not be sent in time; the batch processor passes the result
     * on to its own force_flush/shutdown callers. */
    otelprof_status (*force_flush)(otelprof_span_exporter *e, uint32_t timeout_ms);
    otelprof_status (*shutdown)(otelprof_span_exporter *e, uint32_t timeout_ms);
    void (*free)(otelprof_span_exporter *e);
} otelprof_span_exporter_ops;
struct otelprof_span_exporter {
    const otelprof_span_exporter_ops *ops;
};

/* Console: one JSON object per span and line (OTLP JSON field names), to `out` (NULL:
 * stdout). The stream is not closed. */
OTELPROF_API otelprof_span_exporter *otelprof_console_exporter_new(FILE *out);
/* In-memory, for tests: keeps copies of up to max_spans spans (0: no limit). */
OTELPROF_API otelprof_span_exporter *otelprof_memory_exporter_new(size_t max_spans);
/* Number of spans held, and the i-th (valid until _reset/free). Thread-safe. */
OTELPROF_API size_t otelprof_memory_exporter_count(otelprof_span_exporter *e);
OTELPROF_API const otelprof_span_data *otelprof_memory_exporter_get(otelprof_span_exporter *e,
                                                                    size_t i);
OTELPROF_API void otelprof_memory_exporter_reset(otelprof_span_exporter *e);
OTELPROF_API void otelprof_span_exporter_free(otelprof_span_exporter *e);

/* ---- processor ---- */

typedef struct otelprof_span_processor otelprof_span_processor;
typedef struct otelprof_span_processor_ops {
    size_t sz;
    void (*on_start)(otelprof_span_processor *p, otelprof_span *span,
                     const otelprof_span_context *parent);
    /* Called with every finished recording span, sampled or not (trace SDK spec: processors
     * see RECORD_ONLY spans too; the built-in ones export only those whose trace_flags
     * have OTELPROF_FLAG_SAMPLED). Must not block for long. */
    void (*on_end)(otelprof_span_processor *p, const otelprof_span_data *span);
    /* Both return OTELPROF_E_TIMEOUT when they give up at timeout_ms (spec: let the caller
     * know whether it succeeded, failed or timed out). */
    otelprof_status (*force_flush)(otelprof_span_processor *p, uint32_t timeout_ms);
    otelprof_status (*shutdown)(otelprof_span_processor *p, uint32_t timeout_ms);
    void (*free)(otelprof_span_processor *p);
} otelprof_span_processor_ops;
struct otelprof_span_processor {
    const otelprof_span_processor_ops *ops;
};

/* Exports each span as it ends, on the ending thread. Takes ownership of the exporter. */
OTELPROF_API otelprof_span_processor *otelprof_simple_processor_new(otelprof_span_exporter *e);

typedef struct otelprof_batch_opts {
    size_t sz;
    uint32_t max_queue_size;        /* 0: OTEL_BSP_MAX_QUEUE_SIZE or 2048 */
    uint32_t schedule_delay_ms;     /* 0: OTEL_BSP_SCHEDULE_DELAY or 5000 */
    uint32_t export_timeout_ms;     /* 0: OTEL_BSP_EXPORT_TIMEOUT or 30000 */
    uint32_t max_export_batch_size; /* 0: OTEL_BSP_MAX_EXPORT_BATCH_SIZE or 512 */
} otelprof_batch_opts;
#define OTELPROF_BATCH_OPTS(...)                                                                   \
    ((otelprof_batch_opts){.sz = sizeof(otelprof_batch_opts), __VA_ARGS__})

/* A bounded queue drained by one background thread (started here: the only thread the
 * SDK creates). on_end never blocks: a full queue drops the span and counts it. Takes
 * ownership of the exporter. force_flush/shutdown return OTELPROF_E_TIMEOUT when their
 * timeout passes first (since 0.2; OTELPROF_E_SYSTEM in 0.1); otherwise the exporter's
 * force_flush/shutdown result (since 0.2). */
OTELPROF_API otelprof_span_processor *otelprof_batch_processor_new(otelprof_span_exporter *e,
                                                                   const otelprof_batch_opts *opts);
typedef struct otelprof_batch_stats {
    uint64_t enqueued, exported, dropped_queue_full, export_failures;
} otelprof_batch_stats;
OTELPROF_API otelprof_status otelprof_batch_processor_stats(otelprof_span_processor *p,
                                                            otelprof_batch_stats *out);
OTELPROF_API void otelprof_span_processor_free(otelprof_span_processor *p);

/* ---- provider ---- */

typedef struct otelprof_span_limits {
    uint32_t attribute_count;        /* 0: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT or 128 */
    uint32_t attribute_value_length; /* 0: unlimited (or the env var) */
    uint32_t event_count;            /* 0: 128 */
    uint32_t link_count;             /* 0: 128 */
    uint32_t attributes_per_event;   /* 0: 128 */
    uint32_t attributes_per_link;    /* 0: 128 */
} otelprof_span_limits;

typedef struct otelprof_sdk_opts {
    size_t sz;
    otelprof_resource *resource; /* owned by the provider; NULL: otelprof_resource_new_from_env */
    otelprof_sampler *sampler;   /* owned; NULL: otelprof_sampler_from_env */
    otelprof_span_processor *const *processors; /* each owned; none: spans are dropped */
    size_t n_processors;
    otelprof_span_limits limits;
    /* Since 0.2. NULL: the built-in generator. The struct is copied; see
     * otelprof_id_generator for what the provider then owns. */
    const otelprof_id_generator *id_generator;
} otelprof_sdk_opts;
#define OTELPROF_SDK_OPTS(...) ((otelprof_sdk_opts){.sz = sizeof(otelprof_sdk_opts), __VA_ARGS__})

/* NULL on error (see *err when non-NULL). */
OTELPROF_API otelprof_tracer_provider *otelprof_sdk_provider_new(const otelprof_sdk_opts *opts,
                                                                 otelprof_status *err);
/* Everything from the environment: resource, sampler, and OTEL_TRACES_EXPORTER with a batch
 * processor (console: simple processor). OTEL_SDK_DISABLED=true gives a no-op provider. */
OTELPROF_API otelprof_tracer_provider *otelprof_sdk_provider_new_from_env(otelprof_status *err);
/* A provider whose spans are non-recording but propagate the parent's context. */
OTELPROF_API otelprof_tracer_provider *otelprof_noop_provider_new(void);

#ifdef __cplusplus
}
#endif
#endif
