/* The batch span processor: triggers (batch size, schedule delay, flush, shutdown), the
 * bounded queue against a slow exporter (on_end never blocks), OTEL_BSP_* and threads. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/trace.h>

#include "test.h"

/* Allocations counted by interposing malloc (not under the sanitizers: see the header). */
#include "sdk_support.h"

#include <stdatomic.h>

#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];
static int log_warns;

static void log_cb(otelprof_log_level level, const char *msg, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    if (level <= OTELPROF_LOG_WARN)
        log_warns++;
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "%s\n", msg);
    pthread_mutex_unlock(&log_mu);
}

static void log_capture(void)
{
    otelprof_set_log(log_cb, NULL, NULL, NULL);
    pthread_mutex_lock(&log_mu);
    log_text[0] = '\0';
    log_warns = 0;
    pthread_mutex_unlock(&log_mu);
}

static int warns(void)
{
    pthread_mutex_lock(&log_mu);
    int n = log_warns;
    pthread_mutex_unlock(&log_mu);
    return n;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- an exporter that can be held shut (slow) or made to fail; it keeps what it exports
 * in a memory exporter ---- */

struct gate {
    otelprof_span_exporter base;
    otelprof_span_exporter *mem;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open, fail;
    int calls;
    otelprof_status flush_rc; /* what its force_flush reports */
};

static struct gate gate;

static otelprof_export_result gate_export(otelprof_span_exporter *e,
                                          const otelprof_span_data *const *spans, size_t n)
{
    struct gate *g = (struct gate *)e;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10; /* a stuck test still ends */
    while (!g->open)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0)
            break;
    bool fail = g->fail;
    pthread_mutex_unlock(&g->mu);
    if (fail)
        return OTELPROF_EXPORT_FAILURE;
    return g->mem->ops->export_spans(g->mem, spans, n);
}

static otelprof_status gate_flush(otelprof_span_exporter *e, uint32_t t)
{
    (void)t;
    struct gate *g = (struct gate *)e;
    pthread_mutex_lock(&g->mu);
    otelprof_status rc = g->flush_rc;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static otelprof_status gate_shutdown(otelprof_span_exporter *e, uint32_t t)
{
    (void)e, (void)t;
    return OTELPROF_OK;
}

static void gate_free(otelprof_span_exporter *e)
{
    struct gate *g = (struct gate *)e;
    otelprof_span_exporter_free(g->mem);
    g->mem = NULL;
}

static const otelprof_span_exporter_ops gate_ops = {
    .sz = sizeof(otelprof_span_exporter_ops),
    .export_spans = gate_export,
    .force_flush = gate_flush,
    .shutdown = gate_shutdown,
    .free = gate_free,
};

static otelprof_span_exporter *gate_new(bool open)
{
    gate.base.ops = &gate_ops;
    gate.mem = otelprof_memory_exporter_new(0);
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    gate.open = open;
    gate.fail = false;
    gate.calls = 0;
    gate.flush_rc = OTELPROF_OK;
    return &gate.base;
}

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = open;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static size_t gate_count(void)
{
    return otelprof_memory_exporter_count(gate.mem);
}

/* In a forked child after the provider is freed: the exporter (and its copies) is gone. */
static bool gate_count_child_ok(void)
{
    return gate.mem == NULL;
}

/* ---- provider around one batch processor ---- */

static otelprof_tracer_provider *provider;
static otelprof_tracer *tracer;
static otelprof_span_processor *bsp;

static void setup(const otelprof_batch_opts *opts, bool gate_open)
{
    bsp = otelprof_batch_processor_new(gate_new(gate_open), opts);
    ASSERT_TRUE(bsp != NULL);
    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.resource = otelprof_resource_new(),
                                            .sampler = otelprof_sampler_always_on(),
                                            .processors = &bsp, .n_processors = 1);
    otelprof_status rc = OTELPROF_E_INVAL;
    provider = otelprof_sdk_provider_new(&o, &rc);
    ASSERT_OK(rc);
    tracer = otelprof_tracer_provider_get_tracer(provider, "bsp", NULL, NULL);
}

