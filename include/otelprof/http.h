/* otelprof HTTP middleware: the second way in. Set the context once per request.
 *
 * For each incoming request the middleware reads the W3C traceparent/tracestate headers,
 * starts a SERVER span whose parent is the remote caller (or, without a tracer, makes a
 * propagation-only context: the caller's trace id with a new span id), and publishes that
 * context on the thread around every piece of work the server library runs for the
 * request (otelprof_attach/otelprof_detach, see context.h), restoring the thread's
 * previous context after each piece. It also makes the context current for trace.h
 * (otelprof_current_span_context), so spans the application starts become children of
 * the SERVER span and otelprof_curl_begin (http_curl.h) propagates it downstream.
 *
 * This header has the parts shared by every server library and, when <microhttpd.h> is
 * available, the libmicrohttpd middleware (otelprof_mhd_*). CivetWeb: http_civetweb.h.
 * Library: libotelprof-http (pkg-config / CMake target otelprof::http), which links
 * libotelprof-trace and libotelprof.
 *
 * Semantic conventions (stable HTTP server spans): span name "{method} {http.route}" or
 * "{method}"; attributes http.request.method (+ http.request.method_original for unknown
 * methods, then "_OTHER"), url.path, url.query (when present), url.scheme, http.route
 * (when known), server.address, server.port, client.address, user_agent.original,
 * network.protocol.version, http.response.status_code; status ERROR and error.type for
 * 5xx responses and for requests that end without a response. The thread-context record
 * carries http.route as an attribute when it is known.
 *
 * See docs/http.md for the threading modes, the per-call publication and the limits.
 */
#ifndef OTELPROF_HTTP_H
#define OTELPROF_HTTP_H

#include <otelprof/context.h>
#include <otelprof/propagation.h>
#include <otelprof/trace.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Shared options and the request handle
 * ------------------------------------------------------------------------------------- */

/* Route naming: return the low-cardinality route template of a request (e.g.
 * "/users/{id}") or NULL when there is none. conn is the server library's connection
 * (struct MHD_Connection * or struct mg_connection *); path has no query. The string is
 * copied (at most 255 bytes are kept) before the callback's next call on this thread.
 * Called once per request, on the thread that handles it, before the span starts. */
typedef const char *(*otelprof_http_route_fn)(void *arg, void *conn, const char *method,
                                              const char *path);

/* Fill with OTELPROF_HTTP_OPTS(...) so that sz is set; fields the caller's struct does
 * not cover take their defaults (libbpf OPTS convention). Strings are copied. */
typedef struct otelprof_http_opts {
    size_t sz;
    /* SERVER spans are started through this tracer. Give a tracer of an UNWRAPPED
     * provider (the middleware publishes per call itself; see docs/http.md). NULL:
     * propagation-only mode, no span: the published context is the incoming trace id and
     * flags with a new random span id, or, without a valid traceparent, a new random
     * trace id with the random-trace-id flag (not sampled). */
    otelprof_tracer *tracer;
    /* Which headers to read. NULL: OTEL_PROPAGATORS (read once, at creation). Only
     * tracecontext matters here; baggage is not read. */
    const otelprof_propagators *propagators;
    /* Route naming (see above); NULL: the route is unknown until the application calls
     * otelprof_http_request_set_route. */
    otelprof_http_route_fn route;
    void *route_arg;
    /* server.address / server.port. NULL / 0: from the Host header (port: the Host
     * header's, else the listening port when the server library tells it). */
    const char *server_address;
    uint16_t server_port;
    /* url.scheme. NULL: "http" (CivetWeb: "https" on TLS connections). */
    const char *url_scheme;
    /* Do not publish http.route in the thread-context record. */
    bool no_thread_route;
} otelprof_http_opts;
#define OTELPROF_HTTP_OPTS(...)                                                                    \
    ((otelprof_http_opts){.sz = sizeof(otelprof_http_opts), __VA_ARGS__})

/* One request seen by a middleware. Owned by the middleware; hold it past the request's
 * callbacks only through otelprof_http_request_ref. */
typedef struct otelprof_http_request otelprof_http_request;

/* The request whose context the calling thread publishes through the middleware (inside
 * a wrapped handler, content reader or completion callback, or between
 * otelprof_http_request_enter and _leave), or NULL. Valid during that call.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_http_request *otelprof_http_current_request(void);

/* Keep r alive beyond its callbacks (e.g. for work on another thread while the
 * connection is suspended); returns r. NULL-safe. Thread-safe. Since 0.1. */
