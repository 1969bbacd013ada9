/* Per-span cost of start+end through the profiling wrapper against the same SDK provider
 * unwrapped, in one run (ratio; target <= 1.1x), and allocations per span for each.
 *
 *   bench_wrap [SPANS [REPS]]
 *
 * The inner provider is the SDK with always_on sampling, two attributes per span and a
 * simple (default) or batch processor whose exporter discards spans, so the numbers are
 * the cost on the application thread without network noise. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
#endif

static atomic_ulong n_alloc;

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

static otelprof_export_result discard(otelprof_span_exporter *e,
                                      const otelprof_span_data *const *spans, size_t n)
{
    (void)e, (void)spans, (void)n;
    return OTELPROF_EXPORT_SUCCESS;
}

static otelprof_status nop_flush(otelprof_span_exporter *e, uint32_t t)
{
    (void)e, (void)t;
    return OTELPROF_OK;
}

static void nop_free(otelprof_span_exporter *e)
{
    (void)e;
}

static const otelprof_span_exporter_ops discard_ops = {
    .sz = sizeof(otelprof_span_exporter_ops),
    .export_spans = discard,
    .force_flush = nop_flush,
    .shutdown = nop_flush,
    .free = nop_free,
};

static bool use_batch;

static otelprof_tracer_provider *sdk(void)
{
    static otelprof_span_exporter ex = {&discard_ops};
    otelprof_batch_opts bo = OTELPROF_BATCH_OPTS(.max_queue_size = 65536, .schedule_delay_ms = 50);
    otelprof_span_processor *procs[] = {use_batch ? otelprof_batch_processor_new(&ex, &bo)
                                                  : otelprof_simple_processor_new(&ex)};
    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                            .processors = procs, .n_processors = 1);
    otelprof_status err;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&o, &err);
    if (!p) {
        fprintf(stderr, "bench_wrap: %s\n", otelprof_strerror(err));
        exit(1);
    }
    return p;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Returns ns per span; *allocs receives allocations per span. */
static double run(otelprof_tracer *t, size_t spans, double *allocs)
{
    otelprof_kv kv[] = {OTELPROF_KV_STR("http.route", "/fib"), OTELPROF_KV_INT("fib.n", 30)};
    otelprof_span_start_opts so =
        OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER, .attrs = kv, .n_attrs = 2);
    unsigned long a0 = atomic_load(&n_alloc);
    double t0 = now_ns();
    for (size_t i = 0; i < spans; i++) {
        otelprof_span *s = otelprof_tracer_start_span(t, "GET /fib", &so);
        otelprof_span_end(s, 0);
    }
    double dt = now_ns() - t0;
    *allocs = (double)(atomic_load(&n_alloc) - a0) / (double)spans;
    return dt / (double)spans;
}

int main(int argc, char **argv)
{
    size_t spans = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    use_batch = argc > 3 && strcmp(argv[3], "batch") == 0;
    if (spans == 0 || reps <= 0) {
        fprintf(stderr, "usage: %s [SPANS [REPS [simple|batch]]]\n", argv[0]);
        return 2;
    }
    otelprof_init(NULL);
    otelprof_tracer_provider *plain = sdk();
    static const char *const keys[] = {"http.route"};
    otelprof_wrap_opts wo =
        OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 1, .take_ownership = true);
    otelprof_status err;
    otelprof_tracer_provider *wrapped = otelprof_tracer_provider_wrap(sdk(), &wo, &err);
    if (!wrapped) {
        fprintf(stderr, "bench_wrap: %s\n", otelprof_strerror(err));
        return 1;
    }
    otelprof_tracer *tp = otelprof_tracer_provider_get_tracer(plain, "bench", NULL, NULL);
    otelprof_tracer *tw = otelprof_tracer_provider_get_tracer(wrapped, "bench", NULL, NULL);
    double allocs_p = 0, allocs_w = 0, best_p = 1e18, best_w = 1e18, tmp;
    run(tp, spans / 10 + 1, &tmp); /* warm up both, and the thread's first use */
    run(tw, spans / 10 + 1, &tmp);
    /* Interleave the two so that machine noise hits both alike; keep the best of each. */
    for (int r = 0; r < reps; r++) {
        double p = run(tp, spans, &allocs_p), w = run(tw, spans, &allocs_w);
        best_p = p < best_p ? p : best_p;
        best_w = w < best_w ? w : best_w;
    }
    printf("span start+end, SDK (always_on, 2 attributes, %s processor, discarding exporter)\n",
           use_batch ? "batch" : "simple");
    printf("%-10s %10s %14s\n", "provider", "ns/span", "allocs/span");
    printf("%-10s %10.1f %14.2f\n", "sdk", best_p, allocs_p);
    printf("%-10s %10.1f %14.2f\n", "wrapped", best_w, allocs_w);
    printf("ratio wrapped/sdk: %.3f (target <= 1.10)%s\n", best_w / best_p,
           COUNT_ALLOCS ? "" : "  [allocations not counted under sanitizers]");
    otelprof_tracer_provider_free(wrapped);
    otelprof_tracer_provider_free(plain);
    return 0;
}