static void teardown(void)
{
    gate_set(true);
    otelprof_tracer_provider_free(provider);
    provider = NULL;
    bsp = NULL;
}

static void span(const char *name)
{
    otelprof_span_end(otelprof_tracer_start_span(tracer, name, NULL), 0);
}

static otelprof_batch_stats stats(void)
{
    otelprof_batch_stats st;
    ASSERT_OK(otelprof_batch_processor_stats(bsp, &st));
    return st;
}

/* Wait until the exporter holds n spans; false after timeout_ms. */
static bool wait_count(size_t n, unsigned timeout_ms)
{
    uint64_t end = mono_ms() + timeout_ms;
    while (gate_count() < n) {
        if (mono_ms() > end)
            return false;
        sleep_ms(5);
    }
    return true;
}

/* Wait until the exporter has been called n times; false after timeout_ms. */
static bool wait_gate_calls(int n, unsigned timeout_ms)
{
    uint64_t end = mono_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&gate.mu);
        int calls = gate.calls;
        pthread_mutex_unlock(&gate.mu);
        if (calls >= n)
            return true;
        if (mono_ms() > end)
            return false;
        sleep_ms(1);
    }
}

/* ---- cases ---- */

static void bsp_flush_all(void)
{
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 100, .max_export_batch_size = 10,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    char name[16];
    for (int i = 0; i < 25; i++) {
        snprintf(name, sizeof name, "s%d", i);
        span(name);
    }
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), 25);
    for (int i = 0; i < 25; i++) {
        snprintf(name, sizeof name, "s%d", i);
        ASSERT_STR_EQ(otelprof_memory_exporter_get(gate.mem, (size_t)i)->name, name);
    }
    otelprof_batch_stats st = stats();
    ASSERT_EQ(st.enqueued, 25);
    ASSERT_EQ(st.exported, 25);
    ASSERT_EQ(st.dropped_queue_full, 0);
    ASSERT_EQ(st.export_failures, 0);
    ASSERT_EQ(gate.calls, 3); /* 10 + 10 + 5 */
    teardown();
}

static void bsp_batch_trigger(void)
{
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 100, .max_export_batch_size = 5,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    for (int i = 0; i < 4; i++)
        span("x");
    sleep_ms(300);
    ASSERT_EQ(gate_count(), 0); /* below the batch size, long before the delay */
    span("x");
    ASSERT_TRUE(wait_count(5, 3000));
    for (int i = 0; i < 3; i++)
        span("y");
    sleep_ms(300);
    ASSERT_EQ(gate_count(), 5);
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), 8);
    teardown();
}

static void bsp_schedule_delay(void)
{
    uint64_t t0 = mono_ms();
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 100, .max_export_batch_size = 50,
                                                .schedule_delay_ms = 300);
    setup(&o, true);
    for (int i = 0; i < 3; i++)
        span("x");
    ASSERT_TRUE(wait_count(3, 3000));
    ASSERT_GE(mono_ms() - t0, 250); /* by the timer, not at once */
    /* The timer restarts: three more go out about one delay later. */
    for (int i = 0; i < 3; i++)
        span("y");
    ASSERT_TRUE(wait_count(6, 3000));
    teardown();
}

static void bsp_clamp(void)
{
    log_capture();
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 10, .max_export_batch_size = 20,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    ASSERT_EQ(warns(), 1);
    ASSERT_TRUE(strstr(log_text, "max_export_batch_size") != NULL);
    for (int i = 0; i < 10; i++)
        span("x");
    /* With a batch size of 20 nothing would go out before the 60 s delay. */
    ASSERT_TRUE(wait_count(10, 3000));
    teardown();
}

