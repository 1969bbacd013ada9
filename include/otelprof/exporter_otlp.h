/* otelprof OTLP/HTTP span exporter: protobuf over HTTP/1.1 (libcurl), optional gzip.
 *
 * Specifications:
 *   - OTLP 1.x, "OTLP/HTTP"       https://opentelemetry.io/docs/specs/otlp/#otlphttp
 *   - opentelemetry-proto          collector/trace/v1/trace_service.proto, trace/v1/trace.proto
 *   - Exporter configuration       https://opentelemetry.io/docs/specs/otel/protocol/exporter/
 * See docs/otlp.md for the configuration, the retry rules and the memory bounds.
 *
 * Available when the library was built with libcurl and zlib (OTELPROF_WITH_OTLP): the
 * functions below then exist in libotelprof-trace; without them they are not built.
 *
 * What one export call does: the spans are grouped by resource and instrumentation scope,
 * encoded as ExportTraceServiceRequest messages of at most max_request_bytes each (a
 * batch that encodes larger is sent as several requests; a single span larger than the
 * cap is dropped and counted), optionally gzip-compressed, and POSTed to the endpoint
 * with Content-Type application/x-protobuf. Status 429, 502, 503, 504 and connection
 * errors are retried with exponential backoff and jitter (a Retry-After header wins over
 * the computed delay); everything else is final. The whole call, retries included, never
 * takes longer than timeout_ms (plus up to about a second for libcurl to notice an abort).
 *
 * Memory: the exporter owns no queue. It keeps one reusable encode buffer of at most
 * max_request_bytes, one gzip buffer of about the same size and a response buffer of
 * 64 KiB, whatever the collector does; a failed batch is dropped, not kept for later
 * (the batch processor's bounded queue is where spans wait and are dropped when full).
 *
 * Threads: the exporter follows sdk.h's contract: export_spans is called by one thread at
 * a time (processors serialise). shutdown and force_flush may be called from any thread,
 * also while an export runs on another; shutdown makes the running export stop retrying
 * at once and abort its transfer when shutdown's own timeout expires.
 *
 * Timeouts (since 0.2): force_flush returns OTELPROF_E_TIMEOUT when an export is still
 * running at its timeout, or when an export gave up because timeout_ms ran out since the
 * previous force_flush/shutdown (reported once); shutdown returns it when it had to abort
 * a running export, or for such an earlier export. Other failures are not reported there
 * (log callback, otelprof_otlp_exporter_stats).
 */
#ifndef OTELPROF_EXPORTER_OTLP_H
#define OTELPROF_EXPORTER_OTLP_H

#include <otelprof/sdk.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum otelprof_otlp_compression {
    OTELPROF_OTLP_COMPRESSION_DEFAULT = 0, /* none */
    OTELPROF_OTLP_COMPRESSION_NONE = 1,
    OTELPROF_OTLP_COMPRESSION_GZIP = 2,
} otelprof_otlp_compression;

/* max_retries value meaning "never retry" (0 selects the default). */
#define OTELPROF_OTLP_NO_RETRIES UINT32_MAX

/* Defaults, used for zero fields. */
#define OTELPROF_OTLP_DEFAULT_ENDPOINT           "http://localhost:4318/v1/traces"
#define OTELPROF_OTLP_DEFAULT_TIMEOUT_MS         10000u
#define OTELPROF_OTLP_DEFAULT_MAX_RETRIES        5u
#define OTELPROF_OTLP_DEFAULT_INITIAL_BACKOFF_MS 1000u
#define OTELPROF_OTLP_DEFAULT_MAX_BACKOFF_MS     5000u
#define OTELPROF_OTLP_DEFAULT_MAX_REQUEST_BYTES  ((size_t)4 << 20)
/* Smallest accepted max_request_bytes (smaller values are raised to it) and largest. */
#define OTELPROF_OTLP_MIN_REQUEST_BYTES ((size_t)1024)
#define OTELPROF_OTLP_MAX_REQUEST_BYTES ((size_t)256 << 20)

