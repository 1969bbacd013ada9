/* Non-recording spans and the no-op provider.
 *
 * A non-recording span only carries a span context: the parent's (no-op provider, SDK
 * after shutdown) or a new one the sampler dropped. Its operations ignore their input. */
#include "sdk_internal.h"

#include <stdlib.h>
#include <string.h>

struct nr_span {
    otelprof_span base;
    otelprof_span_context ctx;
};

static const otelprof_span_context *nr_context(const otelprof_span *s)
{
    return &((const struct nr_span *)s)->ctx;
}

static bool nr_is_recording(const otelprof_span *s)
{
    (void)s;
    return false;
}

static void nr_end(otelprof_span *s, uint64_t end_time_ns)
{
    (void)end_time_ns;
    free(s);
}

static const otelprof_span_ops nr_span_ops = {
    .sz = sizeof(otelprof_span_ops),
    .context = nr_context,
    .is_recording = nr_is_recording,
    .end = nr_end,
};

otelprof_span *ots_nonrecording_span_new(const otelprof_span_context *ctx)
{
    if (!ctx || !otelprof_span_context_is_valid(ctx))
        return &ots_invalid_span;
    struct nr_span *s = malloc(sizeof *s);
    if (!s)
        return &ots_invalid_span;
    s->base.ops = &nr_span_ops;
    memcpy(&s->ctx, ctx, sizeof s->ctx);
    return &s->base;
}

/* ---- no-op provider: one static instance ---- */

static otelprof_span *noop_start_span(otelprof_tracer *t, const char *name,
                                      const otelprof_span_start_opts *opts)
{
    (void)t, (void)name;
    otelprof_span_start_opts o;
    ots_start_opts_read(opts, &o);
    return ots_nonrecording_span_new(ots_resolve_parent(&o));
}

static const otelprof_tracer_ops noop_tracer_ops = {
    .sz = sizeof(otelprof_tracer_ops),
    .start_span = noop_start_span,
};
static otelprof_tracer noop_tracer = {&noop_tracer_ops};

static otelprof_tracer *noop_get_tracer(otelprof_tracer_provider *p, const char *name,
                                        const char *version, const char *schema_url)
{
    (void)p, (void)name, (void)version, (void)schema_url;
    return &noop_tracer;
}

static otelprof_status noop_flush(otelprof_tracer_provider *p, uint32_t timeout_ms)
{
    (void)p, (void)timeout_ms;
    return OTELPROF_OK;
}

static void noop_free(otelprof_tracer_provider *p)
{
    (void)p; /* static */
}

static const otelprof_tracer_provider_ops noop_provider_ops = {
    .sz = sizeof(otelprof_tracer_provider_ops),
    .get_tracer = noop_get_tracer,
    .force_flush = noop_flush,
    .shutdown = noop_flush,
    .free = noop_free,
};
static otelprof_tracer_provider noop_provider = {&noop_provider_ops};

otelprof_tracer_provider *otelprof_noop_provider_new(void)
{
    return &noop_provider;
}

otelprof_tracer *ots_noop_tracer(void)
{
    return &noop_tracer;
}
