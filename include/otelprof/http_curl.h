/* otelprof outgoing propagation for libcurl: put the current trace context into a request's
 * headers (W3C traceparent / tracestate), optionally under a CLIENT span.
 *
 * "Current context", in this order: the calling thread's trace.h scope
 * (otelprof_current_span_context: inside a request of the HTTP middleware this is the
 * SERVER span, or a span the application made current), else the context the core
 * publishes for the thread (otelprof_current: ids and flags, no tracestate), else none.
 *
 * Use:
 *     otelprof_curl_call *call;
 *     otelprof_curl_begin(easy, url, my_headers, &OTELPROF_CURL_OPTS(.tracer = t,
 *                         .method = "POST"), &call);
 *     CURLcode rc = curl_easy_perform(easy);
 *     otelprof_curl_end(call, rc);          // CURLOPT_HTTPHEADER back to my_headers
 */
#ifndef OTELPROF_HTTP_CURL_H
#define OTELPROF_HTTP_CURL_H

#include <otelprof/propagation.h>
#include <otelprof/trace.h>

/* Declared only when <curl/curl.h> is available: the library's sources say so with
 * OTELPROF_HTTP_HAVE_CURL; otherwise the header looks for it (and compiles, empty of these parts,
 * without it). */
#ifndef OTELPROF_HTTP_HAVE_CURL
#if defined(__has_include)
#if __has_include(<curl/curl.h>)
#define OTELPROF_HTTP_HAVE_CURL 1
#else
#define OTELPROF_HTTP_HAVE_CURL 0
#endif
#else
#define OTELPROF_HTTP_HAVE_CURL 1
#endif
#endif
#if OTELPROF_HTTP_HAVE_CURL
#include <curl/curl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Append the traceparent (and, when not empty, tracestate) header lines of ctx to *list
 * (curl_slist_append: *list may be NULL and stays owned by the caller). ctx NULL: the
 * current context (see above). props NULL: tracecontext. Nothing is appended when there is
 * no valid context (OTELPROF_OK) or tracecontext is off. OTELPROF_E_NOMEM when curl cannot
 * append (*list then holds what was appended before). Thread-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_curl_inject(const otelprof_propagators *props,
                                                  const otelprof_span_context *ctx,
                                                  struct curl_slist **list);

typedef struct otelprof_curl_opts {
    size_t sz;
    /* Start a CLIENT span (child of the current context, or a root) and propagate it.
     * NULL: propagate the current context as is. */
    otelprof_tracer *tracer;
    const otelprof_propagators *propagators; /* NULL: tracecontext */
    const char *method;                      /* http.request.method; NULL: "GET" */
} otelprof_curl_opts;
#define OTELPROF_CURL_OPTS(...)                                                                    \
    ((otelprof_curl_opts){.sz = sizeof(otelprof_curl_opts), __VA_ARGS__})

typedef struct otelprof_curl_call otelprof_curl_call;

/* Prepare `easy` for one traced transfer to url (used for url.full, server.address and
 * server.port; the caller still sets CURLOPT_URL): sets CURLOPT_HTTPHEADER to a list made
 * of the caller's `headers` (unchanged, still owned by the caller, may be NULL) minus any
 * traceparent/tracestate lines, plus the injected ones, and with opts->tracer starts the
 * CLIENT span. *out is then released by otelprof_curl_end, which must be called after the
 * transfer (also when it was not performed). On error *out is NULL and the handle is
 * unchanged: OTELPROF_E_INVAL, OTELPROF_E_OPTS, OTELPROF_E_NOMEM. opts may be NULL.
 * Call begin and end on one thread or not, as you like; not async-signal-safe.
 * Since 0.1. */
OTELPROF_API otelprof_status otelprof_curl_begin(CURL *easy, const char *url,
                                                 struct curl_slist *headers,
                                                 const otelprof_curl_opts *opts,
                                                 otelprof_curl_call **out);

/* The context that was propagated (the CLIENT span's, or the current one), or NULL when
 * none was. Valid until otelprof_curl_end. Since 0.1. */
OTELPROF_API const otelprof_span_context *
otelprof_curl_call_context(const otelprof_curl_call *call);

/* After the transfer: records http.response.status_code (and status ERROR with error.type
 * for a transport error or a status >= 400), ends the CLIENT span, sets CURLOPT_HTTPHEADER
 * back to the caller's list and frees call. NULL: no-op. Since 0.1. */
OTELPROF_API void otelprof_curl_end(otelprof_curl_call *call, CURLcode result);

#ifdef __cplusplus
}
#endif
#endif /* OTELPROF_HTTP_HAVE_CURL */
#endif
