/* libmicrohttpd middleware (include/otelprof/http.h, otelprof_mhd_*).
 *
 * Per request, MHD calls (on the thread that processes the connection, whatever the
 * threading mode): the URI log callback once, the access handler one or more times (more
 * with upload data, and again after a resume), content readers while the body is sent,
 * and the request-completed callback once. The request object is created in the URI log
 * callback (so the start time is the request line's and completion is always notified),
 * the span starts at the first handler call (headers are parsed by then), every call is
 * wrapped in ohttp_enter/ohttp_leave, and completion ends the span. Connections of other
 * requests may be processed on the same thread between two calls: nothing stays published
 * in between.
 */
#define _GNU_SOURCE
#define OTELPROF_HTTP_HAVE_MHD 1
#include "http_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct otelprof_mhd {
    ohttp_core core;
    otelprof_mhd_opts o;
    struct MHD_OptionItem items[3];
};

/* ---- request start ---- */

struct gather {
    ohttp_trace_headers th;
    const char *host;
    const char *user_agent;
};

static OTELPROF_MHD_RESULT gather_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                         size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct gather *g = cls;
    if (!key || !value)
        return MHD_YES;
    if (ohttp_trace_headers_add(&g->th, key, key_size, value, value_size))
        return MHD_YES;
    if (!g->host && key_size == 4 && ohttp_name_eq(key, key_size, "host"))
        g->host = value;
    else if (!g->user_agent && key_size == 10 && ohttp_name_eq(key, key_size, "user-agent"))
        g->user_agent = value;
    return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static unsigned listen_port(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    if (!ci || !ci->daemon)
        return 0;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

static void start_request(struct otelprof_mhd *m, otelprof_http_request *r,
                          struct MHD_Connection *c, const char *url, const char *method,
                          const char *version)
{
    struct gather g;
    /* Only the counters: the field arrays are written before they are read. */
    g.th.n_tp = g.th.n_ts = 0;
    g.th.ts_overflow = false;
    g.host = g.user_agent = NULL;
    /* Every field, in order: duplicates (two traceparent) are seen as such. */
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, gather_header, &g);
    ohttp_reqinfo info = {.method = method, .path = url, .conn = c};
    char client[INET6_ADDRSTRLEN];
    if (m->core.o.tracer) { /* attributes only matter for a span */
        client_address(c, client, sizeof client);
        info.query = r->query;
        info.host = g.host;
        info.user_agent = g.user_agent;
        info.client_address = client;
        if (version && strncmp(version, "HTTP/", 5) == 0)
            info.protocol_version = version + 5;
        info.listen_port = m->core.o.server_port ? 0 : listen_port(c);
    }
    ohttp_request_start(r, &info, &g.th);
}

static void note_status(otelprof_http_request *r, struct MHD_Connection *c)
{
#if MHD_VERSION >= 0x00097201
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (ci && ci->http_status)
        r->status_code = (int)ci->http_status;
#else
    (void)r, (void)c;
#endif
}

/* ---- the callbacks MHD calls ---- */

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct otelprof_mhd *m = cls;
    otelprof_http_request *r = ohttp_request_new(&m->core);
    if (!r) {
        /* No request object: the handler then makes one or refuses the request. */
        return NULL;
    }
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (q && q[1] && m->core.o.tracer) /* url.query, for the span */
        r->query = strdup(q + 1);      /* NULL on failure: url.query is left out */
    if (m->o.uri_log)
        r->user_cls = m->o.uri_log(m->o.uri_log_cls, uri, c);
    return r;
}

OTELPROF_MHD_RESULT otelprof_mhd_access_handler(void *cls, struct MHD_Connection *connection,
                                                const char *url, const char *method,
                                                const char *version, const char *upload_data,
                                                size_t *upload_data_size, void **req_cls)
{
    struct otelprof_mhd *m = cls;
    otelprof_http_request *r = *req_cls;
    if (!r) {
        /* The URI log callback could not allocate, or the daemon was started without
         * otelprof_mhd_options (then completion is not seen either: see http.h). */
        r = ohttp_request_new(&m->core);
        if (!r)
            return MHD_NO; /* MHD closes the connection */
        *req_cls = r;
    }
    if (!r->started)
        start_request(m, r, connection, url, method, version);
    ohttp_call call;
    ohttp_enter(r, &call);
    OTELPROF_MHD_RESULT ret = m->o.handler(m->o.handler_cls, connection, url, method, version,
                                           upload_data, upload_data_size, &r->user_cls);
    if (r->span) /* the status only matters for a span */
        note_status(r, connection);
    ohttp_leave(&call);
    return ret;
}

