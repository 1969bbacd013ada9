/* The trace.h calls: thin, NULL-safe dispatch through the ops tables.
 *
 * An ops table is used only as far as its sz covers (an implementation built against an
 * older trace.h has a shorter table); a missing operation behaves like a no-op. */
#include "sdk/sdk_internal.h"

#include <string.h>

#define HAS_OP(ops, type, member)                                                                  \
    ((ops) && (ops)->sz >= offsetof(type, member) + sizeof((ops)->member) && (ops)->member)

/* ---- the invalid span: what a NULL result becomes ---- */

static const otelprof_span_context invalid_ctx;

static const otelprof_span_context *inv_context(const otelprof_span *s)
{
    (void)s;
    return &invalid_ctx;
}

static bool inv_is_recording(const otelprof_span *s)
{
    (void)s;
    return false;
}

static const otelprof_span_ops invalid_span_ops = {
    .sz = sizeof(otelprof_span_ops), .context = inv_context, .is_recording = inv_is_recording,
    /* the others stay NULL: the dispatchers skip them */
};

otelprof_span ots_invalid_span = {&invalid_span_ops};

/* ---- provider ---- */

otelprof_tracer *otelprof_tracer_provider_get_tracer(otelprof_tracer_provider *p, const char *name,
                                                     const char *version, const char *schema_url)
{
    if (!p || !HAS_OP(p->ops, otelprof_tracer_provider_ops, get_tracer))
        return NULL;
    return p->ops->get_tracer(p, name, version, schema_url);
}

otelprof_status otelprof_tracer_provider_force_flush(otelprof_tracer_provider *p,
                                                     uint32_t timeout_ms)
{
    if (!p)
        return OTELPROF_E_INVAL;
    if (!HAS_OP(p->ops, otelprof_tracer_provider_ops, force_flush))
        return OTELPROF_OK;
    return p->ops->force_flush(p, timeout_ms);
}

otelprof_status otelprof_tracer_provider_shutdown(otelprof_tracer_provider *p, uint32_t timeout_ms)
{
    if (!p)
        return OTELPROF_E_INVAL;
    if (!HAS_OP(p->ops, otelprof_tracer_provider_ops, shutdown))
        return OTELPROF_OK;
    return p->ops->shutdown(p, timeout_ms);
}

void otelprof_tracer_provider_free(otelprof_tracer_provider *p)
{
    if (p && HAS_OP(p->ops, otelprof_tracer_provider_ops, free))
        p->ops->free(p);
}

/* ---- tracer ---- */

otelprof_span *otelprof_tracer_start_span(otelprof_tracer *tracer, const char *name,
                                          const otelprof_span_start_opts *opts)
{
    if (!tracer)
        return NULL;
    otelprof_span *s = NULL;
    if (HAS_OP(tracer->ops, otelprof_tracer_ops, start_span))
        s = tracer->ops->start_span(tracer, name, opts);
    if (s)
        return s;
    /* Keep the promise of a usable span: propagate the parent's context, record nothing. */
    otelprof_span_start_opts o;
    ots_start_opts_read(opts, &o);
    return ots_nonrecording_span_new(ots_resolve_parent(&o));
}

/* ---- span ---- */

const otelprof_span_context *otelprof_span_get_context(const otelprof_span *span)
{
    if (!span || !HAS_OP(span->ops, otelprof_span_ops, context))
        return &invalid_ctx;
    const otelprof_span_context *c = span->ops->context(span);
    return c ? c : &invalid_ctx;
}

bool otelprof_span_is_recording(const otelprof_span *span)
{
    return span && HAS_OP(span->ops, otelprof_span_ops, is_recording) &&
           span->ops->is_recording(span);
}

void otelprof_span_set_attributes(otelprof_span *span, const otelprof_kv *attrs, size_t n)
{
    if (span && (attrs || !n) && HAS_OP(span->ops, otelprof_span_ops, set_attributes))
        span->ops->set_attributes(span, attrs, n);
}

void otelprof_span_add_event(otelprof_span *span, const char *name, uint64_t time_ns,
                             const otelprof_kv *attrs, size_t n)
{
    if (span && (attrs || !n) && HAS_OP(span->ops, otelprof_span_ops, add_event))
        span->ops->add_event(span, name, time_ns, attrs, n);
}

void otelprof_span_add_link(otelprof_span *span, const otelprof_link *link)
{
    if (span && link && HAS_OP(span->ops, otelprof_span_ops, add_link))
        span->ops->add_link(span, link);
}

void otelprof_span_set_status(otelprof_span *span, otelprof_span_status code,
                              const char *description)
{
    if (span && HAS_OP(span->ops, otelprof_span_ops, set_status))
        span->ops->set_status(span, code, description);
}

void otelprof_span_update_name(otelprof_span *span, const char *name)
{
    if (span && name && HAS_OP(span->ops, otelprof_span_ops, update_name))
        span->ops->update_name(span, name);
}

void otelprof_span_end(otelprof_span *span, uint64_t end_time_ns)
{
    if (span && HAS_OP(span->ops, otelprof_span_ops, end))
        span->ops->end(span, end_time_ns);
}

/* ---- helpers shared with the SDK ---- */

void ots_start_opts_read(const otelprof_span_start_opts *in, otelprof_span_start_opts *out)
{
    memset(out, 0, sizeof *out);
    if (!in || in->sz < sizeof(size_t))
        return;
    size_t n = in->sz < sizeof *out ? in->sz : sizeof *out;
    memcpy(out, in, n);
    out->sz = sizeof *out;
}

const otelprof_span_context *ots_resolve_parent(const otelprof_span_start_opts *o)
{
    if (o->root) /* wins over an explicit parent too, as in the profiling wrapper */
        return NULL;
    const otelprof_span_context *p = o->parent ? o->parent : otelprof_current_span_context();
    return p && otelprof_span_context_is_valid(p) ? p : NULL;
}
