/* Workload with a ground truth for the `otelprof record` tests.
 *
 * Worker threads alternate between traced_work(), run while a context is attached (one
 * of four fixed trace ids, a fresh span id each time, attribute work.id), and
 * untraced_work(), run with nothing attached. Each thread logs every traced interval
 * (thread id, CLOCK_REALTIME start and end, ids); the log is written as JSON lines at the
 * end. A sample in traced_work must carry its interval's ids, one in untraced_work none.
 *
 *   record_target SECONDS THREADS TRUTH_FILE
 *
 * Prints "ready <pid>" once the workers run. Built three ways:
 *   - an executable linking libotelprof.a (static TLS of the main executable);
 *   - RT_PLUGIN: a plugin linking libotelprof.so, dlopen'd by record_host (with
 *     GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0 its TLS is dynamic: the DTV path);
 *   - RT_CUSTOM_LABELS: no otelprof at all, it publishes custom-labels v1 itself, so the
 *     process has no OTEP 4947 symbol and the sampler falls back to custom labels.
 * Built with frame pointers so that the sampler's stacks reach the worker functions.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RT_CUSTOM_LABELS
#include <otelprof/context.h>
#endif

#define MAX_THREADS   8
#define MAX_INTERVALS 20000

struct interval {
    pid_t tid;
    int64_t start, end;
    uint8_t trace[16], span[8];
    unsigned work_id;
};

struct worker {
    pthread_t th;
    unsigned index;
    int64_t deadline;
    struct interval *log;
    size_t n;
};

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static volatile uint64_t sink;

/* Spin for about ns nanoseconds; the clock is read rarely so that samples land here, not
 * in the vDSO. */
__attribute__((noinline)) static uint64_t spin(int64_t ns)
{
    int64_t end = now_ns(CLOCK_MONOTONIC) + ns;
    uint64_t x = 88172645463325252ull;
    do {
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        sink = x;
    } while (now_ns(CLOCK_MONOTONIC) < end);
    return x;
}

/* The two bodies differ on purpose: gcc's identical code folding would merge them. */
__attribute__((noinline)) static void traced_work(int64_t ns)
{
    sink += spin(ns) + 1;
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
}

__attribute__((noinline)) static void untraced_work(int64_t ns)
{
    sink ^= spin(ns);
    __asm__ volatile("" ::: "memory");
}

/* ------------------------------------------------------------ publishing ---- */

#ifdef RT_CUSTOM_LABELS
/* custom-labels v1, written here by hand: the ABI as Parca reads it. */
struct cl_string {
    size_t len;
    const unsigned char *buf;
};
struct cl_label {
    struct cl_string key, value;
};
struct cl_set {
    struct cl_label *storage;
    size_t count, capacity;
};
__attribute__((visibility("default"))) __thread struct cl_set *custom_labels_current_set;
__attribute__((visibility("default"))) uint32_t custom_labels_abi_version = 1;

struct publisher {
    struct cl_set set;
    struct cl_label labels[3];
    char trace_hex[33], span_hex[17], work[16];
};
static __thread struct publisher pub;

