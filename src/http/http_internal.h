/* Private declarations of libotelprof-http: the per-request core (request.c) shared by the
 * libmicrohttpd (mhd.c) and CivetWeb (civetweb.c) middleware and the libcurl helper
 * (curl.c). Internal names start with ohttp_; the library is built with hidden
 * visibility, so none of them is exported. */
#ifndef OTELPROF_HTTP_INTERNAL_H
#define OTELPROF_HTTP_INTERNAL_H

/* Which server/client library a source uses: it defines its own to 1 before including
 * this header; the others are off (no probing of system headers, see http.h). */
#ifndef OTELPROF_HTTP_HAVE_MHD
#define OTELPROF_HTTP_HAVE_MHD 0
#endif
#ifndef OTELPROF_HTTP_HAVE_CIVETWEB
#define OTELPROF_HTTP_HAVE_CIVETWEB 0
#endif
#ifndef OTELPROF_HTTP_HAVE_CURL
#define OTELPROF_HTTP_HAVE_CURL 0
#endif
#include <otelprof/http.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy a caller's sz-prefixed options struct into dst (zeroed first), libbpf style:
 * fields beyond the caller's sz stay zero; non-zero bytes beyond ours are refused. */
otelprof_status ohttp_opts_copy(void *dst, size_t dst_size, const void *src);

/* Configuration shared by every request of one middleware instance. */
typedef struct ohttp_core {
    otelprof_http_opts o;
    char *server_address; /* owned copy of o.server_address */
    char *url_scheme;     /* owned copy of o.url_scheme */
    otelprof_propagators props;
    uint32_t route_key; /* registered "http.route" */
    bool route_key_ok;
} ohttp_core;

otelprof_status ohttp_core_init(ohttp_core *core, const otelprof_http_opts *opts);
void ohttp_core_fini(ohttp_core *core);

/* What the server layer read from the request, valid during ohttp_request_start. Any
 * string may be NULL (unknown). Lengths of NULL strings are ignored. */
typedef struct ohttp_reqinfo {
    const char *method;
    const char *path; /* without the query */
    const char *query;
    const char *scheme; /* NULL: the core's url_scheme or "http" */
    const char *host;   /* Host header: server.address/port when not configured */
    const char *user_agent;
    const char *client_address;
    const char *protocol_version; /* "1.1" */
    unsigned listen_port;         /* 0: unknown */
    void *conn;                   /* passed to the route callback */
} ohttp_reqinfo;

/* Values of traceparent/tracestate header fields, gathered by the server layer. Only two
 * traceparent fields are kept (two already make the header invalid); more than
 * OHTTP_MAX_TS_FIELDS tracestate fields drop the tracestate. */
#define OHTTP_MAX_TS_FIELDS 64
typedef struct ohttp_trace_headers {
    const char *tp[2];
    size_t tp_len[2];
    size_t n_tp; /* number seen, capped at 2 */
    const char *ts[OHTTP_MAX_TS_FIELDS];
    size_t ts_len[OHTTP_MAX_TS_FIELDS];
    size_t n_ts;
    bool ts_overflow;
} ohttp_trace_headers;

/* Record one header if it is traceparent or tracestate (name compared case-insensitively).
 * Returns true when it was one of them. */
bool ohttp_trace_headers_add(ohttp_trace_headers *h, const char *name, size_t name_len,
                             const char *value, size_t value_len);

struct otelprof_http_request {
    atomic_int refs;
    const ohttp_core *core;
    bool started;         /* span (or propagation-only context) created */
    bool finished;        /* span ended */
    otelprof_span *span;  /* NULL in propagation-only mode and once ended */
    otelprof_context pub; /* the published ids and flags, as otelprof_attach takes them */
    uint64_t start_ns;
    int status_code;  /* 0: none seen yet */
    size_t route_len; /* 0: no route */
    /* Server-layer fields. */
    void *user_cls;       /* MHD: the application's per-request pointer */
    char *query;          /* MHD: copy of the raw query, from the URI log callback */
    pthread_mutex_t lock; /* route and span calls (set_route may come from any thread) */
    /* Written before being read; not zeroed at creation (a request is created per HTTP
     * request: zeroing ~1 KiB each time shows in profiles). */
    otelprof_span_context sc; /* the context published for this request */
    char method[24];          /* normalised method for the span name */
    char route[OTELPROF_VALUE_MAX + 1];
};

/* Per-call publication record (the public otelprof_http_call is storage for one). */
typedef struct ohttp_call {
    otelprof_http_request *req;
    otelprof_token token;       /* the request's frame */
    otelprof_token route_token; /* a frame re-published by set_route during the call */
    otelprof_scope scope;
    struct ohttp_call *prev;
    uint64_t magic;
} ohttp_call;

otelprof_http_request *ohttp_request_new(const ohttp_core *core);
/* Extract the remote parent, start the SERVER span (or make the propagation-only
 * context). Safe to call once; later calls do nothing. */
void ohttp_request_start(otelprof_http_request *r, const ohttp_reqinfo *info,
                         const ohttp_trace_headers *th);
/* Publish r on the calling thread (core context + trace.h scope) until ohttp_leave. */
void ohttp_enter(otelprof_http_request *r, ohttp_call *call);
void ohttp_leave(ohttp_call *call);
/* error_type: NULL unless the request ended abnormally (then the span's status is ERROR). */
void ohttp_request_finish(otelprof_http_request *r, int status_code, const char *error_type);
void ohttp_request_unref(otelprof_http_request *r);
/* The request published by the innermost ohttp_enter on this thread, or NULL. */
otelprof_http_request *ohttp_current(void);

uint64_t ohttp_now_ns(void);
void ohttp_hex(char *out, const uint8_t *b, size_t n);
/* Case-insensitive ASCII comparison of s[0..n) with a NUL-terminated lowercase word. */
bool ohttp_name_eq(const char *s, size_t n, const char *word);

#endif
