/* The OTLP/HTTP span exporter: requests from otlp_encode.c, sent with one reused libcurl
 * easy handle, retried per the OTLP specification ("Failures and retries"). */
#define _POSIX_C_SOURCE 200809L
#define ZLIB_CONST
#include "otlp_internal.h"

#include <otelprof/version.h>

#include <curl/curl.h>
#include <zlib.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of a response body kept (the rest is read and discarded). */
#define RESP_MAX ((size_t)64 << 10)

typedef struct otlp_exporter {
    otelprof_span_exporter base;
    op_otlp_config cfg;

    /* Used by the exporting thread only (export_mu held). */
    CURL *curl;
    struct curl_slist *hdrs;
    op_pbw enc;
    z_stream zs;
    bool zs_ready;
    uint8_t *gz;
    size_t gz_cap;
    uint8_t *resp;
    size_t resp_len;
    bool resp_truncated;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t rng;

    pthread_mutex_t export_mu; /* serialises export calls */
    pthread_mutex_t mu;        /* guards busy, shut; cv signals their changes */
    pthread_cond_t cv;         /* CLOCK_MONOTONIC */
    bool busy;
    bool shut;
    atomic_bool abort_xfer; /* read by the libcurl progress callback */
    /* An export gave up because its timeout ran out; reported (and cleared) by the next
     * force_flush or shutdown as OTELPROF_E_TIMEOUT. */
    atomic_bool timed_out;

    atomic_uint_least64_t export_calls, requests, retries, spans_exported, spans_failed,
        spans_too_large, spans_rejected, bytes_sent;
} otlp_exporter;