static void hex(char *out, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static void publish(const uint8_t trace[16], const uint8_t span[8], unsigned work_id)
{
    /* the set is unpublished while it is rewritten (the sampler interrupts this thread,
     * so compiler ordering is all that matters) */
    *(struct cl_set *volatile *)&custom_labels_current_set = NULL;
    __asm__ volatile("" ::: "memory");
    hex(pub.trace_hex, trace, 16);
    hex(pub.span_hex, span, 8);
    int wl = snprintf(pub.work, sizeof pub.work, "%u", work_id);
    pub.labels[0] = (struct cl_label){{12, (const unsigned char *)"otel_traceid"},
                                      {32, (const unsigned char *)pub.trace_hex}};
    pub.labels[1] = (struct cl_label){{11, (const unsigned char *)"otel_spanid"},
                                      {16, (const unsigned char *)pub.span_hex}};
    pub.labels[2] = (struct cl_label){{7, (const unsigned char *)"work.id"},
                                      {(size_t)wl, (const unsigned char *)pub.work}};
    pub.set = (struct cl_set){pub.labels, 3, 3};
    __asm__ volatile("" ::: "memory");
    *(struct cl_set *volatile *)&custom_labels_current_set = &pub.set;
}

static void unpublish(void)
{
    *(struct cl_set *volatile *)&custom_labels_current_set = NULL;
    __asm__ volatile("" ::: "memory");
}
#else
static uint32_t work_key;
static __thread otelprof_token tok;

static void publish(const uint8_t trace[16], const uint8_t span[8], unsigned work_id)
{
    otelprof_context c;
    memset(&c, 0, sizeof c);
    memcpy(c.trace_id, trace, 16);
    memcpy(c.span_id, span, 8);
    c.trace_flags = 1;
    char v[16];
    snprintf(v, sizeof v, "%u", work_id);
    otelprof_attr a = {work_key, v, OTELPROF_NUL_TERMINATED};
    if (otelprof_attach(&c, &a, 1, &tok) != OTELPROF_OK) {
        fprintf(stderr, "record_target: attach failed\n");
        exit(1);
    }
}

static void unpublish(void)
{
    (void)otelprof_detach(&tok);
}
#endif

/* ---------------------------------------------------------------- workers ---- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    unsigned seed = 12345u + w->index * 7919u;
    unsigned long long span_counter = ((unsigned long long)w->index + 1) << 40;
    for (unsigned iter = 0; now_ns(CLOCK_REALTIME) < w->deadline && w->n < MAX_INTERVALS; iter++) {
        struct interval *iv = &w->log[w->n];
        unsigned k = (w->index + iter) % 4;
        /* four fixed traces: byte pattern 0x11 * (k + 1), last byte k */
        memset(iv->trace, 0x11 * (int)(k + 1), 16);
        iv->trace[15] = (uint8_t)k;
        span_counter++;
        for (int i = 0; i < 8; i++)
            iv->span[i] = (uint8_t)(span_counter >> (56 - 8 * i));
        iv->work_id = iter;
        iv->tid = tid;
        int64_t traced = (5 + rand_r(&seed) % 35) * 1000000ll;
        int64_t untraced = (5 + rand_r(&seed) % 15) * 1000000ll;
        iv->start = now_ns(CLOCK_REALTIME);
        publish(iv->trace, iv->span, iv->work_id);
        traced_work(traced);
        unpublish();
        iv->end = now_ns(CLOCK_REALTIME);
        w->n++;
        untraced_work(untraced);
    }
    return NULL;
}

#ifdef RT_PLUGIN
__attribute__((visibility("default"))) int record_target_main(int argc, char **argv);
__attribute__((visibility("default"))) int record_target_main(int argc, char **argv)
#else
int main(int argc, char **argv)
#endif
{
    if (argc != 4) {
        fprintf(stderr, "usage: record_target SECONDS THREADS TRUTH_FILE\n");
        return 2;
    }
    double secs = atof(argv[1]);
    unsigned nt = (unsigned)atoi(argv[2]);
    if (secs <= 0 || nt < 1 || nt > MAX_THREADS) {
        fprintf(stderr, "record_target: bad arguments\n");
        return 2;
    }
#ifndef RT_CUSTOM_LABELS
    if (otelprof_init(NULL) != OTELPROF_OK ||
        otelprof_key_register("work.id", &work_key) != OTELPROF_OK) {
        fprintf(stderr, "record_target: otelprof init failed\n");
        return 1;
    }
#endif
    static struct worker w[MAX_THREADS];
    int64_t deadline = now_ns(CLOCK_REALTIME) + (int64_t)(secs * 1e9);
    for (unsigned i = 0; i < nt; i++) {
        w[i].index = i;
        w[i].deadline = deadline;
        w[i].log = calloc(MAX_INTERVALS, sizeof *w[i].log);
        if (!w[i].log || pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "record_target: cannot start workers\n");
            return 1;
        }
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (unsigned i = 0; i < nt; i++)
        pthread_join(w[i].th, NULL);
    FILE *f = fopen(argv[3], "w");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    for (unsigned i = 0; i < nt; i++)
        for (size_t j = 0; j < w[i].n; j++) {
            const struct interval *iv = &w[i].log[j];
            char t[33], s[17];
            for (int b = 0; b < 16; b++)
                sprintf(t + 2 * b, "%02x", iv->trace[b]);
            for (int b = 0; b < 8; b++)
                sprintf(s + 2 * b, "%02x", iv->span[b]);
            fprintf(f,
                    "{\"tid\":%d,\"start\":%" PRId64 ",\"end\":%" PRId64
                    ",\"trace_id\":\"%s\",\"span_id\":\"%s\",\"work_id\":\"%u\"}\n",
                    (int)iv->tid, iv->start, iv->end, t, s, iv->work_id);
        }
    fclose(f);
    return 0;
}
