/* otelprof HTTP middleware for CivetWeb (>= 1.15): the same per-request behaviour as the
 * libmicrohttpd middleware in http.h, through CivetWeb's begin_request / end_request
 * callbacks.
 *
 * CivetWeb runs each request, from begin_request to end_request, on one worker thread,
 * so the request's context is published on that thread from begin_request (before any
 * handler, including the application's own begin_request) to end_request (after the
 * application's end_request), and the worker's previous context is restored then.
 *
 * Use:
 *     struct mg_callbacks cb = {0};        // the application's callbacks, if any
 *     otelprof_civetweb *cw = otelprof_civetweb_new(&http_opts, &cb, &err);
 *     struct mg_context *ctx = mg_start(&cb, user_data, options);
 *     ...
 *     mg_stop(ctx);
 *     otelprof_civetweb_free(cw);
 *
 * Limits (docs/http.md): CivetWeb keeps at most 64 request headers (MG_MAX_HEADERS), so
 * a traceparent after the 64th header is not seen; requests CivetWeb rejects before
 * begin_request (malformed request line, bad URI) get no span; WebSocket traffic after the
 * upgrade is not attributed; url.path is CivetWeb's URL-decoded local_uri_raw. At most 8
 * middlewares exist at once (CivetWeb callbacks carry no user pointer, so each instance
 * uses its own pair of callback functions).
 */
#ifndef OTELPROF_HTTP_CIVETWEB_H
#define OTELPROF_HTTP_CIVETWEB_H

#include <otelprof/http.h>

/* Declared only when <civetweb.h> is available: the library's sources say so with
 * OTELPROF_HTTP_HAVE_CIVETWEB; otherwise the header looks for it (and compiles, empty of these
 * parts, without it). */
#ifndef OTELPROF_HTTP_HAVE_CIVETWEB
#if defined(__has_include)
#if __has_include(<civetweb.h>)
#define OTELPROF_HTTP_HAVE_CIVETWEB 1
#else
#define OTELPROF_HTTP_HAVE_CIVETWEB 0
#endif
#else
#define OTELPROF_HTTP_HAVE_CIVETWEB 1
#endif
#endif
#if OTELPROF_HTTP_HAVE_CIVETWEB
#include <civetweb.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct otelprof_civetweb otelprof_civetweb;

/* A new middleware that installs itself in *callbacks (before mg_start): the application's
 * begin_request and end_request found there are kept and called by the middleware's,
 * under the request's context. http may be NULL (propagation-only, OTEL_PROPAGATORS).
 * NULL on error with *err (may be NULL): OTELPROF_E_INVAL (callbacks NULL),
 * OTELPROF_E_OPTS, OTELPROF_E_NOMEM, OTELPROF_E_TOO_LARGE (8 middlewares already exist).
 * Thread-safe; not async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_civetweb *otelprof_civetweb_new(const otelprof_http_opts *http,
                                                      struct mg_callbacks *callbacks,
                                                      otelprof_status *err);

/* Free after mg_stop of the context that uses it. NULL: no-op. Since 0.1. */
OTELPROF_API void otelprof_civetweb_free(otelprof_civetweb *cw);

#ifdef __cplusplus
}
#endif
#endif /* OTELPROF_HTTP_HAVE_CIVETWEB */
#endif
