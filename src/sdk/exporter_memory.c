/* In-memory span exporter, for tests: keeps deep copies of up to max_spans spans. */
#include "sdk_internal.h"

#include <pthread.h>
#include <stdlib.h>

struct mem_exporter {
    otelprof_span_exporter base;
    pthread_mutex_t lock;
    size_t max; /* 0: no limit */
    otelprof_span_data **spans;
    size_t n, cap;
    bool shut;
};

static otelprof_export_result me_export(otelprof_span_exporter *e,
                                        const otelprof_span_data *const *spans, size_t n)
{
    struct mem_exporter *m = (struct mem_exporter *)e;
    otelprof_export_result r = OTELPROF_EXPORT_SUCCESS;
    pthread_mutex_lock(&m->lock);
    if (m->shut)
        r = OTELPROF_EXPORT_FAILURE; /* spec: export after shutdown fails */
    for (size_t i = 0; r == OTELPROF_EXPORT_SUCCESS && i < n; i++) {
        if (m->max && m->n >= m->max)
            break; /* full: the rest is not kept */
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 16;
            otelprof_span_data **v = realloc(m->spans, cap * sizeof *v);
            if (!v) {
                r = OTELPROF_EXPORT_FAILURE;
                break;
            }
            m->spans = v;
            m->cap = cap;
        }
        otelprof_span_data *c = ots_span_data_clone(spans[i]);
        if (!c) {
            r = OTELPROF_EXPORT_FAILURE;
            break;
        }
        m->spans[m->n++] = c;
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

static otelprof_status me_flush(otelprof_span_exporter *e, uint32_t timeout_ms)
{
    (void)e, (void)timeout_ms;
    return OTELPROF_OK;
}

static otelprof_status me_shutdown(otelprof_span_exporter *e, uint32_t timeout_ms)
{
    (void)timeout_ms;
    struct mem_exporter *m = (struct mem_exporter *)e;
    pthread_mutex_lock(&m->lock);
    m->shut = true;
    pthread_mutex_unlock(&m->lock);
    return OTELPROF_OK;
}

static void me_clear(struct mem_exporter *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->spans[i]);
    m->n = 0;
}

static void me_free(otelprof_span_exporter *e)
{
    struct mem_exporter *m = (struct mem_exporter *)e;
    me_clear(m);
    free(m->spans);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const otelprof_span_exporter_ops mem_ops = {
    .sz = sizeof(otelprof_span_exporter_ops),
    .export_spans = me_export,
    .force_flush = me_flush,
    .shutdown = me_shutdown,
    .free = me_free,
};

otelprof_span_exporter *otelprof_memory_exporter_new(size_t max_spans)
{
    struct mem_exporter *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->base.ops = &mem_ops;
    m->max = max_spans;
    return &m->base;
}

static struct mem_exporter *as_mem(otelprof_span_exporter *e)
{
    return e && e->ops == &mem_ops ? (struct mem_exporter *)e : NULL;
}

size_t otelprof_memory_exporter_count(otelprof_span_exporter *e)
{
    struct mem_exporter *m = as_mem(e);
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->n;
    pthread_mutex_unlock(&m->lock);
    return n;
}

const otelprof_span_data *otelprof_memory_exporter_get(otelprof_span_exporter *e, size_t i)
{
    struct mem_exporter *m = as_mem(e);
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    const otelprof_span_data *d = i < m->n ? m->spans[i] : NULL;
    pthread_mutex_unlock(&m->lock);
    return d;
}

void otelprof_memory_exporter_reset(otelprof_span_exporter *e)
{
    struct mem_exporter *m = as_mem(e);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    me_clear(m);
    pthread_mutex_unlock(&m->lock);
}

void otelprof_span_exporter_free(otelprof_span_exporter *e)
{
    if (OTS_HAS_OP(e, otelprof_span_exporter_ops, free))
        e->ops->free(e);
}
