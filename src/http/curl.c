/* Outgoing propagation through libcurl (include/otelprof/http_curl.h). */
#define _GNU_SOURCE
#define OTELPROF_HTTP_HAVE_CURL 1
#include "http_internal.h" /* first: it says which libraries this file uses */

#include <otelprof/http_curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct otelprof_curl_call {
    CURL *easy;
    struct curl_slist *user_headers; /* restored at end */
    struct curl_slist *ours;         /* the list handed to curl during the transfer */
    otelprof_span *span;
    bool have_ctx;
    otelprof_span_context ctx;
};

/* The current context: trace.h scope first, then the core's published ids. */
static bool current_context(otelprof_span_context *out)
{
    const otelprof_span_context *sc = otelprof_current_span_context();
    if (sc) {
        *out = *sc;
        return true;
    }
    otelprof_context c;
    if (otelprof_current(&c, NULL, 0, NULL) == OTELPROF_OK) {
        memset(out, 0, sizeof *out);
        memcpy(out->trace_id, c.trace_id, sizeof out->trace_id);
        memcpy(out->span_id, c.span_id, sizeof out->span_id);
        out->trace_flags = c.trace_flags;
        return otelprof_span_context_is_valid(out);
    }
    return false;
}

/* Carrier whose set appends "name: value" lines to a curl_slist. */
struct slist_sink {
    struct curl_slist *list;
    bool failed;
};

static otelprof_status slist_set(void *user, const char *name, size_t name_len, const char *value,
                                 size_t value_len)
{
    struct slist_sink *s = user;
    char line[OTELPROF_TRACESTATE_MAX_LEN + 64];
    if (name_len + value_len + 3 > sizeof line)
        return OTELPROF_E_TOO_LARGE;
    int n = snprintf(line, sizeof line, "%.*s: %.*s", (int)name_len, name, (int)value_len, value);
    if (n < 0)
        return OTELPROF_E_INVAL;
    struct curl_slist *l = curl_slist_append(s->list, line);
    if (!l) {
        s->failed = true;
        return OTELPROF_E_NOMEM;
    }
    s->list = l;
    return OTELPROF_OK;
}

otelprof_status otelprof_curl_inject(const otelprof_propagators *props,
                                     const otelprof_span_context *ctx, struct curl_slist **list)
{
    if (!list)
        return OTELPROF_E_INVAL;
    otelprof_span_context cur;
    if (!ctx) {
        if (!current_context(&cur))
            return OTELPROF_OK;
        ctx = &cur;
    }
    otelprof_propagators tc = {OTELPROF_PROPAGATOR_TRACECONTEXT};
    struct slist_sink sink = {*list, false};
    otelprof_carrier carrier = OTELPROF_CARRIER_INIT(.user = &sink, .set = slist_set);
    otelprof_status rc = otelprof_propagation_inject(props ? props : &tc, ctx, NULL, &carrier);
    *list = sink.list;
    return rc;
}

static bool is_trace_header(const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon)
        return false;
    size_t n = (size_t)(colon - line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return ohttp_name_eq(line, n, "traceparent") || ohttp_name_eq(line, n, "tracestate");
}

/* url.full without user:password, server.address, server.port. */
static void url_attrs(const char *url, otelprof_kv *a, size_t *n, char **full, char **host,
                      long *port)
{
    *full = *host = NULL;
    *port = -1;
    CURLU *u = curl_url();
    if (!u)
        return;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        char *p = NULL;
        (void)curl_url_get(u, CURLUPART_URL, full, 0);
        (void)curl_url_get(u, CURLUPART_HOST, host, 0);
        if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK && p) {
            *port = strtol(p, NULL, 10);
            curl_free(p);
        }
    }
    curl_url_cleanup(u);
    if (*full)
        a[(*n)++] = OTELPROF_KV_STR("url.full", *full);
    if (*host) {
        /* CURLU keeps the brackets of an IPv6 literal; server.address has none. */
        char *h = *host;
        size_t len = strlen(h);
        if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
            memmove(h, h + 1, len - 2);
            h[len - 2] = '\0';
        }
        a[(*n)++] = OTELPROF_KV_STR("server.address", *host);
    }
    if (*port > 0)
        a[(*n)++] = OTELPROF_KV_INT("server.port", *port);
}