static void bsp_env(void)
{
    /* Queue 10 and batch 4 from the environment, exporter held shut: at most 10 queued plus
     * the one batch of 4 taken before the exporter blocked. */
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 4 ", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
    setenv("OTEL_BSP_EXPORT_TIMEOUT", "1000", 1);
    log_capture();
    setup(NULL, false);
    ASSERT_EQ(warns(), 0);
    for (int i = 0; i < 30; i++)
        span("x");
    otelprof_batch_stats st = stats();
    ASSERT_EQ(st.enqueued + st.dropped_queue_full, 30);
    ASSERT_TRUE(st.enqueued >= 10 && st.enqueued <= 14);
    gate_set(true);
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), st.enqueued);
    teardown();

    /* Bad values: one warning each, defaults kept (queue 2048, batch 512, delay 5 s). */
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "0", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "99999999999", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "soon", 1);
    setenv("OTEL_BSP_EXPORT_TIMEOUT", "-1", 1);
    log_capture();
    setup(NULL, true);
    ASSERT_EQ(warns(), 4);
    uint64_t t0 = mono_ms();
    for (int i = 0; i < 600; i++)
        span("x");
    ASSERT_TRUE(wait_count(512, 3000)); /* the default batch of 512 went out */
    ASSERT_TRUE(mono_ms() - t0 < 4000);
    st = stats();
    ASSERT_EQ(st.dropped_queue_full, 0); /* 600 fit the default queue */
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), 600);
    teardown();
}

static void bsp_shutdown_flushes(void)
{
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 100, .max_export_batch_size = 100,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    for (int i = 0; i < 20; i++)
        span("x");
    ASSERT_EQ(gate_count(), 0);
    ASSERT_OK(otelprof_tracer_provider_shutdown(provider, 5000));
    ASSERT_EQ(gate_count(), 20);
    span("after"); /* not recorded after shutdown */
    otelprof_batch_stats st = stats();
    ASSERT_EQ(st.enqueued, 20);
    ASSERT_EQ(st.exported, 20);
    ASSERT_EQ(otelprof_tracer_provider_force_flush(provider, 100), OTELPROF_OK); /* ignored */
    ASSERT_EQ(gate_count(), 20);
    teardown();
}

static void bsp_export_failures(void)
{
    log_capture();
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 100, .max_export_batch_size = 5,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    pthread_mutex_lock(&gate.mu);
    gate.fail = true;
    pthread_mutex_unlock(&gate.mu);
    for (int i = 0; i < 7; i++)
        span("x");
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    otelprof_batch_stats st = stats();
    ASSERT_EQ(st.enqueued, 7);
    ASSERT_EQ(st.exported, 0);
    ASSERT_EQ(st.export_failures, 7);
    ASSERT_EQ(gate_count(), 0);
    ASSERT_TRUE(warns() >= 1);
    ASSERT_TRUE(strstr(log_text, "export of") != NULL);
    teardown();
}

static void bsp_stats_inval(void)
{
    otelprof_batch_stats st;
    ASSERT_STATUS(otelprof_batch_processor_stats(NULL, &st), OTELPROF_E_INVAL);
    otelprof_span_processor *simple =
        otelprof_simple_processor_new(otelprof_memory_exporter_new(0));
    ASSERT_STATUS(otelprof_batch_processor_stats(simple, &st), OTELPROF_E_INVAL);
    otelprof_span_processor_free(simple);
    ASSERT_NULL(otelprof_batch_processor_new(NULL, NULL));
    struct {
        otelprof_batch_opts o;
        uint32_t future;
    } big;
    memset(&big, 0, sizeof big);
    big.o.sz = sizeof big;
    big.future = 1;
    /* Rejected; the exporter it was given is freed (LSan checks). */
    ASSERT_NULL(otelprof_batch_processor_new(otelprof_memory_exporter_new(0), &big.o));
    otelprof_span_processor *b =
        otelprof_batch_processor_new(otelprof_memory_exporter_new(0), NULL);
    ASSERT_OK(otelprof_batch_processor_stats(b, &st));
    ASSERT_STATUS(otelprof_batch_processor_stats(b, NULL), OTELPROF_E_INVAL);
    otelprof_span_processor_free(b); /* free without an explicit shutdown */
}

