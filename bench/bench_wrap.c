/* Per-span cost of start+end through the profiling wrapper against the same SDK provider
 * unwrapped, in one run (ratio; target <= 1.1x), and allocations per span for each.
 *
 *   bench_wrap [SPANS [REPS [CONFIG]]]   time, best of REPS, the two providers interleaved
 *   bench_wrap instr [SPANS [CONFIG]]    one loop each inside bench_measured_loop, for
 *                                        callgrind (bench/run.sh wrap)
 *   CONFIG: simple (default), batch, json, http, otlp; see sdk()
 *
 * The inner provider is the SDK with always_on sampling and two attributes per span (ten for
 * the http and otlp configurations); the processor/exporter configurations are described at sdk().
 * The wrapper publishes the ids and http.route in every format (OTEP 4947 record and custom
 * labels); WRAP_KEYS sets other keys, or none ("-": the ids alone, the default options).
 *
 * Time (wall, the calling thread's CPU, the whole process's CPU including the export) and
 * instructions on the calling thread (callgrind, bench/run.sh wrap): see docs/tracing.md
 * "Cost of the profiling wrapper" for the latest numbers of all five configurations.
 */
#define _GNU_SOURCE
#include <otelprof/exporter_otlp.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include "sdk_support.h"
#include "sink.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* simple: simple processor + discarding exporter (the SDK at its cheapest); batch: batch
 * processor + discarding exporter; json: batch processor + the console exporter writing
 * OTLP/JSON to /dev/null, so the worker really serialises every span, as an exporter
 * would, competing with the measured thread for CPU and caches; http: json with the ten
 * attributes of an HTTP server span, the shape the wrapper is meant for; otlp: the ten
 * attributes through the batch processor and the OTLP/HTTP protobuf exporter to a local
 * sink (a forked child answering 200): the SDK as OTEL_TRACES_EXPORTER=otlp sets it up. The
 * batch queues hold every span of a run, so that none is dropped (a dropped span would be
 * cheaper); main() checks that. */
static const char *config;
static const char *published; /* what the wrapper publishes besides the ids */
static char sink_url[64];
static otelprof_span_processor *procs_of[2]; /* 0: plain, 1: wrapped */
static size_t queue_size = 65536;

static otelprof_tracer_provider *sdk(int which)
{
    bool simple = strcmp(config, "simple") == 0;
    otelprof_span_exporter *e = discard_exporter();
    if (strcmp(config, "json") == 0 || strcmp(config, "http") == 0) {
        FILE *null = fopen("/dev/null", "w");
        e = null ? otelprof_console_exporter_new(null) : NULL;
        if (!e) {
            fprintf(stderr, "bench_wrap: no console exporter\n");
            exit(1);
        }
    } else if (strcmp(config, "otlp") == 0) {
        otelprof_status err;
        e = otelprof_otlp_exporter_new(&OTELPROF_OTLP_OPTS(.endpoint = sink_url), &err);
        if (!e) {
            fprintf(stderr, "bench_wrap: OTLP exporter: %s\n", otelprof_strerror(err));
            exit(1);
        }
    }
    otelprof_batch_opts bo =
        OTELPROF_BATCH_OPTS(.max_queue_size = (uint32_t)queue_size, .schedule_delay_ms = 50);
    otelprof_span_processor *procs[] = {simple ? otelprof_simple_processor_new(e)
                                               : otelprof_batch_processor_new(e, &bo)};
    procs_of[which] = simple ? NULL : procs[0];
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

static double clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static otelprof_kv g_kv[10];
static otelprof_span_start_opts g_so;

/* The span's start attributes: two (http.route, fib.n), or for the http configuration the
 * ten an instrumented HTTP server span carries (semantic conventions). */
static size_t set_attrs(bool http)
{
    if (!http) {
        g_kv[0] = OTELPROF_KV_STR("http.route", "/fib");
        g_kv[1] = OTELPROF_KV_INT("fib.n", 30);
        return 2;
    }
    size_t n = 0;
    g_kv[n++] = OTELPROF_KV_STR("http.request.method", "GET");
    g_kv[n++] = OTELPROF_KV_STR("url.path", "/api/v1/users/42");
    g_kv[n++] = OTELPROF_KV_STR("url.scheme", "http");
    g_kv[n++] = OTELPROF_KV_STR("http.route", "/api/v1/users/{id}");
    g_kv[n++] = OTELPROF_KV_STR("server.address", "api.example.com");
    g_kv[n++] = OTELPROF_KV_INT("server.port", 8080);
    g_kv[n++] = OTELPROF_KV_STR("network.protocol.version", "1.1");
    g_kv[n++] = OTELPROF_KV_STR("client.address", "10.1.2.3");
    g_kv[n++] = OTELPROF_KV_STR("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
    g_kv[n++] = OTELPROF_KV_INT("http.response.status_code", 200);
    return n;
}

static void spans_loop(otelprof_tracer *t, size_t spans)
{
    for (size_t i = 0; i < spans; i++) {
        otelprof_span *s = otelprof_tracer_start_span(t, "GET /fib", &g_so);
        otelprof_span_end(s, 0);
    }
}

/* The loop callgrind counts (--toggle-collect): only the calling thread's instructions,
 * so a batch processor's worker is not included. */
void bench_measured_loop(otelprof_tracer *t, size_t spans);
__attribute__((noinline)) void bench_measured_loop(otelprof_tracer *t, size_t spans)
{
    spans_loop(t, spans);
}

/* Per span of one run: wall time of the loop, CPU time of the calling thread in it, and
 * CPU time of the whole process over the loop and the flush that follows it (the batch
 * worker's encoding and export included), and allocations. */
struct cost {
    double wall, thread, process, allocs;
};

static struct cost run(otelprof_tracer *t, otelprof_tracer_provider *p, size_t spans)
{
    unsigned long a0 = atomic_load(&n_alloc);
    double p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_ns(CLOCK_MONOTONIC),
           t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    spans_loop(t, spans);
    double t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID), w1 = clock_ns(CLOCK_MONOTONIC);
    unsigned long a1 = atomic_load(&n_alloc);
    otelprof_status rc = otelprof_tracer_provider_force_flush(p, 60000);
    if (rc != OTELPROF_OK) {
        fprintf(stderr, "bench_wrap: flush: %s\n", otelprof_strerror(rc));
        exit(1);
    }
    double p1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), n = (double)spans;
    return (struct cost){(w1 - w0) / n, (t1 - t0) / n, (p1 - p0) / n, (double)(a1 - a0) / n};
}

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

