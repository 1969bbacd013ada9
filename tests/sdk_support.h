/* Support shared by SDK tests and benchmarks. Include it from one file per executable: it
 * defines malloc, calloc and realloc.
 *
 * COUNT_ALLOCS: 1 when n_alloc counts the process's allocations, by interposing malloc,
 * calloc and realloc over glibc's; 0 under ASan or TSan, which interpose them themselves.
 * discard_exporter(): a span exporter that drops everything, successfully (what is left of
 * a span's cost is the SDK's own work).
 */
#ifndef OTELPROF_TESTS_SDK_SUPPORT_H
#define OTELPROF_TESTS_SDK_SUPPORT_H

#include <otelprof/sdk.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
#endif

static atomic_ulong n_alloc __attribute__((unused)); /* stays 0 without COUNT_ALLOCS */

#if COUNT_ALLOCS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
#endif

static otelprof_export_result discard_export(otelprof_span_exporter *e,
                                             const otelprof_span_data *const *spans, size_t n)
{
    (void)e, (void)spans, (void)n;
    return OTELPROF_EXPORT_SUCCESS;
}

static otelprof_status discard_flush(otelprof_span_exporter *e, uint32_t t)
{
    (void)e, (void)t;
    return OTELPROF_OK;
}

static void discard_free(otelprof_span_exporter *e)
{
    (void)e;
}

/* A static exporter: freeing it does nothing. */
static __attribute__((unused)) otelprof_span_exporter *discard_exporter(void)
{
    static const otelprof_span_exporter_ops ops = {.sz = sizeof ops,
                                                   .export_spans = discard_export,
                                                   .force_flush = discard_flush,
                                                   .shutdown = discard_flush,
                                                   .free = discard_free};
    static otelprof_span_exporter ex = {&ops};
    return &ex;
}

#endif
