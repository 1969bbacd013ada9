/* Private declarations of the OTLP/HTTP exporter. Not installed.
 *
 * otlp_encode.c  protobuf encoding of ExportTraceServiceRequest (written backwards, so
 *                every length prefix is known when it is written: one pass, no sizing
 *                pass), split into requests of at most a cap; response decoding.
 * otlp_config.c  options and OTEL_EXPORTER_OTLP_* environment variables.
 * otlp_exporter.c the exporter: libcurl, gzip, retries.
 */
#ifndef OTELPROF_OTLP_INTERNAL_H
#define OTELPROF_OTLP_INTERNAL_H

#include <otelprof/exporter_otlp.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTELPROF_HIDDEN __attribute__((visibility("hidden")))

/* The tracing library's logger (src/sdk/log.c): the exporter lives in the same library. */
void ots_log(otelprof_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define op_otlp_log ots_log

/* ---------------------------------------------------------------------------------------
 * Protobuf wire format, written from the end of the buffer towards its start.
 * ------------------------------------------------------------------------------------- */

enum {
    OP_PB_VARINT = 0,
    OP_PB_I64 = 1,
    OP_PB_LEN = 2,
    OP_PB_I32 = 5,
};

/* The bytes written are buf[pos..cap). The buffer grows (the written bytes move to the
 * new end) up to `limit` bytes; a write past the limit sets `overflow`, a failed
 * allocation `nomem`; either makes later writes no-ops until op_pbw_rollback. */
typedef struct op_pbw {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    size_t limit;
    bool overflow;
    bool nomem;
} op_pbw;

/* Bytes written so far. */
static inline size_t op_pbw_len(const op_pbw *w)
{
    return w->cap - w->pos;
}
OTELPROF_HIDDEN void op_pbw_init(op_pbw *w, size_t limit);
OTELPROF_HIDDEN void op_pbw_reset(op_pbw *w);
/* Drop everything written after the moment op_pbw_len() was `len`; clears overflow. */
OTELPROF_HIDDEN void op_pbw_rollback(op_pbw *w, size_t len);
OTELPROF_HIDDEN void op_pbw_free(op_pbw *w);
OTELPROF_HIDDEN void op_pbw_bytes(op_pbw *w, const void *p, size_t n);
OTELPROF_HIDDEN void op_pbw_varint(op_pbw *w, uint64_t v);
OTELPROF_HIDDEN void op_pbw_tag(op_pbw *w, uint32_t field, unsigned wire_type);
/* The length and tag of a LEN field whose content is what was written since op_pbw_len()
 * was `mark`. */
OTELPROF_HIDDEN void op_pbw_close_len(op_pbw *w, uint32_t field, size_t mark);

/* Length of a varint. */
OTELPROF_HIDDEN size_t op_pb_varint_size(uint64_t v);

/* ---------------------------------------------------------------------------------------
 * UTF-8: protobuf strings must be valid UTF-8 (Go's decoder, i.e. the Collector, rejects
 * the whole request otherwise). Invalid bytes are replaced by U+FFFD, one per byte that
 * does not start a well-formed sequence.
 * ------------------------------------------------------------------------------------- */

/* Length of s[0..n) once sanitised (n when valid). */
OTELPROF_HIDDEN size_t op_utf8_sanitized_len(const uint8_t *s, size_t n);
/* Write s[0..n) sanitised into out (op_utf8_sanitized_len(s, n) bytes). */
OTELPROF_HIDDEN void op_utf8_sanitize(const uint8_t *s, size_t n, uint8_t *out);

/* ---------------------------------------------------------------------------------------
 * Batch encoding
 * ------------------------------------------------------------------------------------- */

/* The spans of one export call, grouped by resource then scope, cut into requests. */
typedef struct op_otlp_batch op_otlp_batch;

/* Group the spans (which must stay valid while the batch is used). NULL on ENOMEM. */
OTELPROF_HIDDEN op_otlp_batch *op_otlp_batch_new(const otelprof_span_data *const *spans, size_t n);
OTELPROF_HIDDEN void op_otlp_batch_free(op_otlp_batch *b);

/* Encode the next request into w (reset first; w->limit is the cap), taking as many of the
 * remaining spans as fit. Returns OTELPROF_OK with *n_spans > 0 when a request was
 * written, OTELPROF_OK with *n_spans == 0 when no span is left, OTELPROF_E_NOMEM.
 * *n_too_large (added to) counts spans skipped because alone they exceed the cap. */
OTELPROF_HIDDEN otelprof_status op_otlp_batch_next(op_otlp_batch *b, op_pbw *w, size_t *n_spans,
                                                   size_t *n_too_large);
/* Spans not yet handed out by op_otlp_batch_next. */
OTELPROF_HIDDEN size_t op_otlp_batch_remaining(const op_otlp_batch *b);

/* ExportTraceServiceResponse: partial_success.rejected_spans and .error_message (a pointer
 * into buf, not NUL-terminated). false when buf is not a well-formed response. */
OTELPROF_HIDDEN bool op_otlp_decode_response(const uint8_t *buf, size_t len, int64_t *rejected,
                                             const char **msg, size_t *msg_len);
/* google.rpc.Status.message of an error response body; false when there is none. */
OTELPROF_HIDDEN bool op_otlp_decode_status_message(const uint8_t *buf, size_t len, const char **msg,
                                                   size_t *msg_len);

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

typedef struct op_otlp_config {
    char *endpoint;
    char **headers; /* "Name: value" lines, for libcurl */
    size_t n_headers;
    uint32_t timeout_ms;
    bool gzip;
    uint32_t max_retries; /* resolved: 0 means no retry */
    uint32_t initial_backoff_ms;
    uint32_t max_backoff_ms;
    size_t max_request_bytes;
} op_otlp_config;

/* Resolve opts (may be NULL) with defaults. OTELPROF_E_INVAL, _E_OPTS, _E_NOMEM. */
OTELPROF_HIDDEN otelprof_status op_otlp_config_from_opts(op_otlp_config *cfg,
                                                         const otelprof_otlp_opts *opts);
OTELPROF_HIDDEN void op_otlp_config_free(op_otlp_config *cfg);

/* Options read from the environment; the strings are owned by the struct. */
typedef struct op_otlp_env {
    otelprof_otlp_opts opts;
    char *endpoint;
    char *headers;
} op_otlp_env;
/* OTELPROF_OK or OTELPROF_E_NOMEM; malformed values are logged and left at default. */
OTELPROF_HIDDEN otelprof_status op_otlp_env_read(op_otlp_env *env);
OTELPROF_HIDDEN void op_otlp_env_free(op_otlp_env *env);

/* Parse a "k1=v1,k2=v2" header list (percent-decoded values) into "k1: v1" lines appended
 * to *lines / *n. Malformed members are skipped and logged. OTELPROF_OK, or
 * OTELPROF_E_NOMEM (the lines added so far stay). */
OTELPROF_HIDDEN otelprof_status op_otlp_parse_headers(const char *s, char ***lines, size_t *n);

/* true for an http:// or https:// URL with a host part and no whitespace or controls. */
OTELPROF_HIDDEN bool op_otlp_endpoint_valid(const char *url);

#endif
