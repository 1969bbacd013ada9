/* C-core metadata helpers (include/otelprof/grpc_core.h). */
#include <otelprof/grpc_core.h>

#include <grpc/slice.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int key_eq(grpc_slice key, const char *name, size_t name_len)
{
    size_t n = GRPC_SLICE_LENGTH(key);
    const unsigned char *p = GRPC_SLICE_START_PTR(key);
    if (n != name_len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        unsigned char w = (unsigned char)name[i];
        if (w >= 'A' && w <= 'Z')
            w = (unsigned char)(w - 'A' + 'a');
        if (c != w)
            return 0;
    }
    return 1;
}

static size_t md_count(void *user, const char *name, size_t name_len)
{
    const grpc_metadata_array *md = user;
    size_t n = 0;
    for (size_t i = 0; i < md->count; i++)
        n += (size_t)key_eq(md->metadata[i].key, name, name_len);
    return n;
}

static const char *md_get(void *user, const char *name, size_t name_len, size_t index,
                          size_t *value_len)
{
    const grpc_metadata_array *md = user;
    for (size_t i = 0; i < md->count; i++) {
        if (!key_eq(md->metadata[i].key, name, name_len))
            continue;
        if (index-- == 0) {
            *value_len = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
        }
    }
    return NULL;
}

otelprof_status otelprof_grpc_metadata_extract(const otelprof_propagators *props,
                                               const grpc_metadata_array *md,
                                               otelprof_span_context *out,
                                               otelprof_baggage *bag_out)
{
    if (!md || !out)
        return OTELPROF_E_INVAL;
    otelprof_propagators env;
    if (!props) {
        (void)otelprof_propagators_from_env(&env);
        props = &env;
    }
    otelprof_carrier c =
        OTELPROF_CARRIER_INIT(.user = (void *)md, .count = md_count, .get = md_get);
    otelprof_status rc = otelprof_propagation_extract(props, &c, out, bag_out);
    return rc == OTELPROF_E_INVAL ? rc : OTELPROF_OK;
}

/* Inject into a small local list first, then turn it into slices all at once. */
#define INJ_MAX 3
typedef struct inj {
    size_t n;
    char name[INJ_MAX][16];
    char value[INJ_MAX][OTELPROF_BAGGAGE_MAX_LEN + 1];
    size_t value_len[INJ_MAX];
} inj;

static otelprof_status inj_set(void *user, const char *name, size_t name_len, const char *value,
                               size_t value_len)
{
    inj *s = user;
    if (s->n >= INJ_MAX || name_len >= sizeof s->name[0] || value_len > OTELPROF_BAGGAGE_MAX_LEN)
        return OTELPROF_E_TOO_LARGE;
    memcpy(s->name[s->n], name, name_len);
    s->name[s->n][name_len] = '\0';
    memcpy(s->value[s->n], value, value_len);
    s->value_len[s->n] = value_len;
    s->n++;
    return OTELPROF_OK;
}

otelprof_status otelprof_grpc_metadata_inject(const otelprof_propagators *props,
                                              const otelprof_span_context *ctx,
                                              const otelprof_baggage *bag, grpc_metadata *md,
                                              size_t capacity, size_t *count)
{
    if (!md || !count || *count > capacity)
        return OTELPROF_E_INVAL;
    otelprof_propagators env;
    if (!props) {
        (void)otelprof_propagators_from_env(&env);
        props = &env;
    }
    static __thread inj s; /* ~24 KiB: not on the caller's stack */
    s.n = 0;
    otelprof_carrier c = OTELPROF_CARRIER_INIT(.user = &s, .set = inj_set);
    otelprof_status rc = otelprof_propagation_inject(props, ctx, bag, &c);
    if (rc != OTELPROF_OK)
        return rc;
    if (capacity - *count < s.n)
        return OTELPROF_E_TOO_LARGE;
    for (size_t i = 0; i < s.n; i++) {
        grpc_metadata *m = &md[*count + i];
        memset(m, 0, sizeof *m);
        m->key = grpc_slice_from_copied_string(s.name[i]);
        m->value = grpc_slice_from_copied_buffer(s.value[i], s.value_len[i]);
    }
    *count += s.n;
    return OTELPROF_OK;
}

void otelprof_grpc_metadata_release(grpc_metadata *md, size_t n)
{
    for (size_t i = 0; md && i < n; i++) {
        grpc_slice_unref(md[i].key);
        grpc_slice_unref(md[i].value);
    }
}

/* ---- server calls ---- */