/* Set sz = sizeof(otelprof_otlp_opts) (OTELPROF_OTLP_OPTS does). Fields a caller's sz
 * does not cover are taken as zero; zero fields take the defaults above. Strings are
 * copied during otelprof_otlp_exporter_new. */
typedef struct otelprof_otlp_opts {
    size_t sz;
    /* Full URL of the traces endpoint, used as is (http:// or https://).
     * NULL or "": OTELPROF_OTLP_DEFAULT_ENDPOINT. */
    const char *endpoint;
    /* Extra request headers in the OTEL_EXPORTER_OTLP_HEADERS syntax: "k1=v1,k2=v2",
     * whitespace around members, keys and values ignored, values percent-decoded. A
     * malformed member is skipped (logged); the others are kept. NULL: none. */
    const char *headers;
    /* Bound on one export call, retries and backoff included. 0: 10000. */
    uint32_t timeout_ms;
    otelprof_otlp_compression compression;
    /* Retries after the first attempt. 0: 5; OTELPROF_OTLP_NO_RETRIES: none. */
    uint32_t max_retries;
    /* Backoff before retry k (k = 0, 1, ...): min(initial << k, max), then a random
     * factor in [0.5, 1.0). 0: 1000 and 5000. */
    uint32_t initial_backoff_ms;
    uint32_t max_backoff_ms;
    /* Cap on the uncompressed protobuf bytes of one request. 0: 4 MiB. */
    size_t max_request_bytes;
} otelprof_otlp_opts;
#define OTELPROF_OTLP_OPTS(...)                                                                    \
    ((otelprof_otlp_opts){.sz = sizeof(otelprof_otlp_opts), __VA_ARGS__})

/* A new OTLP/HTTP exporter (owned by the caller until handed to a processor, which then
 * owns it). opts may be NULL (all defaults). NULL on error with *err (when non-NULL) set:
 * OTELPROF_E_INVAL (sz too small, or an endpoint that is not an http(s) URL),
 * OTELPROF_E_OPTS (unknown non-zero fields), OTELPROF_E_NOMEM, OTELPROF_E_SYSTEM (libcurl
 * could not be initialised). Does not connect. Thread-safe. Since 0.1. */
OTELPROF_API otelprof_span_exporter *otelprof_otlp_exporter_new(const otelprof_otlp_opts *opts,
                                                                otelprof_status *err);

/* Like otelprof_otlp_exporter_new with the options read from the environment, each
 * OTEL_EXPORTER_OTLP_TRACES_* variable winning over its OTEL_EXPORTER_OTLP_* one:
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  used as is
 *   OTEL_EXPORTER_OTLP_ENDPOINT         base URL: "/v1/traces" is appended
 *   OTEL_EXPORTER_OTLP_[TRACES_]HEADERS key=value list, percent-decoded
 *   OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT milliseconds (> 0)
 *   OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION  gzip | none
 * An empty variable counts as unset. A malformed value is reported through the log
 * callback and the default is kept. Reads the environment: call it at start-up, not
 * while other threads may setenv. Since 0.1. */
OTELPROF_API otelprof_span_exporter *otelprof_otlp_exporter_new_from_env(otelprof_status *err);

/* Counters since creation. Thread-safe (relaxed reads). */
typedef struct otelprof_otlp_stats {
    uint64_t export_calls;    /* export_spans calls */
    uint64_t requests;        /* HTTP requests sent, retries included */
    uint64_t retries;         /* of those, retries */
    uint64_t spans_exported;  /* spans in requests answered 2xx (rejected ones included) */
    uint64_t spans_failed;    /* spans whose request failed for good, or never sent */
    uint64_t spans_too_large; /* spans alone larger than max_request_bytes (dropped) */
    uint64_t spans_rejected;  /* partial_success.rejected_spans reported by the collector */
    uint64_t bytes_sent;      /* request bodies as sent (compressed when gzip) */
} otelprof_otlp_stats;

/* OTELPROF_E_INVAL when e is NULL or not an OTLP exporter. Since 0.1. */
OTELPROF_API otelprof_status otelprof_otlp_exporter_stats(otelprof_span_exporter *e,
                                                          otelprof_otlp_stats *out);

#ifdef __cplusplus
}
#endif
#endif