OTELPROF_API otelprof_http_request *otelprof_http_request_ref(otelprof_http_request *r);
/* Drop a reference taken with otelprof_http_request_ref. NULL: no-op. Thread-safe. */
OTELPROF_API void otelprof_http_request_unref(otelprof_http_request *r);

/* The context published for r (the SERVER span's, or the propagation-only one); valid as
 * long as r is. NULL when r is NULL or not started yet. Thread-safe. Since 0.1. */
OTELPROF_API const otelprof_span_context *
otelprof_http_request_context(const otelprof_http_request *r);

/* The SERVER span, to add attributes or events while the request runs; NULL in
 * propagation-only mode and once the request has completed (the middleware ends it). Use
 * it only from the request's own callbacks or while holding a reference on a thread that
 * the request's callbacks are not running on (a span is not for two threads at once).
 * Since 0.1. */
OTELPROF_API otelprof_span *otelprof_http_request_span(otelprof_http_request *r);

/* Set http.route (copied, at most 255 bytes kept; NULL or "" clears nothing and returns
 * OTELPROF_E_INVAL): renames the span "{method} {route}", sets the attribute and, when
 * called on a thread that currently publishes r, republishes at once with the route; later
 * calls publish it too. Thread-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_http_request_set_route(otelprof_http_request *r,
                                                             const char *route);
/* otelprof_http_request_set_route on otelprof_http_current_request(); OTELPROF_E_NO_CONTEXT
 * outside a request. Since 0.1. */
OTELPROF_API otelprof_status otelprof_http_set_route(const char *route);

/* Storage for one publication of a request on a thread. Treat as opaque. */
typedef struct otelprof_http_call {
    uint64_t priv[10];
} otelprof_http_call;

/* Publish r on the calling thread until otelprof_http_request_leave(call): the core
 * context (otelprof_attach) and the trace.h scope. For work done for the request outside
 * the server library's callbacks, e.g. on a worker thread between MHD_suspend_connection
 * and MHD_resume_connection. Enter/leave nest like otelprof_attach/detach and must be
 * paired on one thread; call must stay in place in between. Hold a reference on r while
 * it is entered on a thread other than the request's own. OTELPROF_E_INVAL for NULL
 * arguments or a request not started yet; otherwise OTELPROF_OK even when the core could
 * not publish (e.g. OTELPROF_E_DEPTH, then nothing is published). Since 0.1. */
OTELPROF_API otelprof_status otelprof_http_request_enter(otelprof_http_request *r,
                                                         otelprof_http_call *call);
OTELPROF_API otelprof_status otelprof_http_request_leave(otelprof_http_call *call);

/* ---------------------------------------------------------------------------------------
 * libmicrohttpd (include <microhttpd.h>; available when libotelprof-http was built with it)
 * ------------------------------------------------------------------------------------- */
/* Declared only when <microhttpd.h> is available: the library's sources say so with
 * OTELPROF_HTTP_HAVE_MHD; otherwise the header looks for it (and compiles, empty of these parts,
 * without it). */
#ifndef OTELPROF_HTTP_HAVE_MHD
#if defined(__has_include)
#if __has_include(<microhttpd.h>)
#define OTELPROF_HTTP_HAVE_MHD 1
#else
#define OTELPROF_HTTP_HAVE_MHD 0
#endif
#else
#define OTELPROF_HTTP_HAVE_MHD 1
#endif
#endif
#if OTELPROF_HTTP_HAVE_MHD
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <microhttpd.h>
#endif

#ifdef MHD_VERSION
#if MHD_VERSION >= 0x00097002
#define OTELPROF_MHD_RESULT enum MHD_Result
#else
#define OTELPROF_MHD_RESULT int
#endif

