/* The per-request core of the HTTP middleware (include/otelprof/http.h): extract the
 * remote parent, start the SERVER span or make the propagation-only context, publish it
 * per call, end it. Server libraries (mhd.c, civetweb.c) feed it what they read. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "util/opts.h"

#include <otelprof/sdk.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define CALL_MAGIC UINT64_C(0x6f74656c68747470) /* "otelhttp": an entered public call */

_Static_assert(sizeof(ohttp_call) <= sizeof(otelprof_http_call),
               "otelprof_http_call must hold an ohttp_call");

static __thread ohttp_call *tls_call; /* innermost publication on this thread */

/* ---- small helpers ---- */

uint64_t ohttp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ohttp_hex(char *out, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

bool ohttp_name_eq(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return i == n && word[i] == '\0';
}

otelprof_status ohttp_opts_copy(void *dst, size_t dst_size, const void *src)
{
    memset(dst, 0, dst_size);
    otelprof_status rc = op_opts_copy(dst, dst_size, src);
    memcpy(dst, &dst_size, sizeof dst_size); /* our own size from here on */
    return rc;
}

/* ---- core ---- */

otelprof_status ohttp_core_init(ohttp_core *core, const otelprof_http_opts *opts)
{
    memset(core, 0, sizeof *core);
    otelprof_status rc = ohttp_opts_copy(&core->o, sizeof core->o, opts);
    if (rc != OTELPROF_OK)
        return rc;
    if ((core->o.server_address && !(core->server_address = strdup(core->o.server_address))) ||
        (core->o.url_scheme && !(core->url_scheme = strdup(core->o.url_scheme)))) {
        ohttp_core_fini(core);
        return OTELPROF_E_NOMEM;
    }
    core->o.server_address = core->server_address;
    core->o.url_scheme = core->url_scheme;
    if (core->o.propagators)
        core->props = *core->o.propagators;
    else
        (void)otelprof_propagators_from_env(&core->props);
    core->o.propagators = NULL; /* the caller's object need not outlive us */
    if (!core->o.no_thread_route) {
        core->route_key_ok = otelprof_key_register("http.route", &core->route_key) == OTELPROF_OK;
        if (!core->route_key_ok)
            otelprof_log(OTELPROF_LOG_WARN, "otelprof http: cannot register http.route; "
                                            "the thread context will not carry it");
    }
    return OTELPROF_OK;
}

void ohttp_core_fini(ohttp_core *core)
{
    free(core->server_address);
    free(core->url_scheme);
    core->server_address = core->url_scheme = NULL;
}

/* ---- trace headers ---- */

bool ohttp_trace_headers_add(ohttp_trace_headers *h, const char *name, size_t name_len,
                             const char *value, size_t value_len)
{
    if (name_len == 11 && ohttp_name_eq(name, name_len, "traceparent")) {
        if (h->n_tp < 2) {
            h->tp[h->n_tp] = value;
            h->tp_len[h->n_tp] = value_len;
            h->n_tp++;
        }
        return true;
    }
    if (name_len == 10 && ohttp_name_eq(name, name_len, "tracestate")) {
        if (h->n_ts < OHTTP_MAX_TS_FIELDS) {
            h->ts[h->n_ts] = value;
            h->ts_len[h->n_ts] = value_len;
            h->n_ts++;
        } else {
            h->ts_overflow = true;
        }
        return true;
    }
    return false;
}

/* A read-only carrier over the gathered fields, so the library's extract applies every
 * W3C rule (one traceparent exactly, tracestate only with a valid one, fields joined). */
static size_t th_count(void *user, const char *name, size_t name_len)
{
    const ohttp_trace_headers *h = user;
    if (ohttp_name_eq(name, name_len, "traceparent"))
        return h->n_tp;
    if (ohttp_name_eq(name, name_len, "tracestate"))
        return h->ts_overflow ? 0 : h->n_ts;
    return 0;
}

static const char *th_get(void *user, const char *name, size_t name_len, size_t index,
                          size_t *value_len)
{
    const ohttp_trace_headers *h = user;
    if (ohttp_name_eq(name, name_len, "traceparent") && index < h->n_tp) {
        *value_len = h->tp_len[index];
        return h->tp[index];
    }
    if (ohttp_name_eq(name, name_len, "tracestate") && !h->ts_overflow && index < h->n_ts) {
        *value_len = h->ts_len[index];
        return h->ts[index];
    }
    return NULL;
}

/* ---- requests ---- */

otelprof_http_request *ohttp_request_new(const ohttp_core *core)
{
    otelprof_http_request *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, offsetof(otelprof_http_request, lock)); /* the rest is written before use */
    r->method[0] = r->route[0] = '\0';
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->core = core;
    r->start_ns = ohttp_now_ns();
    return r;
}

