/* CivetWeb middleware (include/otelprof/http_civetweb.h).
 *
 * A request runs on one worker thread from begin_request to end_request, so the request
 * object and its publication live in a thread-local slot between the two. CivetWeb's
 * callbacks get no user pointer: each middleware instance takes one of SLOTS static
 * callback pairs, which find it through the slot table.
 */
#define _GNU_SOURCE
#define OTELPROF_HTTP_HAVE_CIVETWEB 1
#include "http_internal.h" /* first: it says which libraries this file uses */

#include <otelprof/http_civetweb.h>

#include <stdlib.h>
#include <string.h>

#define SLOTS 8

struct otelprof_civetweb {
    ohttp_core core;
    int slot;
    int (*user_begin)(struct mg_connection *);
    void (*user_end)(const struct mg_connection *, int);
};

static _Atomic(struct otelprof_civetweb *) slots[SLOTS];

/* The request this worker thread is running, between begin_request and end_request. */
struct cw_thread {
    otelprof_http_request *r;
    const struct mg_connection *conn;
    ohttp_call call;
};
static __thread struct cw_thread tls_cw;

static void cw_finish(const char *error_type, int status)
{
    struct cw_thread *t = &tls_cw;
    otelprof_http_request *r = t->r;
    t->r = NULL;
    t->conn = NULL;
    ohttp_leave(&t->call);
    ohttp_request_finish(r, status, error_type);
    ohttp_request_unref(r);
}

static int cw_begin(struct otelprof_civetweb *cw, struct mg_connection *conn)
{
    if (!cw)
        return 0;
    if (tls_cw.r) /* the previous request on this thread never saw end_request */
        cw_finish("incomplete", 0);
    const struct mg_request_info *ri = mg_get_request_info(conn);
    otelprof_http_request *r = ri ? ohttp_request_new(&cw->core) : NULL;
    if (!r)
        return cw->user_begin ? cw->user_begin(conn) : 0;
    ohttp_trace_headers th;
    memset(&th, 0, sizeof th);
    const char *host = NULL, *ua = NULL;
    int nh = ri->num_headers < MG_MAX_HEADERS ? ri->num_headers : MG_MAX_HEADERS;
    for (int i = 0; i < nh; i++) {
        const char *name = ri->http_headers[i].name, *value = ri->http_headers[i].value;
        if (!name || !value)
            continue;
        size_t nl = strlen(name);
        if (ohttp_trace_headers_add(&th, name, nl, value, strlen(value)))
            continue;
        if (!host && ohttp_name_eq(name, nl, "host"))
            host = value;
        else if (!ua && ohttp_name_eq(name, nl, "user-agent"))
            ua = value;
    }
    ohttp_reqinfo info = {
        .method = ri->request_method,
        .path = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri,
        .query = ri->query_string,
        .scheme = cw->core.o.url_scheme ? NULL
                  : ri->is_ssl          ? "https"
                                        : "http",
        .host = host,
        .user_agent = ua,
        .client_address = ri->remote_addr,
        .protocol_version = ri->http_version,
        .listen_port = ri->server_port > 0 ? (unsigned)ri->server_port : 0,
        .conn = conn,
    };
    ohttp_request_start(r, &info, &th);
    tls_cw.r = r;
    tls_cw.conn = conn;
    ohttp_enter(r, &tls_cw.call);
    return cw->user_begin ? cw->user_begin(conn) : 0;
}

static void cw_end(struct otelprof_civetweb *cw, const struct mg_connection *conn, int status)
{
    if (cw && cw->user_end)
        cw->user_end(conn, status);
    if (tls_cw.r && tls_cw.conn == conn)
        cw_finish(NULL, status);
}

#define SLOT_FNS(i)                                                                                \
    static int begin_##i(struct mg_connection *c)                                                  \
    {                                                                                              \
        return cw_begin(atomic_load_explicit(&slots[i], memory_order_acquire), c);                 \
    }                                                                                              \
    static void end_##i(const struct mg_connection *c, int s)                                      \
    {                                                                                              \
        cw_end(atomic_load_explicit(&slots[i], memory_order_acquire), c, s);                       \
    }
SLOT_FNS(0)
SLOT_FNS(1)
SLOT_FNS(2)
SLOT_FNS(3)
SLOT_FNS(4)
SLOT_FNS(5)
SLOT_FNS(6)
SLOT_FNS(7)

static int (*const begin_fns[SLOTS])(struct mg_connection *) = {begin_0, begin_1, begin_2, begin_3,
                                                                begin_4, begin_5, begin_6, begin_7};
static void (*const end_fns[SLOTS])(const struct mg_connection *,
                                    int) = {end_0, end_1, end_2, end_3, end_4, end_5, end_6, end_7};

otelprof_civetweb *otelprof_civetweb_new(const otelprof_http_opts *http,
                                         struct mg_callbacks *callbacks, otelprof_status *err)
{
    otelprof_status rc = OTELPROF_E_INVAL;
    struct otelprof_civetweb *cw = NULL;
    if (!callbacks)
        goto fail;
    if (!(cw = calloc(1, sizeof *cw))) {
        rc = OTELPROF_E_NOMEM;
        goto fail;
    }
    if ((rc = ohttp_core_init(&cw->core, http)) != OTELPROF_OK)
        goto fail;
    cw->slot = -1;
    for (int i = 0; i < SLOTS && cw->slot < 0; i++) {
        struct otelprof_civetweb *expect = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &expect, cw))
            cw->slot = i;
    }
    if (cw->slot < 0) {
        ohttp_core_fini(&cw->core);
        rc = OTELPROF_E_TOO_LARGE;
        goto fail;
    }
    cw->user_begin = callbacks->begin_request;
    cw->user_end = callbacks->end_request;
    callbacks->begin_request = begin_fns[cw->slot];
    callbacks->end_request = end_fns[cw->slot];
    if (err)
        *err = OTELPROF_OK;
    return cw;
fail:
    free(cw);
    if (err)
        *err = rc;
    return NULL;
}

void otelprof_civetweb_free(otelprof_civetweb *cw)
{
    if (!cw)
        return;
    atomic_store(&slots[cw->slot], NULL);
    ohttp_core_fini(&cw->core);
    free(cw);
}