static void bsp_slow_exporter(void)
{
    otelprof_batch_opts o =
        OTELPROF_BATCH_OPTS(.max_queue_size = 50, .max_export_batch_size = 10,
                            .schedule_delay_ms = 60000, .export_timeout_ms = 1000);
    setup(&o, false); /* the exporter blocks until the gate opens (or 10 s) */
    uint64_t worst = 0;
    for (int i = 0; i < 500; i++) {
        uint64_t t = mono_ns();
        span("x");
        uint64_t dt = mono_ns() - t;
        if (dt > worst)
            worst = dt;
    }
    printf("worst start+end while the exporter is stuck: %.3f ms\n", (double)worst / 1e6);
    ASSERT_LT(worst, 50 * 1000000ull);
    otelprof_batch_stats st = stats();
    /* Accepted: a full queue plus at most the one batch the worker took before it blocked. */
    ASSERT_EQ(st.enqueued + st.dropped_queue_full, 500);
    ASSERT_TRUE(st.enqueued >= 50 && st.enqueued <= 60);
    /* force_flush gives up at its timeout while the exporter is stuck, and says so. */
    uint64_t t = mono_ms();
    ASSERT_STATUS(otelprof_tracer_provider_force_flush(provider, 100), OTELPROF_E_TIMEOUT);
    ASSERT_GE(mono_ms() - t, 90);
    ASSERT_LT(mono_ms() - t, 2000);
    gate_set(true);
    ASSERT_OK(otelprof_tracer_provider_shutdown(provider, 10000));
    st = stats();
    ASSERT_EQ(st.exported, st.enqueued);
    ASSERT_EQ(st.export_failures, 0);
    ASSERT_EQ(gate_count(), st.enqueued);
    teardown();
}

/* shutdown with a timeout the stuck exporter outlasts: OTELPROF_E_TIMEOUT; free then waits
 * for the worker, and nothing is lost once the exporter moves again. */
static void bsp_shutdown_timeout(void)
{
    log_capture();
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 50, .max_export_batch_size = 5,
                                                .schedule_delay_ms = 60000);
    setup(&o, false);
    for (int i = 0; i < 5; i++)
        span("x"); /* a full batch: the worker takes it and blocks in the exporter */
    ASSERT_TRUE(wait_gate_calls(1, 5000));
    uint64_t t = mono_ms();
    otelprof_status rc = otelprof_tracer_provider_shutdown(provider, 150);
    uint64_t took = mono_ms() - t;
    ASSERT_STATUS(rc, OTELPROF_E_TIMEOUT);
    ASSERT_GE(took, 140);
    ASSERT_LT(took, 3000);
    ASSERT_TRUE(strstr(log_text, "shutdown timed out") != NULL);
    /* The message function has text for the code, distinct from E_SYSTEM's. */
    ASSERT_STR_EQ(otelprof_status_name(rc), "OTELPROF_E_TIMEOUT");
    ASSERT_TRUE(strstr(otelprof_strerror(rc), "timeout") != NULL);
    ASSERT_TRUE(strcmp(otelprof_strerror(rc), otelprof_strerror(OTELPROF_E_SYSTEM)) != 0);
    ASSERT_EQ(OTELPROF_E_TIMEOUT, -18); /* appended, never renumbered */
    gate_set(true);
    otelprof_tracer_provider_free(provider); /* waits for the worker's export */
    provider = NULL;
    bsp = NULL;
}

/* The exporter's own force_flush verdict (the OTLP exporter's E_TIMEOUT for an export that
 * ran out of time) reaches the caller of the provider's force_flush. */
static void bsp_flush_exporter_status(void)
{
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 50, .max_export_batch_size = 10,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    span("x");
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    pthread_mutex_lock(&gate.mu);
    gate.flush_rc = OTELPROF_E_TIMEOUT;
    pthread_mutex_unlock(&gate.mu);
    span("y");
    ASSERT_STATUS(otelprof_tracer_provider_force_flush(provider, 5000), OTELPROF_E_TIMEOUT);
    ASSERT_EQ(gate_count(), 2); /* the spans were handed over all the same */
    pthread_mutex_lock(&gate.mu);
    gate.flush_rc = OTELPROF_OK;
    pthread_mutex_unlock(&gate.mu);
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    teardown();
}

