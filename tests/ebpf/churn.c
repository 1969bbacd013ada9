/* Churn writer for the eBPF reader test (ebpf_check.py).
 *
 * Worker threads attach and detach contexts in a tight loop. Every value a context
 * carries is derived from one counter value m (see derive() and ebpf_check.py), so a
 * reader that sees trace id, span id, flags and attribute of different m has caught a
 * torn record. Each thread also keeps `ebpf_truth`, a TLS variable the eBPF program
 * reads next to otel_thread_ctx_v1, telling the reader what must be published:
 *   m (non-zero)   the innermost attached context is exactly m: set only after the attach
 *                  of m (or the detach that restores m) returned, reset to 0 before the
 *                  next attach/detach call;
 *   TRUTH_NONE     nothing is attached: set after the outermost detach returned;
 *   0              in transition, no claim.
 *
 * Usage: churn THREADS MAX_SECONDS [ok|torn|early|torn,early]
 * Prints its pid, the attribute key index and the TLS offsets it sees, then churns until
 * stdin reaches EOF (or MAX_SECONDS pass) and prints per-thread iteration counts.
 * "torn" and "early" break the protocol on purpose so the checker's self-test can prove
 * it notices: torn flips a span-id byte of the published record, early claims m before
 * attaching it.
 */
#define _GNU_SOURCE
#include <otelprof/context.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define TRUTH_NONE  UINT64_MAX
#define MAX_THREADS 8

/* Exported into .dynsym (-Wl,--export-dynamic-symbol) so the reader can find it like
 * otel_thread_ctx_v1. volatile: the eBPF program is the only reader. */
__attribute__((visibility("default"))) __thread volatile uint64_t ebpf_truth;

/* The OTEP 4947 slot, defined by libotelprof.a; used only by the corrupting modes. */
extern __thread void *otel_thread_ctx_v1;

enum { MODE_TORN = 1, MODE_EARLY = 2 };

static atomic_uint_fast64_t counter = 2;
static atomic_bool stop;
static uint32_t key_index;
static unsigned mode; /* MODE_* bits, 0: follow the protocol */
static uint64_t iterations[MAX_THREADS];

static inline void compiler_barrier(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

static void set_truth(uint64_t v)
{
    compiler_barrier();
    ebpf_truth = v;
    compiler_barrier();
}

/* Context and attribute for counter value m; ebpf_check.py's expected() mirrors this. */
static void derive(uint64_t m, otelprof_context *ctx, char *val, size_t cap)
{
    for (int i = 0; i < 8; i++) {
        ctx->trace_id[i] = (uint8_t)(m >> (56 - 8 * i));
        ctx->trace_id[8 + i] = (uint8_t)(~m >> (56 - 8 * i));
        ctx->span_id[i] = (uint8_t)(m >> (56 - 8 * i));
    }
    ctx->trace_flags = (uint8_t)((m >> 1) & 3);
    snprintf(val, cap, "%" PRIu64, m);
}

/* Spin a data-dependent number of steps so samples land in every phase. */
static void burn(uint64_t seed)
{
    volatile uint64_t x = seed;
    unsigned n = 64 + (unsigned)((seed * 0x9E3779B97F4A7C15ull) >> 56);
    for (unsigned i = 0; i < n; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
}

static void must(otelprof_status rc, const char *what)
{
    if (rc != OTELPROF_OK) {
        fprintf(stderr, "churn: %s: %s\n", what, otelprof_strerror(rc));
        exit(1);
    }
}

static void attach_m(uint64_t m, otelprof_token *tok)
{
    otelprof_context ctx;
    char val[24];
    derive(m, &ctx, val, sizeof val);
    otelprof_attr attr = {key_index, val, OTELPROF_NUL_TERMINATED};
    must(otelprof_attach(&ctx, &attr, 1, tok), "attach");
}

static void *worker(void *arg)
{
    uint64_t *iters = arg;
    must(otelprof_thread_init(), "thread_init");
    set_truth(TRUTH_NONE);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* Step 2 so that the nested value n+1 is never another iteration's n. */
        uint64_t n = atomic_fetch_add_explicit(&counter, 2, memory_order_relaxed);
        otelprof_token outer, inner;

        set_truth(0);
        if ((mode & MODE_EARLY) && n % 16 == 8) {
            set_truth(n); /* wrong on purpose: claims n before it is attached */
            burn(n);
        }
        attach_m(n, &outer);
        set_truth(n);
        if ((mode & MODE_TORN) && n % 16 == 0) {
            /* volatile: otherwise the two flips cancel out at compile time. */
            volatile uint8_t *rec = otel_thread_ctx_v1;
            rec[23] ^= 0x40; /* wrong on purpose: span id no longer matches */
            burn(n);
            rec[23] ^= 0x40;
        }
        burn(n);

        if (n % 4 == 0) { /* nested: inner context n+1, then restore n */
            set_truth(0);
            attach_m(n + 1, &inner);
            set_truth(n + 1);
            burn(n + 1);
            set_truth(0);
            must(otelprof_detach(&inner), "detach inner");
            set_truth(n); /* restore-on-detach: must be n again */
            burn(n >> 3);
        }

        set_truth(0);
        must(otelprof_detach(&outer), "detach");
        set_truth(TRUTH_NONE);
        burn(n >> 5);
        (*iters)++;
    }
    set_truth(0);
    return NULL;
}

/* The thread pointer (x86-64: %fs:0 holds the TCB's own address). */
static uintptr_t thread_pointer(void)
{
#if defined(__x86_64__)
    uintptr_t tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    return tp;
#else
    return 0;
#endif
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: churn THREADS MAX_SECONDS [ok|torn|early|torn,early]\n");
        return 2;
    }
    int nthreads = atoi(argv[1]);
    int max_seconds = atoi(argv[2]);
    if (nthreads < 1 || nthreads > MAX_THREADS || max_seconds < 1)
        return 2;
    if (argc > 3) {
        if (strstr(argv[3], "torn"))
            mode |= MODE_TORN;
        if (strstr(argv[3], "early"))
            mode |= MODE_EARLY;
        if (!mode && strcmp(argv[3], "ok") != 0)
            return 2;
    }

    must(otelprof_init(
             &OTELPROF_INIT_OPTS(.formats = OTELPROF_FORMAT_ALL, .service_name = "ebpf-churn")),
         "init");
    must(otelprof_key_register("churn.n", &key_index), "key_register");

    uintptr_t tp = thread_pointer();
    /* What the C runtime placed where: the checker compares these with the offsets it
     * computes from the ELF file, so a wrong formula fails loudly instead of reading
     * garbage. */
    printf("pid %d\nkey %" PRIu32 "\ntls otel_thread_ctx_v1 %" PRIdPTR " ebpf_truth %" PRIdPTR "\n",
           (int)getpid(), key_index, (intptr_t)((uintptr_t)&otel_thread_ctx_v1 - tp),
           (intptr_t)((uintptr_t)&ebpf_truth - tp));
    fflush(stdout);

    pthread_t th[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&th[i], NULL, worker, &iterations[i]);
        if (rc != 0) {
            fprintf(stderr, "churn: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    /* Run until the driver closes stdin, or the deadline as a safety net. */
    time_t deadline = time(NULL) + max_seconds;
    char buf[64];
    while (time(NULL) < deadline) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(0, &rd);
        struct timeval tv = {1, 0};
        int r = select(1, &rd, NULL, NULL, &tv);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && read(0, buf, sizeof buf) <= 0)
            break;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nthreads; i++)
        printf("iterations %d %" PRIu64 "\n", i, iterations[i]);
    otelprof_shutdown();
    return 0;
}