static const char *const known_methods[] = {"GET",   "POST",    "PUT",     "DELETE", "HEAD",
                                            "PATCH", "OPTIONS", "CONNECT", "TRACE"};

static bool method_known(const char *m)
{
    for (size_t i = 0; i < sizeof known_methods / sizeof known_methods[0]; i++)
        if (strcmp(m, known_methods[i]) == 0)
            return true;
    return false;
}

/* "{method} {route}", "{method}", or "HTTP" for methods outside the known set. */
static void span_name(const otelprof_http_request *r, char *out, size_t cap)
{
    const char *m = r->method[0] ? r->method : "HTTP";
    if (r->route_len)
        snprintf(out, cap, "%s %s", m, r->route);
    else
        snprintf(out, cap, "%s", m);
}

static void set_route_locked(otelprof_http_request *r, const char *route)
{
    size_t n = strlen(route);
    if (n > OTELPROF_VALUE_MAX)
        n = OTELPROF_VALUE_MAX;
    memcpy(r->route, route, n);
    r->route[n] = '\0';
    r->route_len = n;
}

/* Host header -> address and port ("h", "h:p", "[v6]", "[v6]:p"). */
static void parse_host(const char *host, char *addr, size_t cap, long *port)
{
    *port = -1;
    addr[0] = '\0';
    if (!host)
        return;
    const char *end = host + strlen(host), *colon = NULL;
    if (*host == '[') {
        const char *rb = strchr(host, ']');
        if (!rb)
            return;
        size_t n = (size_t)(rb - host - 1);
        if (n >= cap)
            return;
        memcpy(addr, host + 1, n);
        addr[n] = '\0';
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(host, ':');
        size_t n = (size_t)((colon ? colon : end) - host);
        if (n >= cap)
            return;
        memcpy(addr, host, n);
        addr[n] = '\0';
    }
    if (colon && colon[1]) {
        char *e = NULL;
        long p = strtol(colon + 1, &e, 10);
        if (e && *e == '\0' && p > 0 && p <= 65535)
            *port = p;
    }
}