static void bsp_fork(void)
{
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 8, .max_export_batch_size = 4,
                                                .schedule_delay_ms = 60000);
    setup(&o, true);
    span("before");
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), 1);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        /* No worker here: spans queue up to the bound, then are dropped; nothing hangs. */
        for (int i = 0; i < 20; i++)
            span("child");
        otelprof_batch_stats st;
        if (otelprof_batch_processor_stats(bsp, &st) != OTELPROF_OK)
            _exit(2);
        if (st.enqueued != 1 + 8 || st.dropped_queue_full != 12)
            _exit(3);
        if (otelprof_tracer_provider_force_flush(provider, 100) != OTELPROF_E_NOT_SUPPORTED)
            _exit(4);
        otelprof_tracer_provider_free(provider);
        _exit(gate_count_child_ok() ? 0 : 5);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        TEST_FAIL("child failed: status %d", st);
    /* The parent's processor is unaffected. */
    span("after");
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 5000));
    ASSERT_EQ(gate_count(), 2);
    ASSERT_STR_EQ(otelprof_memory_exporter_get(gate.mem, 1)->name, "after");
    teardown();
}

#define THREADS    8
#define PER_THREAD 2000

static void *producer(void *arg)
{
    char name[32];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(name, sizeof name, "t%u-%d", (unsigned)(uintptr_t)arg, i);
        otelprof_span *s = otelprof_tracer_start_span(tracer, name, NULL);
        otelprof_kv kv = OTELPROF_KV_INT("i", i);
        otelprof_span_set_attributes(s, &kv, 1);
        otelprof_span_end(s, 0);
    }
    return NULL;
}

static void bsp_threads(void)
{
    otelprof_batch_opts o =
        OTELPROF_BATCH_OPTS(.max_queue_size = 4096, .max_export_batch_size = 256,
                            .schedule_delay_ms = 5);
    setup(&o, true);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, producer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 10000));
    otelprof_batch_stats st = stats();
    ASSERT_EQ(st.enqueued + st.dropped_queue_full, THREADS * PER_THREAD);
    ASSERT_EQ(st.exported, st.enqueued);
    size_t n = gate_count();
    ASSERT_EQ(n, st.enqueued);
    printf("%llu of %d spans exported, %llu dropped\n", (unsigned long long)st.exported,
           THREADS * PER_THREAD, (unsigned long long)st.dropped_queue_full);
    /* Each thread's spans come out in its own order, none twice. */
    int last[THREADS];
    for (int i = 0; i < THREADS; i++)
        last[i] = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned t;
        int k;
        ASSERT_EQ(sscanf(otelprof_memory_exporter_get(gate.mem, i)->name, "t%u-%d", &t, &k), 2);
        ASSERT_LT(t, THREADS);
        ASSERT_GT(k, last[t]);
        last[t] = k;
    }
    teardown();
}

/* ---- span copy buffers: reused, so a steady stream allocates nothing ---- */

/* An exporter that checks each span it is given against what span_sized() made and
 * allocates nothing itself. */
static atomic_ulong checked, bad;

static size_t size_of(int i)
{
    /* mostly small; every 7th larger than a pooled buffer can be (BUF_KEEP_MAX) */
    return i % 7 == 3 ? 9000 + (size_t)i % 100 : (size_t)(i % 5) * 150 + 1;
}

static otelprof_export_result check_export(otelprof_span_exporter *e,
                                           const otelprof_span_data *const *spans, size_t n)
{
    (void)e;
    for (size_t k = 0; k < n; k++) {
        const otelprof_span_data *d = spans[k];
        int i = -1;
        bool ok = sscanf(d->name, "sized-%d", &i) == 1 && d->n_attrs == 2 &&
                  strcmp(d->attrs[0].key, "i") == 0 && d->attrs[0].value.u.i == i &&
                  strcmp(d->attrs[1].key, "blob") == 0 && d->attrs[1].value.u.str.len == size_of(i);
        for (size_t j = 0; ok && j < size_of(i); j++)
            ok = d->attrs[1].value.u.str.ptr[j] == (char)('a' + (i + (int)j) % 26);
        atomic_fetch_add(ok ? &checked : &bad, 1);
    }
    return OTELPROF_EXPORT_SUCCESS;
}