#define CHUNK 500

/* The calling thread's CPU time per span, the two providers alternating every CHUNK spans
 * (so that a slow spell of the machine, or of a batch worker, hits both alike), summed
 * over a run; returns wrapped/plain. Both are flushed at the end. */
static double run_chunked(otelprof_tracer *tp, otelprof_tracer_provider *plain, otelprof_tracer *tw,
                          otelprof_tracer_provider *wrapped, size_t spans)
{
    double sum_p = 0, sum_w = 0;
    for (size_t done = 0; done < spans; done += CHUNK) {
        double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        spans_loop(tp, CHUNK);
        double t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        spans_loop(tw, CHUNK);
        double t2 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        sum_p += t1 - t0;
        sum_w += t2 - t1;
    }
    if (otelprof_tracer_provider_force_flush(plain, 60000) != OTELPROF_OK ||
        otelprof_tracer_provider_force_flush(wrapped, 60000) != OTELPROF_OK) {
        fprintf(stderr, "bench_wrap: flush failed\n");
        exit(1);
    }
    return sum_w / sum_p;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *config_name(void)
{
    if (strcmp(config, "simple") == 0)
        return "simple processor + discarding (no-op) exporter";
    if (strcmp(config, "batch") == 0)
        return "batch processor (50 ms delay, queue of a run) + discarding exporter";
    if (strcmp(config, "json") == 0)
        return "batch processor (50 ms delay, queue of a run) + console OTLP/JSON exporter to "
               "/dev/null";
    if (strcmp(config, "http") == 0)
        return "HTTP server spans (10 attributes), batch processor + console OTLP/JSON exporter "
               "to /dev/null";
    return "HTTP server spans (10 attributes), batch processor + OTLP/HTTP protobuf exporter to "
           "a local sink";
}

int main(int argc, char **argv)
{
    bool instr = argc > 1 && strcmp(argv[1], "instr") == 0;
    int a = instr ? 2 : 1;
    size_t spans = argc > a ? strtoul(argv[a], NULL, 10) : (instr ? 20000 : 200000);
    int reps = instr ? 1 : argc > a + 1 ? atoi(argv[a + 1]) : 7;
    config = argc > a + (instr ? 1 : 2) ? argv[a + (instr ? 1 : 2)] : "simple";
    if (spans == 0 || reps <= 0 ||
        (strcmp(config, "simple") != 0 && strcmp(config, "batch") != 0 &&
         strcmp(config, "json") != 0 && strcmp(config, "http") != 0 &&
         strcmp(config, "otlp") != 0)) {
        fprintf(stderr,
                "usage: %s [SPANS [REPS [CONFIG]]] | instr [SPANS [CONFIG]]\n"
                "CONFIG: simple (default), batch, json, http, otlp\n",
                argv[0]);
        return 2;
    }
    if (strcmp(config, "otlp") == 0) {
        int port = 0;
        sink_start(&port);
        snprintf(sink_url, sizeof sink_url, "http://127.0.0.1:%d/v1/traces", port);
    }
    queue_size = spans + spans / 10 + 1024; /* every span of a run and of the warm-up fits */
    size_t n_attrs = set_attrs(strcmp(config, "http") == 0 || strcmp(config, "otlp") == 0);
    g_so = OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER, .attrs = g_kv,
                                    .n_attrs = n_attrs);
    otelprof_init(NULL);
    otelprof_tracer_provider *plain = sdk(0);
    /* WRAP_KEYS: the attribute keys the wrapper publishes, comma-separated; default
     * http.route; "" (or "-"): none, the ids alone (the wrapper's default options). */
    static char keys_buf[256];
    static const char *keys[8];
    size_t n_keys = 0;
    const char *wk = getenv("WRAP_KEYS");
    snprintf(keys_buf, sizeof keys_buf, "%s", wk ? wk : "http.route");
    for (char *save = NULL, *k = strtok_r(keys_buf, ",", &save); k && n_keys < 8;
         k = strtok_r(NULL, ",", &save))
        if (strcmp(k, "-") != 0)
            keys[n_keys++] = k;
    static char what[300];
    snprintf(what, sizeof what, n_keys ? "the ids + %s" : "the ids alone", wk ? wk : "http.route");
    published = what;
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = n_keys,
                                               .take_ownership = true);
    otelprof_status err;
    otelprof_tracer_provider *wrapped = otelprof_tracer_provider_wrap(sdk(1), &wo, &err);
    if (!wrapped) {
        fprintf(stderr, "bench_wrap: %s\n", otelprof_strerror(err));
        return 1;
    }
    otelprof_tracer *tp = otelprof_tracer_provider_get_tracer(plain, "bench", NULL, NULL);
    otelprof_tracer *tw = otelprof_tracer_provider_get_tracer(wrapped, "bench", NULL, NULL);
    run(tp, plain, spans / 10 + 1); /* warm up both, and the thread's first use */
    run(tw, wrapped, spans / 10 + 1);
    if (instr) {
        /* Under valgrind --tool=callgrind --collect-atstart=no
         * --toggle-collect=bench_measured_loop --dump-after=bench_measured_loop: dump 1 is
         * the SDK alone, dump 2 the wrapped provider (bench/run.sh wrap). */
        printf("config %s\nspans %zu\ndump 1 sdk\ndump 2 wrapped\n", config_name(), spans);
        bench_measured_loop(tp, spans);
        bench_measured_loop(tw, spans);
    } else {
        /* Interleave the two so that machine noise hits both alike; keep the best of each. */
        struct cost bp = {1e18, 1e18, 1e18, 0}, bw = bp;
        for (int r = 0; r < reps; r++) {
            struct cost p = run(tp, plain, spans), w = run(tw, wrapped, spans);
            bp = (struct cost){min_d(bp.wall, p.wall), min_d(bp.thread, p.thread),
                               min_d(bp.process, p.process), p.allocs};
            bw = (struct cost){min_d(bw.wall, w.wall), min_d(bw.thread, w.thread),
                               min_d(bw.process, w.process), w.allocs};
        }
        double chunked[64];
        int n_chunked = reps < 64 ? reps : 64;
        for (int r = 0; r < n_chunked; r++)
            chunked[r] = run_chunked(tp, plain, tw, wrapped, spans);
        qsort(chunked, (size_t)n_chunked, sizeof chunked[0], cmp_d);
        uint64_t dropped = 0;
        for (int i = 0; i < 2; i++) {
            otelprof_batch_stats bs;
            if (procs_of[i] && otelprof_batch_processor_stats(procs_of[i], &bs) == OTELPROF_OK)
                dropped += bs.dropped_queue_full + bs.export_failures;
        }
        printf("span start+end: SDK always_on, %zu attributes, %s;\n"
               "wrapper publishes %s (all formats), best of %d x %zu spans\n"
               "wall: the loop; thread: its CPU time; process: CPU time of all threads over the\n"
               "loop and the flush after it (export included)\n",
               n_attrs, config_name(), published, reps, spans);
        printf("%-10s %10s %10s %10s %12s\n", "provider", "wall_ns", "thread_ns", "process_ns",
               "allocs/span");
        printf("%-10s %10.1f %10.1f %10.1f %12.2f\n", "sdk", bp.wall, bp.thread, bp.process,
               bp.allocs);
        printf("%-10s %10.1f %10.1f %10.1f %12.2f\n", "wrapped", bw.wall, bw.thread, bw.process,
               bw.allocs);
        printf("ratio wrapped/sdk: wall %.3f thread %.3f process %.3f (target <= 1.10)%s\n",
               bw.wall / bp.wall, bw.thread / bp.thread, bw.process / bp.process,
               COUNT_ALLOCS ? "" : "  [allocations not counted under sanitizers]");
        printf("interleaved every %d spans: thread %.3f (median of %d runs; %.3f-%.3f)\n", CHUNK,
               chunked[n_chunked / 2], n_chunked, chunked[0], chunked[n_chunked - 1]);
        printf("dropped or failed spans: %llu\n", (unsigned long long)dropped);
        if (dropped) {
            fprintf(stderr, "bench_wrap: spans were dropped: the costs are not comparable\n");
            return 1;
        }
    }
    otelprof_tracer_provider_free(wrapped);
    otelprof_tracer_provider_free(plain);
    return 0;
}