otelprof_status otelprof_curl_begin(CURL *easy, const char *url, struct curl_slist *headers,
                                    const otelprof_curl_opts *opts, otelprof_curl_call **out)
{
    if (out)
        *out = NULL;
    if (!easy || !out)
        return OTELPROF_E_INVAL;
    otelprof_curl_opts o;
    otelprof_status rc = ohttp_opts_copy(&o, sizeof o, opts);
    if (rc != OTELPROF_OK)
        return rc;
    struct otelprof_curl_call *call = calloc(1, sizeof *call);
    if (!call)
        return OTELPROF_E_NOMEM;
    call->easy = easy;
    call->user_headers = headers;
    for (const struct curl_slist *l = headers; l; l = l->next) {
        if (!l->data || is_trace_header(l->data))
            continue;
        struct curl_slist *n = curl_slist_append(call->ours, l->data);
        if (!n) {
            curl_slist_free_all(call->ours);
            free(call);
            return OTELPROF_E_NOMEM;
        }
        call->ours = n;
    }
    otelprof_span_context parent;
    bool have_parent = current_context(&parent);
    if (o.tracer) {
        const char *method = o.method ? o.method : "GET";
        otelprof_kv a[6];
        size_t n = 0;
        a[n++] = OTELPROF_KV_STR("http.request.method", method);
        char *full = NULL, *host = NULL;
        long port = -1;
        if (url)
            url_attrs(url, a, &n, &full, &host, &port);
        otelprof_span_start_opts so =
            OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_CLIENT,
                                     .parent = have_parent ? &parent : NULL, .root = !have_parent,
                                     .attrs = a, .n_attrs = n);
        call->span = otelprof_tracer_start_span(o.tracer, method, &so);
        curl_free(full);
        curl_free(host);
        const otelprof_span_context *sc = otelprof_span_get_context(call->span);
        if (sc && otelprof_span_context_is_valid(sc)) {
            call->ctx = *sc;
            call->have_ctx = true;
        }
    } else if (have_parent) {
        call->ctx = parent;
        call->have_ctx = true;
    }
    if (call->have_ctx &&
        (rc = otelprof_curl_inject(o.propagators, &call->ctx, &call->ours)) != OTELPROF_OK) {
        otelprof_span_end(call->span, 0);
        curl_slist_free_all(call->ours);
        free(call);
        return rc;
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->ours);
    *out = call;
    return OTELPROF_OK;
}

const otelprof_span_context *otelprof_curl_call_context(const otelprof_curl_call *call)
{
    return call && call->have_ctx ? &call->ctx : NULL;
}

void otelprof_curl_end(otelprof_curl_call *call, CURLcode result)
{
    if (!call)
        return;
    if (call->span) {
        long code = 0;
        otelprof_kv a[3];
        size_t n = 0;
        char code_text[24];
        const char *error_type = NULL;
        if (curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0)
            a[n++] = OTELPROF_KV_INT("http.response.status_code", code);
        long ver = 0;
        if (curl_easy_getinfo(call->easy, CURLINFO_HTTP_VERSION, &ver) == CURLE_OK) {
            const char *v = ver == CURL_HTTP_VERSION_1_0   ? "1.0"
                            : ver == CURL_HTTP_VERSION_1_1 ? "1.1"
                            : ver == CURL_HTTP_VERSION_2_0 ? "2"
                            : ver == CURL_HTTP_VERSION_3   ? "3"
                                                           : NULL;
            if (v)
                a[n++] = OTELPROF_KV_STR("network.protocol.version", v);
        }
        if (result != CURLE_OK) {
            error_type = curl_easy_strerror(result); /* a fixed, low-cardinality set */
        } else if (code >= 400) {
            snprintf(code_text, sizeof code_text, "%ld", code);
            error_type = code_text;
        }
        if (error_type)
            a[n++] = OTELPROF_KV_STR("error.type", error_type);
        if (n)
            otelprof_span_set_attributes(call->span, a, n);
        if (error_type)
            otelprof_span_set_status(call->span, OTELPROF_SPAN_STATUS_ERROR, NULL);
        otelprof_span_end(call->span, 0);
    }
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->user_headers);
    curl_slist_free_all(call->ours);
    free(call);
}