otelprof_status otelprof_grpc_server_call_start(const otelprof_grpc_server_opts *opts,
                                                const grpc_call_details *details,
                                                const grpc_metadata_array *request_md,
                                                otelprof_grpc_server_call *call)
{
    if (!call)
        return OTELPROF_E_INVAL;
    memset(call, 0, sizeof *call);
    if (!details || !request_md)
        return OTELPROF_E_INVAL;
    /* libbpf OPTS: only the fields the caller's struct covers */
    otelprof_grpc_server_opts o = {0};
    if (opts)
        memcpy(&o, opts, opts->sz < sizeof o ? opts->sz : sizeof o);
    otelprof_span_context parent;
    (void)otelprof_grpc_metadata_extract(
        o.sz > offsetof(otelprof_grpc_server_opts, propagators) ? o.propagators : NULL, request_md,
        &parent, NULL);
    if (o.sz <= offsetof(otelprof_grpc_server_opts, tracer) || !o.tracer) {
        if (otelprof_span_context_is_valid(&parent))
            call->context = parent;
        return OTELPROF_OK;
    }
    /* "/pkg.Service/Method": the span is named without the leading slash; the service is
     * what precedes the last slash. Method names are ASCII identifiers, so bounded copies
     * are enough; longer ones are cut for the attributes only. */
    char full[256], service[256], method[256];
    size_t n = GRPC_SLICE_LENGTH(details->method);
    const char *m = (const char *)GRPC_SLICE_START_PTR(details->method);
    if (n && m[0] == '/')
        m++, n--;
    if (n >= sizeof full)
        n = sizeof full - 1;
    memcpy(full, m, n);
    full[n] = '\0';
    const char *slash = strrchr(full, '/');
    size_t sl = slash ? (size_t)(slash - full) : n;
    memcpy(service, full, sl);
    service[sl] = '\0';
    snprintf(method, sizeof method, "%s", slash ? slash + 1 : "");
    otelprof_kv attrs[3];
    size_t na = 0;
    attrs[na++] = OTELPROF_KV_STR("rpc.system", "grpc");
    if (service[0])
        attrs[na++] = OTELPROF_KV_STR("rpc.service", service);
    if (method[0])
        attrs[na++] = OTELPROF_KV_STR("rpc.method", method);
    bool has_parent = otelprof_span_context_is_valid(&parent);
    otelprof_span_start_opts so =
        OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER,
                                 .parent = has_parent ? &parent : NULL, .root = !has_parent,
                                 .attrs = attrs, .n_attrs = na);
    call->span = otelprof_tracer_start_span(o.tracer, n ? full : "grpc", &so);
    const otelprof_span_context *sc = otelprof_span_get_context(call->span);
    if (sc && otelprof_span_context_is_valid(sc))
        call->context = *sc;
    return OTELPROF_OK;
}

void otelprof_grpc_server_call_finish(otelprof_grpc_server_call *call, grpc_status_code status,
                                      const char *message)
{
    if (!call || !call->span)
        return;
    otelprof_kv kv = OTELPROF_KV_INT("rpc.grpc.status_code", (int64_t)status);
    otelprof_span_set_attributes(call->span, &kv, 1);
    if (status != GRPC_STATUS_OK)
        otelprof_span_set_status(call->span, OTELPROF_SPAN_STATUS_ERROR, message);
    otelprof_span_end(call->span, 0);
    call->span = NULL;
}

/* ---- publication around a call's events ---- */

enum { SC_ATTACHED = 1, SC_SCOPED = 2 };

otelprof_status otelprof_grpc_scope_enter(const otelprof_span_context *ctx, otelprof_grpc_scope *s)
{
    if (!s)
        return OTELPROF_E_INVAL;
    memset(s, 0, sizeof *s);
    otelprof_status rc;
    if (!ctx || !otelprof_span_context_is_valid(ctx)) {
        /* not what the thread held before: an event of a call without a parent is not
         * attributed to an unrelated trace */
        rc = otelprof_clear(&s->token);
        if (rc == OTELPROF_OK)
            s->flags |= SC_ATTACHED;
        return rc;
    }
    otelprof_context tc;
    memcpy(tc.trace_id, ctx->trace_id, sizeof tc.trace_id);
    memcpy(tc.span_id, ctx->span_id, sizeof tc.span_id);
    tc.trace_flags = ctx->trace_flags;
    rc = otelprof_attach(&tc, NULL, 0, &s->token);
    if (rc == OTELPROF_OK)
        s->flags |= SC_ATTACHED;
    otelprof_status rs = otelprof_scope_enter(ctx, &s->scope);
    if (rs == OTELPROF_OK)
        s->flags |= SC_SCOPED;
    return rc != OTELPROF_OK ? rc : rs;
}

otelprof_status otelprof_grpc_scope_leave(otelprof_grpc_scope *s)
{
    if (!s)
        return OTELPROF_E_INVAL;
    otelprof_status rc = OTELPROF_OK;
    if (s->flags & SC_SCOPED) {
        rc = otelprof_scope_leave(&s->scope);
        if (rc == OTELPROF_E_WRONG_THREAD)
            return rc; /* nothing changed: the owner thread may still leave it */
    }
    if (s->flags & SC_ATTACHED) {
        otelprof_status rd = otelprof_detach(&s->token);
        if (rd == OTELPROF_E_WRONG_THREAD)
            return rd;
        if (rc == OTELPROF_OK)
            rc = rd;
    }
    s->flags = 0;
    return rc;
}