static const otelprof_span_exporter_ops otlp_ops;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void count(atomic_uint_least64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timespec mono_after(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static uint64_t rng_next(otlp_exporter *e)
{
    /* xorshift64* */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static bool is_shut(otlp_exporter *e)
{
    pthread_mutex_lock(&e->mu);
    bool s = e->shut;
    pthread_mutex_unlock(&e->mu);
    return s;
}

/* Sleep ms, woken early by shutdown. false when shut down. */
static bool backoff_wait(otlp_exporter *e, uint64_t ms)
{
    struct timespec until = mono_after(ms);
    pthread_mutex_lock(&e->mu);
    while (!e->shut && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT) {
    }
    bool ok = !e->shut;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * libcurl callbacks
 * ------------------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    otlp_exporter *e = ud;
    size_t n = size * nmemb;
    size_t room = RESP_MAX - e->resp_len;
    size_t k = n < room ? n : room;
    memcpy(e->resp + e->resp_len, p, k);
    e->resp_len += k;
    if (k < n)
        e->resp_truncated = true;
    return n; /* the rest is read and dropped, so the connection stays usable */
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    otlp_exporter *e = ud;
    return atomic_load(&e->abort_xfer) ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------
 * One request
 * ------------------------------------------------------------------------------------- */

static bool gzip_body(otlp_exporter *e, const uint8_t *in, size_t n, const uint8_t **out,
                      size_t *out_len)
{
    if (!e->zs_ready) {
        memset(&e->zs, 0, sizeof e->zs);
        /* windowBits 15 + 16: a gzip header and trailer rather than zlib's */
        if (deflateInit2(&e->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        e->zs_ready = true;
    } else if (deflateReset(&e->zs) != Z_OK) {
        return false;
    }
    size_t bound = deflateBound(&e->zs, (uLong)n);
    if (bound > e->gz_cap) {
        uint8_t *g = realloc(e->gz, bound);
        if (!g)
            return false;
        e->gz = g;
        e->gz_cap = bound;
    }
    e->zs.next_in = in;
    e->zs.avail_in = (uInt)n;
    e->zs.next_out = e->gz;
    e->zs.avail_out = (uInt)bound;
    if (deflate(&e->zs, Z_FINISH) != Z_STREAM_END)
        return false;
    *out = e->gz;
    *out_len = bound - e->zs.avail_out;
    return true;
}

/* Connection-level failures worth another attempt. */
static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Printable excerpt of s[0..n) for the log. */
static void excerpt(const char *s, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    out[o] = '\0';
}

static bool content_type_is(otlp_exporter *e, const char *want)
{
    char *ct = NULL;
    if (curl_easy_getinfo(e->curl, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || !ct)
        return false;
    size_t n = strlen(want);
    for (size_t i = 0; i < n; i++) {
        char c = ct[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* What the collector said about a failed request, for the log. */
static void describe_error_body(otlp_exporter *e, char *out, size_t out_size)
{
    const char *msg = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (e->resp_len == 0)
        return;
    if (content_type_is(e, "application/x-protobuf") && !e->resp_truncated &&
        op_otlp_decode_status_message(e->resp, e->resp_len, &msg, &len)) {
        excerpt(msg, len, out, out_size);
        return;
    }
    excerpt((const char *)e->resp, e->resp_len, out, out_size);
}

static void on_success(otlp_exporter *e, size_t n_spans)
{
    count(&e->spans_exported, n_spans);
    if (e->resp_len == 0 || e->resp_truncated || !content_type_is(e, "application/x-protobuf"))
        return;
    int64_t rejected = 0;
    const char *msg = NULL;
    size_t len = 0;
    if (!op_otlp_decode_response(e->resp, e->resp_len, &rejected, &msg, &len)) {
        op_otlp_log(OTELPROF_LOG_DEBUG, "otlp: could not decode the ExportTraceServiceResponse");
        return;
    }
    char text[256];
    excerpt(msg ? msg : "", len, text, sizeof text);
    if (rejected > 0) {
        count(&e->spans_rejected, (uint64_t)rejected);
        op_otlp_log(OTELPROF_LOG_WARN, "otlp: the collector rejected %lld of %zu spans: %s",
                    (long long)rejected, n_spans, text);
    } else if (len) {
        op_otlp_log(OTELPROF_LOG_WARN, "otlp: the collector accepted the spans with a warning: %s",
                    text);
    }
}

static CURLcode perform_once(otlp_exporter *e, const uint8_t *body, size_t len,
                             uint64_t remaining_ms, long *status)
{
    CURL *c = e->curl;
    e->resp_len = 0;
    e->resp_truncated = false;
    e->errbuf[0] = '\0';
    *status = 0;
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    long ms = remaining_ms > 0x7FFFFFFF ? 0x7FFFFFFFL : (long)remaining_ms;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
    CURLcode rc = curl_easy_perform(c);
    count(&e->requests, 1);
    count(&e->bytes_sent, len);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Send one request, retrying within the deadline. */
static bool send_request(otlp_exporter *e, const uint8_t *body, size_t len, size_t n_spans,
                         uint64_t deadline)
{
    const op_otlp_config *cfg = &e->cfg;
    for (uint32_t attempt = 0;; attempt++) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            atomic_store(&e->timed_out, true);
            op_otlp_log(OTELPROF_LOG_WARN, "otlp: export of %zu spans timed out (%u ms)", n_spans,
                        cfg->timeout_ms);
            return false;
        }
        if (is_shut(e))
            return false;
        long status = 0;
        CURLcode rc = perform_once(e, body, len, deadline - now, &status);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            on_success(e, n_spans);
            return true;
        }
        char what[320];
        bool retryable;
        if (rc == CURLE_OK) {
            retryable = status == 429 || status == 502 || status == 503 || status == 504;
            char body_text[256];
            describe_error_body(e, body_text, sizeof body_text);
            snprintf(what, sizeof what, "HTTP %ld%s%s", status, body_text[0] ? ": " : "",
                     body_text);
        } else {
            retryable = curl_retryable(rc);
            snprintf(what, sizeof what, "%s%s%s", curl_easy_strerror(rc), e->errbuf[0] ? ": " : "",
                     e->errbuf);
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK) {
            op_otlp_log(OTELPROF_LOG_WARN, "otlp: export of %zu spans aborted by shutdown",
                        n_spans);
            return false;
        }
        if (!retryable) {
            op_otlp_log(OTELPROF_LOG_WARN,
                        "otlp: export of %zu spans to %s failed (not retried): %s", n_spans,
                        cfg->endpoint, what);
            return false;
        }
        if (attempt >= cfg->max_retries) {
            /* Each attempt's libcurl timeout is what is left of the call's. */
            if (rc == CURLE_OPERATION_TIMEDOUT)
                atomic_store(&e->timed_out, true);
            op_otlp_log(OTELPROF_LOG_WARN,
                        "otlp: export of %zu spans to %s failed after %u retries: %s", n_spans,
                        cfg->endpoint, attempt, what);
            return false;
        }
        /* exponential backoff with jitter in [0.5, 1.0) of the step */
        unsigned shift = attempt < 31 ? attempt : 31;
        uint64_t step = (uint64_t)cfg->initial_backoff_ms << shift;
        if (step > cfg->max_backoff_ms)
            step = cfg->max_backoff_ms;
        uint64_t delay = step / 2 + (step > 1 ? rng_next(e) % (step - step / 2) : 0);
        curl_off_t retry_after = 0;
        if (rc == CURLE_OK &&
            curl_easy_getinfo(e->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
            retry_after > 0)
            delay = (uint64_t)retry_after * 1000u;
        now = now_ms();
        if (now + delay >= deadline) {
            atomic_store(&e->timed_out, true);
            op_otlp_log(OTELPROF_LOG_WARN,
                        "otlp: export of %zu spans failed: %s; the next retry (in %llu ms) would "
                        "pass the %u ms timeout",
                        n_spans, what, (unsigned long long)delay, cfg->timeout_ms);
            return false;
        }
        op_otlp_log(OTELPROF_LOG_DEBUG, "otlp: %s; retry %u in %llu ms", what, attempt + 1,
                    (unsigned long long)delay);
        if (!backoff_wait(e, delay))
            return false;
        count(&e->retries, 1);
    }
}

/* ---------------------------------------------------------------------------------------
 * Exporter operations
 * ------------------------------------------------------------------------------------- */

static bool do_export(otlp_exporter *e, const otelprof_span_data *const *spans, size_t n)
{
    uint64_t deadline = now_ms() + e->cfg.timeout_ms;
    op_otlp_batch *b = op_otlp_batch_new(spans, n);
    if (!b) {
        op_otlp_log(OTELPROF_LOG_ERROR, "otlp: out of memory encoding %zu spans", n);
        count(&e->spans_failed, n);
        return false;
    }
    bool ok = true;
    e->enc.limit = e->cfg.max_request_bytes;
    for (;;) {
        size_t k = 0, too_large = 0;
        otelprof_status st = op_otlp_batch_next(b, &e->enc, &k, &too_large);
        if (too_large) {
            ok = false;
            count(&e->spans_too_large, too_large);
            op_otlp_log(OTELPROF_LOG_WARN,
                        "otlp: dropped %zu span(s) that alone encode to more than %zu bytes",
                        too_large, e->cfg.max_request_bytes);
        }
        if (st != OTELPROF_OK) {
            op_otlp_log(OTELPROF_LOG_ERROR, "otlp: out of memory encoding %zu spans", n);
            count(&e->spans_failed, k + op_otlp_batch_remaining(b));
            ok = false;
            break;
        }
        if (k == 0)
            break;
        const uint8_t *body = e->enc.buf + e->enc.pos;
        size_t len = op_pbw_len(&e->enc);
        if (e->cfg.gzip && !gzip_body(e, body, len, &body, &len)) {
            op_otlp_log(OTELPROF_LOG_ERROR, "otlp: gzip compression of %zu bytes failed", len);
            count(&e->spans_failed, k + op_otlp_batch_remaining(b));
            ok = false;
            break;
        }
        if (!send_request(e, body, len, k, deadline)) {
            count(&e->spans_failed, k + op_otlp_batch_remaining(b));
            ok = false;
            break;
        }
    }
    op_otlp_batch_free(b);
    return ok;
}

static otelprof_export_result otlp_export(otelprof_span_exporter *base,
                                          const otelprof_span_data *const *spans, size_t n)
{
    otlp_exporter *e = (otlp_exporter *)base;
    count(&e->export_calls, 1);
    pthread_mutex_lock(&e->export_mu);
    pthread_mutex_lock(&e->mu);
    if (e->shut) {
        pthread_mutex_unlock(&e->mu);
        pthread_mutex_unlock(&e->export_mu);
        count(&e->spans_failed, n);
        return OTELPROF_EXPORT_FAILURE;
    }
    e->busy = true;
    pthread_mutex_unlock(&e->mu);

    bool ok = (n == 0 || !spans) ? true : do_export(e, spans, n);

    pthread_mutex_lock(&e->mu);
    e->busy = false;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_unlock(&e->export_mu);
    return ok ? OTELPROF_EXPORT_SUCCESS : OTELPROF_EXPORT_FAILURE;
}

/* Wait until no export runs, at most timeout_ms. mu held. true when idle. */
static bool wait_idle_locked(otlp_exporter *e, uint32_t timeout_ms)
{
    struct timespec until = mono_after(timeout_ms);
    while (e->busy && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT) {
    }
    return !e->busy;
}

static otelprof_status otlp_force_flush(otelprof_span_exporter *base, uint32_t timeout_ms)
{
    /* Nothing is buffered here; let an export running on another thread finish. */
    otlp_exporter *e = (otlp_exporter *)base;
    pthread_mutex_lock(&e->mu);
    bool idle = wait_idle_locked(e, timeout_ms);
    pthread_mutex_unlock(&e->mu);
    if (!idle)
        return OTELPROF_E_TIMEOUT; /* the running export carries on */
    /* Spec: ForceFlush tells whether the spans received before it went out in time. */
    return atomic_exchange(&e->timed_out, false) ? OTELPROF_E_TIMEOUT : OTELPROF_OK;
}

static otelprof_status otlp_shutdown(otelprof_span_exporter *base, uint32_t timeout_ms)
{
    otlp_exporter *e = (otlp_exporter *)base;
    pthread_mutex_lock(&e->mu);
    e->shut = true;
    pthread_cond_broadcast(&e->cv); /* ends a backoff wait: no further retries */
    bool aborted = false;
    if (!wait_idle_locked(e, timeout_ms)) {
        /* the transfer in flight is aborted by the progress callback (within ~1 s) */
        atomic_store(&e->abort_xfer, true);
        while (e->busy)
            pthread_cond_wait(&e->cv, &e->mu);
        aborted = true;
        op_otlp_log(OTELPROF_LOG_WARN, "otlp: shutdown aborted an export still running after %u ms",
                    timeout_ms);
    }
    pthread_mutex_unlock(&e->mu);
    /* Also an export that ran out of time since the last flush (the batch processor's final
     * drain happens just before it shuts the exporter down). */
    bool late = atomic_exchange(&e->timed_out, false);
    return aborted || late ? OTELPROF_E_TIMEOUT : OTELPROF_OK;
}

static void otlp_free(otelprof_span_exporter *base)
{
    if (!base)
        return;
    otlp_exporter *e = (otlp_exporter *)base;
    otlp_shutdown(base, 0);
    if (e->curl)
        curl_easy_cleanup(e->curl);
    curl_slist_free_all(e->hdrs);
    if (e->zs_ready)
        deflateEnd(&e->zs);
    free(e->gz);
    free(e->resp);
    op_pbw_free(&e->enc);
    op_otlp_config_free(&e->cfg);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->export_mu);
    free(e);
}

static const otelprof_span_exporter_ops otlp_ops = {
    .sz = sizeof(otelprof_span_exporter_ops),
    .export_spans = otlp_export,
    .force_flush = otlp_force_flush,
    .shutdown = otlp_shutdown,
    .free = otlp_free,
};

/* ---------------------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------------------- */

static bool add_header(otlp_exporter *e, const char *line)
{
    struct curl_slist *l = curl_slist_append(e->hdrs, line);
    if (!l)
        return false;
    e->hdrs = l;
    return true;
}

static otelprof_status setup_curl(otlp_exporter *e)
{
    e->curl = curl_easy_init();
    if (!e->curl)
        return OTELPROF_E_SYSTEM;
    if (!add_header(e, "Content-Type: application/x-protobuf") ||
        (e->cfg.gzip && !add_header(e, "Content-Encoding: gzip")) ||
        !add_header(e, "Expect:")) /* no 100-continue round trip */
        return OTELPROF_E_NOMEM;
    for (size_t i = 0; i < e->cfg.n_headers; i++)
        if (!add_header(e, e->cfg.headers[i]))
            return OTELPROF_E_NOMEM;
    CURL *c = e->curl;
    if (curl_easy_setopt(c, CURLOPT_URL, e->cfg.endpoint) != CURLE_OK)
        return OTELPROF_E_INVAL;
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT,
                     "OTel-OTLP-Exporter-C/" OTELPROF_VERSION_STRING " (otelprof)");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, e);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->errbuf);
    return OTELPROF_OK;
}

otelprof_span_exporter *otelprof_otlp_exporter_new(const otelprof_otlp_opts *opts,
                                                   otelprof_status *err)
{
    otelprof_status st = OTELPROF_OK;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        op_otlp_log(OTELPROF_LOG_ERROR, "otlp: curl_global_init failed: %s",
                    curl_easy_strerror(curl_init_rc));
        if (err)
            *err = OTELPROF_E_SYSTEM;
        return NULL;
    }
    otlp_exporter *e = calloc(1, sizeof *e);
    if (!e) {
        if (err)
            *err = OTELPROF_E_NOMEM;
        return NULL;
    }
    e->base.ops = &otlp_ops;
    st = op_otlp_config_from_opts(&e->cfg, opts);
    if (st != OTELPROF_OK) {
        free(e);
        if (err)
            *err = st;
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->export_mu, NULL);
    atomic_init(&e->abort_xfer, false);
    atomic_init(&e->timed_out, false);
    op_pbw_init(&e->enc, e->cfg.max_request_bytes);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)e;
    if (!e->rng)
        e->rng = 0x9E3779B97F4A7C15ULL;
    e->resp = malloc(RESP_MAX);
    st = e->resp ? setup_curl(e) : OTELPROF_E_NOMEM;
    if (st != OTELPROF_OK) {
        otlp_free(&e->base);
        if (err)
            *err = st;
        return NULL;
    }
    op_otlp_log(
        OTELPROF_LOG_INFO,
        "otlp: exporting to %s (compression %s, timeout %u ms, %u retries, %zu-byte requests)",
        e->cfg.endpoint, e->cfg.gzip ? "gzip" : "none", e->cfg.timeout_ms, e->cfg.max_retries,
        e->cfg.max_request_bytes);
    if (err)
        *err = OTELPROF_OK;
    return &e->base;
}

otelprof_span_exporter *otelprof_otlp_exporter_new_from_env(otelprof_status *err)
{
    op_otlp_env env;
    if (op_otlp_env_read(&env) != OTELPROF_OK) {
        if (err)
            *err = OTELPROF_E_NOMEM;
        return NULL;
    }
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(&env.opts, err);
    op_otlp_env_free(&env);
    return e;
}

otelprof_status otelprof_otlp_exporter_stats(otelprof_span_exporter *base, otelprof_otlp_stats *out)
{
    if (!base || base->ops != &otlp_ops || !out)
        return OTELPROF_E_INVAL;
    otlp_exporter *e = (otlp_exporter *)base;
#define LOAD_(f) out->f = atomic_load_explicit(&e->f, memory_order_relaxed)
    LOAD_(export_calls);
    LOAD_(requests);
    LOAD_(retries);
    LOAD_(spans_exported);
    LOAD_(spans_failed);
    LOAD_(spans_too_large);
    LOAD_(spans_rejected);
    LOAD_(bytes_sent);
#undef LOAD_
    return OTELPROF_OK;
}