void ohttp_request_start(otelprof_http_request *r, const ohttp_reqinfo *info,
                         const ohttp_trace_headers *th)
{
    if (r->started)
        return;
    const ohttp_core *core = r->core;
    otelprof_span_context remote;
    otelprof_carrier carrier =
        OTELPROF_CARRIER_INIT(.user = (void *)th, .count = th_count, .get = th_get);
    if (otelprof_propagation_extract(&core->props, &carrier, &remote, NULL) != OTELPROF_OK)
        memset(&remote, 0, sizeof remote);
    bool have_parent = otelprof_span_context_is_valid(&remote);

    const char *method = info->method ? info->method : "";
    bool known = method_known(method);
    r->method[0] = '\0';
    if (known) /* known methods are short; the buffer holds any of them */
        memcpy(r->method, method, strlen(method) + 1);
    if (core->o.route && info->path) {
        const char *route = core->o.route(core->o.route_arg, info->conn, method, info->path);
        if (route && *route)
            set_route_locked(r, route);
    }

    if (core->o.tracer) {
        const char *scheme = info->scheme         ? info->scheme
                             : core->o.url_scheme ? core->o.url_scheme
                                                  : "http";
        char host_addr[256];
        long host_port;
        parse_host(info->host, host_addr, sizeof host_addr, &host_port);
        const char *saddr = core->o.server_address ? core->o.server_address
                            : host_addr[0]         ? host_addr
                                                   : NULL;
        long sport = core->o.server_port ? (long)core->o.server_port
                     : host_port > 0     ? host_port
                     : info->listen_port ? (long)info->listen_port
                                         : -1;
        otelprof_kv a[14];
        size_t n = 0;
        a[n++] = OTELPROF_KV_STR("http.request.method", known ? method : "_OTHER");
        if (!known)
            a[n++] = OTELPROF_KV_STR("http.request.method_original", method);
        if (info->path)
            a[n++] = OTELPROF_KV_STR("url.path", info->path);
        if (info->query && *info->query)
            a[n++] = OTELPROF_KV_STR("url.query", info->query);
        a[n++] = OTELPROF_KV_STR("url.scheme", scheme);
        if (r->route_len)
            a[n++] = OTELPROF_KV_STR("http.route", r->route);
        if (saddr)
            a[n++] = OTELPROF_KV_STR("server.address", saddr);
        if (sport > 0)
            a[n++] = OTELPROF_KV_INT("server.port", sport);
        if (info->client_address && *info->client_address)
            a[n++] = OTELPROF_KV_STR("client.address", info->client_address);
        if (info->user_agent)
            a[n++] = OTELPROF_KV_STR("user_agent.original", info->user_agent);
        if (info->protocol_version && *info->protocol_version)
            a[n++] = OTELPROF_KV_STR("network.protocol.version", info->protocol_version);
        char name[OTELPROF_VALUE_MAX + 32];
        span_name(r, name, sizeof name);
        otelprof_span_start_opts so =
            OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER,
                                     .parent = have_parent ? &remote : NULL, .root = !have_parent,
                                     .start_time_ns = r->start_ns, .attrs = a, .n_attrs = n);
        /* Start inside a cleared frame: if the tracer is (wrongly) a wrapped one that
         * publishes the span on this thread, detaching the frame unwinds that too, so
         * nothing stays published between this request's calls. */
        otelprof_token guard = OTELPROF_TOKEN_INIT;
        otelprof_status gs = otelprof_clear(&guard);
        otelprof_span *span = otelprof_tracer_start_span(core->o.tracer, name, &so);
        if (gs == OTELPROF_OK)
            (void)otelprof_detach(&guard);
        const otelprof_span_context *sc = otelprof_span_get_context(span);
        if (sc && otelprof_span_context_is_valid(sc)) {
            r->sc = *sc;
        } else {
            memset(&r->sc, 0, sizeof r->sc);
        }
        r->span = span;
    } else {
        /* Propagation-only: the caller's trace id and flags, a span id of our own. */
        if (have_parent) {
            r->sc = remote;
        } else {
            memset(&r->sc, 0, offsetof(otelprof_span_context, tracestate));
            otelprof_tracestate_clear(&r->sc.tracestate);
            otelprof_random_trace_id(r->sc.trace_id);
            r->sc.trace_flags = OTELPROF_FLAG_RANDOM_TRACE_ID;
        }
        otelprof_random_span_id(r->sc.span_id);
    }
    r->sc.is_remote = false;
    memcpy(r->pub.trace_id, r->sc.trace_id, sizeof r->pub.trace_id);
    memcpy(r->pub.span_id, r->sc.span_id, sizeof r->pub.span_id);
    r->pub.trace_flags = r->sc.trace_flags;
    r->started = true;
}

static otelprof_status attach_with_route(otelprof_http_request *r, otelprof_token *tok)
{
    const ohttp_core *core = r->core;
    otelprof_attr attr;
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    if (core->route_key_ok && r->route_len) {
        attr = (otelprof_attr){core->route_key, r->route, r->route_len};
        n = 1;
    }
    otelprof_status rc = otelprof_attach(&r->pub, n ? &attr : NULL, n, tok);
    if (rc == OTELPROF_E_UTF8 && n) /* a route that is not UTF-8: publish the ids alone */
        rc = otelprof_attach(&r->pub, NULL, 0, tok);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void ohttp_enter(otelprof_http_request *r, ohttp_call *call)
{
    memset(call, 0, sizeof *call);
    call->req = r;
    if (r && r->started && otelprof_span_context_is_valid(&r->sc)) {
        (void)attach_with_route(r, &call->token);
        (void)otelprof_scope_enter(&r->sc, &call->scope);
    }
    call->prev = tls_call;
    tls_call = call;
}

void ohttp_leave(ohttp_call *call)
{
    /* Restore in reverse order; the request frame's detach also unwinds a route frame
     * set_route pushed above it, and anything the application left attached. */
    tls_call = call->prev;
    (void)otelprof_scope_leave(&call->scope);
    (void)otelprof_detach(&call->token);
    memset(&call->route_token, 0, sizeof call->route_token);
    call->req = NULL;
}

otelprof_http_request *ohttp_current(void)
{
    return tls_call ? tls_call->req : NULL;
}

void ohttp_request_finish(otelprof_http_request *r, int status_code, const char *error_type)
{
    pthread_mutex_lock(&r->lock);
    if (r->finished) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->finished = true;
    if (status_code > 0)
        r->status_code = status_code;
    otelprof_span *span = r->span;
    r->span = NULL;
    pthread_mutex_unlock(&r->lock);
    if (!span)
        return;
    otelprof_kv a[2];
    size_t n = 0;
    char code[16];
    if (r->status_code > 0)
        a[n++] = OTELPROF_KV_INT("http.response.status_code", r->status_code);
    if (!error_type && r->status_code >= 500) {
        snprintf(code, sizeof code, "%d", r->status_code);
        error_type = code;
    }
    if (error_type)
        a[n++] = OTELPROF_KV_STR("error.type", error_type);
    if (n)
        otelprof_span_set_attributes(span, a, n);
    if (error_type)
        otelprof_span_set_status(span, OTELPROF_SPAN_STATUS_ERROR, NULL);
    otelprof_span_end(span, 0);
}

void ohttp_request_unref(otelprof_http_request *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->span) /* never finished (should not happen): end it rather than leak it */
        ohttp_request_finish(r, 0, "incomplete");
    pthread_mutex_destroy(&r->lock);
    free(r->query);
    free(r);
}

