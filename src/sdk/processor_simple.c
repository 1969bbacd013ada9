/* Simple span processor: exports each sampled span on the thread that ends it. A mutex
 * serialises export calls, as the spec requires, so this processor blocks the ending
 * thread for as long as the exporter takes: use it for tests and the console. */
#include "sdk_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct simple {
    otelprof_span_processor base;
    otelprof_span_exporter *exp;
    pthread_mutex_t lock;
    atomic_bool shut;
};

static void sp_on_start(otelprof_span_processor *p, otelprof_span *span,
                        const otelprof_span_context *parent)
{
    (void)p, (void)span, (void)parent;
}

static void sp_on_end(otelprof_span_processor *proc, const otelprof_span_data *span)
{
    struct simple *p = (struct simple *)proc;
    if (!(span->context.trace_flags & OTELPROF_FLAG_SAMPLED))
        return; /* recorded but not sampled: processors see it, exporters must not */
    pthread_mutex_lock(&p->lock);
    if (!atomic_load_explicit(&p->shut, memory_order_relaxed) &&
        OTS_HAS_OP(p->exp, otelprof_span_exporter_ops, export_spans) &&
        p->exp->ops->export_spans(p->exp, &span, 1) != OTELPROF_EXPORT_SUCCESS)
        ots_log(OTELPROF_LOG_WARN, "simple span processor: export failed");
    pthread_mutex_unlock(&p->lock);
}

static otelprof_status sp_force_flush(otelprof_span_processor *proc, uint32_t timeout_ms)
{
    struct simple *p = (struct simple *)proc;
    if (atomic_load_explicit(&p->shut, memory_order_relaxed) ||
        !OTS_HAS_OP(p->exp, otelprof_span_exporter_ops, force_flush))
        return OTELPROF_OK;
    return p->exp->ops->force_flush(p->exp, timeout_ms);
}

static otelprof_status sp_shutdown(otelprof_span_processor *proc, uint32_t timeout_ms)
{
    struct simple *p = (struct simple *)proc;
    pthread_mutex_lock(&p->lock); /* waits for an export in progress */
    bool was = atomic_exchange_explicit(&p->shut, true, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
    if (was || !OTS_HAS_OP(p->exp, otelprof_span_exporter_ops, shutdown))
        return OTELPROF_OK;
    return p->exp->ops->shutdown(p->exp, timeout_ms);
}

static void sp_free(otelprof_span_processor *proc)
{
    struct simple *p = (struct simple *)proc;
    if (!atomic_load_explicit(&p->shut, memory_order_relaxed))
        (void)sp_shutdown(proc, 30000);
    otelprof_span_exporter_free(p->exp);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const otelprof_span_processor_ops simple_ops = {
    .sz = sizeof(otelprof_span_processor_ops),
    .on_start = sp_on_start,
    .on_end = sp_on_end,
    .force_flush = sp_force_flush,
    .shutdown = sp_shutdown,
    .free = sp_free,
};

otelprof_span_processor *otelprof_simple_processor_new(otelprof_span_exporter *e)
{
    struct simple *p = e ? calloc(1, sizeof *p) : NULL;
    if (!p || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        otelprof_span_exporter_free(e); /* ownership was passed in */
        return NULL;
    }
    p->base.ops = &simple_ops;
    p->exp = e;
    atomic_init(&p->shut, false);
    return &p->base;
}

void otelprof_span_processor_free(otelprof_span_processor *p)
{
    if (OTS_HAS_OP(p, otelprof_span_processor_ops, free))
        p->ops->free(p);
}