static otelprof_span_exporter *check_exporter(void)
{
    static const otelprof_span_exporter_ops ops = {.sz = sizeof ops,
                                                   .export_spans = check_export,
                                                   .force_flush = discard_flush,
                                                   .shutdown = discard_flush,
                                                   .free = discard_free};
    static otelprof_span_exporter ex = {&ops};
    return &ex;
}

static char blob[16384];

static void span_sized(otelprof_tracer *t, int i)
{
    size_t n = size_of(i);
    for (size_t j = 0; j < n; j++)
        blob[j] = (char)('a' + (i + (int)j) % 26);
    char name[32];
    snprintf(name, sizeof name, "sized-%d", i);
    otelprof_kv kv[] = {OTELPROF_KV_INT("i", i),
                        {"blob", {.type = OTELPROF_VALUE_STRING, .u.str = {blob, n}}}};
    otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = kv, .n_attrs = 2);
    otelprof_span_end(otelprof_tracer_start_span(t, name, &so), 0);
}

/* Copies of every size come out intact through reused buffers (grown, and replaced by
 * buffers of their own for the large ones); once the pool holds what one round keeps in
 * flight, small spans allocate nothing at all. */
static void bsp_buffers(void)
{
    /* Exports only on flush (batches of 512 are never reached), so that every round has
     * the same 400 copies in flight: the pool then holds as many buffers as the next
     * rounds need. */
    otelprof_batch_opts o = OTELPROF_BATCH_OPTS(.max_queue_size = 512, .max_export_batch_size = 512,
                                                .schedule_delay_ms = 60000);
    otelprof_span_processor *p = otelprof_batch_processor_new(check_exporter(), &o);
    ASSERT_TRUE(p != NULL);
    otelprof_sdk_opts so = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                             .processors = &p, .n_processors = 1);
    otelprof_status rc;
    otelprof_tracer_provider *prov = otelprof_sdk_provider_new(&so, &rc);
    ASSERT_OK(rc);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(prov, "bsp", NULL, NULL);
    int i = 0;
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 400; k++)
            span_sized(t, i++);
        ASSERT_OK(otelprof_tracer_provider_force_flush(prov, 10000));
    }
    ASSERT_EQ(atomic_load(&bad), 0);
    ASSERT_EQ(atomic_load(&checked), i);
    /* Small spans only (the SDK keeps their attributes inline): skip the large ones. */
    unsigned long a0 = atomic_load(&n_alloc);
    int small = 0;
    for (int round = 0; round < 10; round++) {
        for (int k = 0; k < 400; k++, i++)
            if (i % 7 != 3) {
                span_sized(t, i);
                small++;
            }
        ASSERT_OK(otelprof_tracer_provider_force_flush(prov, 10000));
    }
    unsigned long allocs = atomic_load(&n_alloc) - a0;
    ASSERT_EQ(atomic_load(&bad), 0);
    ASSERT_EQ(atomic_load(&checked), 20 * 400 + small);
    otelprof_batch_stats st;
    ASSERT_OK(otelprof_batch_processor_stats(p, &st));
    ASSERT_EQ(st.dropped_queue_full, 0);
#if COUNT_ALLOCS
    printf("%lu allocations for %d spans\n", allocs, small);
    ASSERT_EQ(allocs, 0);
#else
    (void)allocs;
#endif
    otelprof_tracer_provider_free(prov);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"bsp_flush_all", bsp_flush_all},
        {"bsp_batch_trigger", bsp_batch_trigger},
        {"bsp_schedule_delay", bsp_schedule_delay},
        {"bsp_clamp", bsp_clamp},
        {"bsp_env", bsp_env},
        {"bsp_shutdown_flushes", bsp_shutdown_flushes},
        {"bsp_export_failures", bsp_export_failures},
        {"bsp_stats_inval", bsp_stats_inval},
        {"bsp_fork", bsp_fork},
        {"bsp_slow_exporter", bsp_slow_exporter},
        {"bsp_shutdown_timeout", bsp_shutdown_timeout},
        {"bsp_flush_exporter_status", bsp_flush_exporter_status},
        {"bsp_threads", bsp_threads},
        {"bsp_buffers", bsp_buffers},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