/* A libmicrohttpd middleware: wraps the application's MHD_AccessHandlerCallback.
 *
 * Use:
 *     otelprof_mhd *m = otelprof_mhd_new(&http_opts, &mhd_opts, &err);
 *     d = MHD_start_daemon(flags, port, NULL, NULL, otelprof_mhd_access_handler, m,
 *                          MHD_OPTION_ARRAY, otelprof_mhd_options(m), ..., MHD_OPTION_END);
 *     ...
 *     MHD_stop_daemon(d);
 *     otelprof_mhd_free(m);
 *
 * The daemon MUST get otelprof_mhd_options(m) (through MHD_OPTION_ARRAY): they install the
 * middleware's request-completed callback (which ends the span and then calls the
 * application's, given here in otelprof_mhd_opts) and URI log callback. Do not pass
 * MHD_OPTION_NOTIFY_COMPLETED or MHD_OPTION_URI_LOG_CALLBACK to MHD yourself: give them
 * in otelprof_mhd_opts. Every threading mode works (internal polling thread with select,
 * poll or epoll, thread pool, thread per connection, external select loop with MHD_run).
 *
 * The application's handler receives its own per-request pointer (*req_cls) exactly as
 * without the middleware, and its completion callback receives the same pointer.
 */
typedef struct otelprof_mhd otelprof_mhd;

/* The application's URI log callback, as MHD_OPTION_URI_LOG_CALLBACK takes it. */
typedef void *(*otelprof_mhd_uri_log_fn)(void *cls, const char *uri, struct MHD_Connection *c);

typedef struct otelprof_mhd_opts {
    size_t sz;
    MHD_AccessHandlerCallback handler; /* required */
    void *handler_cls;
    /* The application's request-completed callback: called with the request's context
     * published, before the span ends. Optional. */
    MHD_RequestCompletedCallback notify_completed;
    void *notify_completed_cls;
    /* Its result is the application's initial *req_cls. Optional. */
    otelprof_mhd_uri_log_fn uri_log;
    void *uri_log_cls;
} otelprof_mhd_opts;
#define OTELPROF_MHD_OPTS(...) ((otelprof_mhd_opts){.sz = sizeof(otelprof_mhd_opts), __VA_ARGS__})

/* A new middleware. http may be NULL (defaults: propagation-only, OTEL_PROPAGATORS). Registers
 * the "http.route" key (initialising otelprof if needed). NULL on error with *err (may be
 * NULL): OTELPROF_E_INVAL (no handler), OTELPROF_E_OPTS, OTELPROF_E_NOMEM. The tracer must
 * outlive the middleware. Thread-safe; not async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_mhd *otelprof_mhd_new(const otelprof_http_opts *http,
                                            const otelprof_mhd_opts *opts, otelprof_status *err);
/* Free after MHD_stop_daemon of every daemon using m. NULL: no-op. Since 0.1. */
OTELPROF_API void otelprof_mhd_free(otelprof_mhd *m);

/* The options the daemon needs, terminated by MHD_OPTION_END, for MHD_OPTION_ARRAY; they
 * live as long as m. Since 0.1. */
OTELPROF_API const struct MHD_OptionItem *otelprof_mhd_options(const otelprof_mhd *m);

/* The access handler to give MHD_start_daemon, with cls = the otelprof_mhd. Per request:
 * on the first call, reads every header value (all fields, so two traceparent fields are
 * seen and make the header invalid) and starts the SERVER span; on every call publishes
 * the request's context around the application's handler and restores the thread's
 * previous context afterwards. Since 0.1. */
OTELPROF_API OTELPROF_MHD_RESULT otelprof_mhd_access_handler(
    void *cls, struct MHD_Connection *connection, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls);

/* MHD_create_response_from_callback whose reader (and free callback) run with the context
 * of the request being handled on the calling thread when the response is created
 * (called from a wrapped handler); outside a request it is the plain function. A response
 * queued on several connections is attributed to the request that created it.
 * Since 0.1. */
OTELPROF_API struct MHD_Response *
otelprof_mhd_response_from_callback(uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
                                    void *crc_cls, MHD_ContentReaderFreeCallback crfc);

/* MHD_suspend_connection from a wrapped handler, returning a reference on the request
 * (NULL outside a request: the connection is still suspended). Work done for it
 * elsewhere runs under otelprof_http_request_enter/leave; otelprof_mhd_resume resumes the
 * connection (MHD then calls the handler again, published as usual) and drops the
 * reference. The daemon needs MHD_ALLOW_SUSPEND_RESUME. Since 0.1. */
OTELPROF_API otelprof_http_request *otelprof_mhd_suspend(struct MHD_Connection *connection);
OTELPROF_API void otelprof_mhd_resume(struct MHD_Connection *connection, otelprof_http_request *r);
#endif /* MHD_VERSION */

#ifdef __cplusplus
}
#endif
#endif