static const char *termination_error(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client_abort";
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
    default:
        return "_OTHER";
    }
}

static void completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct otelprof_mhd *m = cls;
    otelprof_http_request *r = *req_cls;
    if (!r) {
        if (m->o.notify_completed)
            m->o.notify_completed(m->o.notify_completed_cls, connection, req_cls, toe);
        return;
    }
    if (r->started) {
        if (r->span)
            note_status(r, connection);
        if (m->o.notify_completed) {
            ohttp_call call;
            ohttp_enter(r, &call);
            m->o.notify_completed(m->o.notify_completed_cls, connection, &r->user_cls, toe);
            ohttp_leave(&call);
        }
        ohttp_request_finish(r, r->status_code, termination_error(toe));
    } else if (m->o.notify_completed && (m->o.uri_log || r->user_cls)) {
        /* MHD refused the request before the handler (e.g. headers too large): no span,
         * but an application URI log callback saw it and expects its clean-up. */
        m->o.notify_completed(m->o.notify_completed_cls, connection, &r->user_cls, toe);
    }
    *req_cls = NULL;
    ohttp_request_unref(r);
}

/* ---- content readers ---- */

struct reader {
    otelprof_http_request *r; /* a reference, or NULL */
    MHD_ContentReaderCallback crc;
    void *cls;
    MHD_ContentReaderFreeCallback crfc;
};

static ssize_t reader_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct reader *rd = cls;
    ohttp_call call;
    ohttp_enter(rd->r, &call);
    ssize_t n = rd->crc(rd->cls, pos, buf, max);
    ohttp_leave(&call);
    return n;
}

static void reader_free(void *cls)
{
    struct reader *rd = cls;
    if (rd->crfc) {
        ohttp_call call;
        ohttp_enter(rd->r, &call);
        rd->crfc(rd->cls);
        ohttp_leave(&call);
    }
    ohttp_request_unref(rd->r);
    free(rd);
}

struct MHD_Response *otelprof_mhd_response_from_callback(uint64_t size, size_t block_size,
                                                         MHD_ContentReaderCallback crc,
                                                         void *crc_cls,
                                                         MHD_ContentReaderFreeCallback crfc)
{
    otelprof_http_request *r = ohttp_current();
    if (!r || !crc)
        return MHD_create_response_from_callback(size, block_size, crc, crc_cls, crfc);
    struct reader *rd = malloc(sizeof *rd);
    if (!rd)
        return NULL;
    *rd = (struct reader){otelprof_http_request_ref(r), crc, crc_cls, crfc};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, block_size, reader_read, rd, reader_free);
    if (!resp) {
        ohttp_request_unref(rd->r);
        free(rd);
    }
    return resp;
}

/* ---- suspend / resume ---- */

otelprof_http_request *otelprof_mhd_suspend(struct MHD_Connection *connection)
{
    otelprof_http_request *r = otelprof_http_request_ref(ohttp_current());
    MHD_suspend_connection(connection);
    return r;
}

void otelprof_mhd_resume(struct MHD_Connection *connection, otelprof_http_request *r)
{
    MHD_resume_connection(connection);
    ohttp_request_unref(r);
}

/* ---- lifecycle ---- */

otelprof_mhd *otelprof_mhd_new(const otelprof_http_opts *http, const otelprof_mhd_opts *opts,
                               otelprof_status *err)
{
    otelprof_status rc = OTELPROF_E_INVAL;
    struct otelprof_mhd *m = NULL;
    if (!opts)
        goto fail;
    if (!(m = calloc(1, sizeof *m))) {
        rc = OTELPROF_E_NOMEM;
        goto fail;
    }
    if ((rc = ohttp_opts_copy(&m->o, sizeof m->o, opts)) != OTELPROF_OK)
        goto fail;
    if (!m->o.handler) {
        rc = OTELPROF_E_INVAL;
        goto fail;
    }
    if ((rc = ohttp_core_init(&m->core, http)) != OTELPROF_OK)
        goto fail;
    /* MHD_OPTION_ARRAY: options that take two pointers carry the function in `value`. */
    m->items[0] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, m};
    m->items[1] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, m};
    m->items[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (err)
        *err = OTELPROF_OK;
    return m;
fail:
    free(m);
    if (err)
        *err = rc;
    return NULL;
}

void otelprof_mhd_free(otelprof_mhd *m)
{
    if (!m)
        return;
    ohttp_core_fini(&m->core);
    free(m);
}

const struct MHD_OptionItem *otelprof_mhd_options(const otelprof_mhd *m)
{
    return m ? m->items : NULL;
}