/* ---- public request API ---- */

otelprof_http_request *otelprof_http_current_request(void)
{
    return ohttp_current();
}

otelprof_http_request *otelprof_http_request_ref(otelprof_http_request *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void otelprof_http_request_unref(otelprof_http_request *r)
{
    ohttp_request_unref(r);
}

const otelprof_span_context *otelprof_http_request_context(const otelprof_http_request *r)
{
    return r && r->started ? &r->sc : NULL;
}

otelprof_span *otelprof_http_request_span(otelprof_http_request *r)
{
    if (!r)
        return NULL;
    pthread_mutex_lock(&r->lock);
    otelprof_span *s = r->span;
    pthread_mutex_unlock(&r->lock);
    return s;
}

otelprof_status otelprof_http_request_set_route(otelprof_http_request *r, const char *route)
{
    if (!r || !route || !*route)
        return OTELPROF_E_INVAL;
    pthread_mutex_lock(&r->lock);
    set_route_locked(r, route);
    if (r->span) {
        char name[OTELPROF_VALUE_MAX + 32];
        span_name(r, name, sizeof name);
        otelprof_span_update_name(r->span, name);
        otelprof_kv kv = {"http.route",
                          {.type = OTELPROF_VALUE_STRING, .u.str = {r->route, r->route_len}}};
        otelprof_span_set_attributes(r->span, &kv, 1);
    }
    pthread_mutex_unlock(&r->lock);
    /* Republish now if this thread is running r: a frame above the call's own, which the
     * call's detach unwinds. */
    ohttp_call *c = tls_call;
    if (c && c->req == r && r->started && r->core->route_key_ok &&
        otelprof_span_context_is_valid(&r->sc)) {
        otelprof_token t = OTELPROF_TOKEN_INIT;
        if (attach_with_route(r, &t) == OTELPROF_OK)
            c->route_token = t;
    }
    return OTELPROF_OK;
}

otelprof_status otelprof_http_set_route(const char *route)
{
    otelprof_http_request *r = ohttp_current();
    return r ? otelprof_http_request_set_route(r, route) : OTELPROF_E_NO_CONTEXT;
}

otelprof_status otelprof_http_request_enter(otelprof_http_request *r, otelprof_http_call *call)
{
    if (!r || !call || !r->started)
        return OTELPROF_E_INVAL;
    ohttp_call *c = (ohttp_call *)(void *)call;
    ohttp_enter(r, c);
    c->magic = CALL_MAGIC;
    return OTELPROF_OK;
}

otelprof_status otelprof_http_request_leave(otelprof_http_call *call)
{
    ohttp_call *c = (ohttp_call *)(void *)call;
    if (!c || c->magic != CALL_MAGIC)
        return OTELPROF_E_INVAL;
    if (tls_call != c) {
        /* Not the innermost on this thread: leave it only if it is on this thread at all,
         * unwinding the ones entered after it (like detaching an outer token). */
        ohttp_call *p = tls_call;
        while (p && p != c)
            p = p->prev;
        if (!p)
            return OTELPROF_E_WRONG_THREAD;
        tls_call = c;
    }
    ohttp_leave(c);
    c->magic = 0;
    return OTELPROF_OK;
}
