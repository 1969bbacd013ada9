/* The cost of an otelprof_attach + otelprof_detach pair, against a baseline that only
 * stores the bytes each format publishes.
 *
 *   bench_attach time [ITERS [REPS]]  ns per pair, best of REPS runs of ITERS pairs, for
 *                                     each format alone and all together, 0 and 2 attrs
 *   bench_attach instr ITERS          the same pairs once each inside bench_measured_loop,
 *                                     for callgrind --dump-after (see run.sh)
 *   bench_attach alloc                fail unless attach/detach allocate nothing after the
 *                                     thread's first use (malloc family and mmap counted)
 *
 * The baseline writes what a reader needs, and nothing more: for OTEP 4947 the 28-byte
 * header plus the attribute entries and the pointer; for custom labels the label array,
 * the hex ids, the value bytes and the pointer; then the pointer is cleared. It goes
 * through non-inlined functions into __thread memory that escapes, with volatile pointer
 * stores, so the compiler can delete none of it. What the library adds on top is
 * validation (ids, keys, UTF-8, sizes), the nesting stack and the token.
 */
#define _GNU_SOURCE
#include <otelprof/context.h>

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef BENCH_FLAVOUR
#define BENCH_FLAVOUR "?"
#endif

/* ------------------------------------------------------------------ allocation counters */
/* Interposed in the executable: libotelprof (static or shared) and libc's own helpers
 * (strdup, pthread_key_create...) bind to these. Sanitizers interpose the same symbols,
 * so such builds skip the allocation check. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_COUNT_ALLOCS 0
#else
#define BENCH_COUNT_ALLOCS 1
#endif

static atomic_ulong n_alloc, n_release, n_map, n_unmap;

#if BENCH_COUNT_ALLOCS
/* glibc's own entry points: no dlsym needed, so no recursion through calloc. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);

static inline void bump(atomic_ulong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    bump(&n_alloc);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    bump(&n_alloc);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    bump(&n_alloc);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        bump(&n_release);
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    bump(&n_alloc);
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    bump(&n_alloc);
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    bump(&n_alloc);
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ISO C has no object-to-function pointer cast; POSIX guarantees the representation. */
static void lookup(void *fnptr, size_t size, const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        abort();
    memcpy(fnptr, &p, size);
}

static void resolve(void)
{
    if (!real_mmap) {
        lookup(&real_munmap, sizeof real_munmap, "munmap");
        lookup(&real_mremap, sizeof real_mremap, "mremap");
        lookup(&real_mmap, sizeof real_mmap, "mmap");
    }
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    bump(&n_map);
    resolve();
    return real_mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
    bump(&n_unmap);
    resolve();
    return real_munmap(addr, len);
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    bump(&n_map);
    resolve();
    return real_mremap(old, old_len, new_len, flags, new_addr);
}

__attribute__((constructor)) static void resolve_early(void)
{
    resolve();
}
#endif

struct counts {
    unsigned long alloc, release, map, unmap;
};

static struct counts counts_now(void)
{
    return (struct counts){atomic_load(&n_alloc), atomic_load(&n_release), atomic_load(&n_map),
                           atomic_load(&n_unmap)};
}

static struct counts counts_since(struct counts a)
{
    struct counts b = counts_now();
    return (struct counts){b.alloc - a.alloc, b.release - a.release, b.map - a.map,
                           b.unmap - a.unmap};
}

static unsigned long counts_total(struct counts c)
{
    return c.alloc + c.release + c.map + c.unmap;
}

/* ------------------------------------------------------------------ the workload */
static const struct {
    const char *name;
    unsigned bits;
} formats[] = {
    {"thread_ctx", OTELPROF_FORMAT_THREAD_CTX},
    {"process_ctx", OTELPROF_FORMAT_PROCESS_CTX},
    {"custom_labels", OTELPROF_FORMAT_CUSTOM_LABELS},
    {"all", OTELPROF_FORMAT_ALL},
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

static const char *const key_names[2] = {"http.route", "user.id"};
static const size_t key_name_len[2] = {10, 7};
static uint32_t key_index[2];
static const otelprof_context the_ctx = {
    {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47,
     0x36},
    {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
    OTELPROF_FLAG_SAMPLED,
};
static otelprof_attr the_attrs[2] = {
    {0, "/api/v1/users/{id}", 18},
    {0, "user-4711", 9},
};
/* The loops read their arguments through these, so that neither the library call nor
 * the baseline can be specialised on constants the compiler sees. */
static const otelprof_context *volatile ctx_in = &the_ctx;
static const otelprof_attr *volatile attrs_in = the_attrs;
static volatile size_t n_attrs_in;

static void die(const char *what, otelprof_status rc)
{
    fprintf(stderr, "bench_attach: %s: %s\n", what, otelprof_strerror(rc));
    exit(1);
}

static void use_format(unsigned bits)
{
    otelprof_shutdown();
    otelprof_status rc =
        otelprof_init(&OTELPROF_INIT_OPTS(.formats = bits, .service_name = "bench_attach"));
    if (rc != OTELPROF_OK)
        die("otelprof_init", rc);
    for (int i = 0; i < 2; i++) {
        if ((rc = otelprof_key_register(key_names[i], &key_index[i])) != OTELPROF_OK)
            die("otelprof_key_register", rc);
        the_attrs[i].key = key_index[i];
    }
}

/* ------------------------------------------------------------------ the baseline */
struct b_string {
    size_t len;
    const unsigned char *buf;
};
struct b_label {
    struct b_string key, value;
};
struct b_labelset {
    struct b_label *storage;
    size_t count, capacity;
};

static __thread _Alignas(8) unsigned char b_rec[OTELPROF_RECORD_MAX];
static __thread unsigned char b_vals[OTELPROF_ATTRS_MAX];
static __thread char b_hex[48];
static __thread struct b_label b_labels[4];
static __thread struct b_labelset b_set;
static __thread void *volatile b_tc_slot;
static __thread void *volatile b_cl_slot;

/* An asm with a memory clobber: a side effect no optimiser may drop, so even the empty
 * baseline call is really made. */
static inline void compiler_barrier(void)
{
    __asm__ __volatile__("" ::: "memory");
}

/* OTEP 4947 record: header + [key][len][value] entries. Returns the first value byte. */
static unsigned char *b_record(const otelprof_context *ctx, const otelprof_attr *attrs, size_t n)
{
    unsigned char *r = b_rec, *out = r + OTELPROF_RECORD_HEADER;
    memcpy(r, ctx->trace_id, 16);
    memcpy(r + 16, ctx->span_id, 8);
    r[24] = 1;
    r[25] = ctx->trace_flags;
    for (size_t i = 0; i < n; i++) {
        *out++ = (unsigned char)attrs[i].key;
        *out++ = (unsigned char)attrs[i].value_len;
        memcpy(out, attrs[i].value, attrs[i].value_len);
        out += attrs[i].value_len;
    }
    uint16_t size = (uint16_t)(out - (r + OTELPROF_RECORD_HEADER));
    memcpy(r + 26, &size, 2);
    return r + OTELPROF_RECORD_HEADER + 2;
}

/* custom-labels set: hex ids, two id labels, one label per attribute whose value bytes
 * start at vals (entries laid out like the record's: [key][len][value]). */
static void b_labelset(const otelprof_context *ctx, const otelprof_attr *attrs, size_t n,
                       const unsigned char *vals)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        b_hex[2 * i] = digits[ctx->trace_id[i] >> 4];
        b_hex[2 * i + 1] = digits[ctx->trace_id[i] & 15];
    }
    for (int i = 0; i < 8; i++) {
        b_hex[32 + 2 * i] = digits[ctx->span_id[i] >> 4];
        b_hex[32 + 2 * i + 1] = digits[ctx->span_id[i] & 15];
    }
    b_labels[0] = (struct b_label){{12, (const unsigned char *)"otel_traceid"},
                                   {32, (const unsigned char *)b_hex}};
    b_labels[1] = (struct b_label){{11, (const unsigned char *)"otel_spanid"},
                                   {16, (const unsigned char *)b_hex + 32}};
    for (size_t i = 0; i < n; i++) {
        b_labels[2 + i] = (struct b_label){{key_name_len[i], (const unsigned char *)key_names[i]},
                                           {attrs[i].value_len, vals}};
        vals += attrs[i].value_len + 2;
    }
    b_set = (struct b_labelset){b_labels, 2 + n, 2 + n};
}

__attribute__((noinline)) static void base_attach_tc(const otelprof_context *ctx,
                                                     const otelprof_attr *attrs, size_t n)
{
    b_record(ctx, attrs, n);
    compiler_barrier();
    b_tc_slot = b_rec;
}

__attribute__((noinline)) static void base_detach_tc(void)
{
    b_tc_slot = NULL;
}

__attribute__((noinline)) static void base_attach_cl(const otelprof_context *ctx,
                                                     const otelprof_attr *attrs, size_t n)
{
    /* The value bytes are copied too: the caller's strings need not outlive the call. */
    unsigned char *v = b_vals;
    for (size_t i = 0; i < n; i++) {
        memcpy(v, attrs[i].value, attrs[i].value_len);
        v += attrs[i].value_len + 2;
    }
    b_labelset(ctx, attrs, n, b_vals);
    compiler_barrier();
    b_cl_slot = &b_set;
}

__attribute__((noinline)) static void base_detach_cl(void)
{
    b_cl_slot = NULL;
}

__attribute__((noinline)) static void base_attach_all(const otelprof_context *ctx,
                                                      const otelprof_attr *attrs, size_t n)
{
    unsigned char *vals = b_record(ctx, attrs, n);
    b_labelset(ctx, attrs, n, vals); /* labels point into the record, as the library's do */
    compiler_barrier();
    b_tc_slot = b_rec;
    b_cl_slot = &b_set;
}

__attribute__((noinline)) static void base_detach_all(void)
{
    b_tc_slot = NULL;
    b_cl_slot = NULL;
}

/* The process context adds nothing per attach: its baseline is an empty call pair. */
__attribute__((noinline)) static void base_attach_none(const otelprof_context *ctx,
                                                       const otelprof_attr *attrs, size_t n)
{
    (void)ctx;
    (void)attrs;
    (void)n;
    compiler_barrier();
}

__attribute__((noinline)) static void base_detach_none(void)
{
    compiler_barrier();
}

enum kind { K_LIB, K_BASE_TC, K_BASE_CL, K_BASE_ALL, K_BASE_NONE };

static enum kind baseline_for(unsigned bits)
{
    switch (bits) {
    case OTELPROF_FORMAT_THREAD_CTX:
        return K_BASE_TC;
    case OTELPROF_FORMAT_CUSTOM_LABELS:
        return K_BASE_CL;
    case OTELPROF_FORMAT_PROCESS_CTX:
        return K_BASE_NONE;
    default:
        return K_BASE_ALL;
    }
}

#define BASE_LOOP(att, det)                                                                        \
    for (size_t i = 0; i < iters; i++) {                                                           \
        att(ctx_in, attrs_in, n_attrs_in);                                                         \
        det();                                                                                     \
    }

void bench_measured_loop(enum kind k, size_t n_attrs, size_t iters);

/* Everything callgrind counts happens in here (run.sh: --toggle-collect, --dump-after). */
__attribute__((noinline)) void bench_measured_loop(enum kind k, size_t n_attrs, size_t iters)
{
    n_attrs_in = n_attrs;
    switch (k) {
    case K_LIB:
        for (size_t i = 0; i < iters; i++) {
            otelprof_token t;
            otelprof_status rc = otelprof_attach(ctx_in, attrs_in, n_attrs_in, &t);
            if (rc != OTELPROF_OK)
                die("otelprof_attach", rc);
            if ((rc = otelprof_detach(&t)) != OTELPROF_OK)
                die("otelprof_detach", rc);
        }
        break;
    case K_BASE_TC:
        BASE_LOOP(base_attach_tc, base_detach_tc)
        break;
    case K_BASE_CL:
        BASE_LOOP(base_attach_cl, base_detach_cl)
        break;
    case K_BASE_ALL:
        BASE_LOOP(base_attach_all, base_detach_all)
        break;
    case K_BASE_NONE:
        BASE_LOOP(base_attach_none, base_detach_none)
        break;
    }
}

static void warm_up(void)
{
    for (int i = 0; i < 1000; i++) {
        otelprof_token t;
        otelprof_status rc = otelprof_attach(&the_ctx, the_attrs, 2, &t);
        if (rc != OTELPROF_OK)
            die("otelprof_attach", rc);
        otelprof_detach(&t);
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double ns_per_pair(enum kind k, size_t n_attrs, size_t iters)
{
    double t0 = now_ns();
    bench_measured_loop(k, n_attrs, iters);
    return (now_ns() - t0) / (double)iters;
}

/* ------------------------------------------------------------------ modes */
static int mode_time(size_t iters, int reps)
{
    printf("# %s build: ns per attach+detach pair, best of %d x %zu pairs; ratio = pair / "
           "baseline (stores of the same bytes)\n",
           BENCH_FLAVOUR, reps, iters);
    printf("%-8s %-14s %5s %9s %9s %7s\n", "build", "format", "attrs", "pair_ns", "base_ns",
           "ratio");
    for (size_t f = 0; f < N_FORMATS; f++) {
        use_format(formats[f].bits);
        warm_up();
        enum kind base = baseline_for(formats[f].bits);
        for (size_t n_attrs = 0; n_attrs <= 2; n_attrs += 2) {
            double best_lib = 1e30, best_base = 1e30;
            for (int r = 0; r < reps; r++) { /* interleaved, so drift hits both alike */
                double a = ns_per_pair(K_LIB, n_attrs, iters);
                double b = ns_per_pair(base, n_attrs, iters);
                best_lib = a < best_lib ? a : best_lib;
                best_base = b < best_base ? b : best_base;
            }
            /* process_ctx alone publishes nothing per attach: its baseline is an empty
             * call pair and a ratio would mean nothing. */
            char ratio[16] = "-";
            if (base != K_BASE_NONE)
                snprintf(ratio, sizeof ratio, "%.2f", best_lib / best_base);
            printf("%-8s %-14s %5zu %9.2f %9.2f %7s\n", BENCH_FLAVOUR, formats[f].name, n_attrs,
                   best_lib, best_base, ratio);
        }
    }
    otelprof_shutdown();
    return 0;
}

static int mode_instr(size_t iters)
{
    /* One dump per bench_measured_loop call, in the order printed here. */
    int dump = 0;
    for (size_t f = 0; f < N_FORMATS; f++) {
        use_format(formats[f].bits);
        warm_up();
        for (size_t n_attrs = 0; n_attrs <= 2; n_attrs += 2) {
            bench_measured_loop(K_LIB, n_attrs, iters);
            printf("dump %d lib %s %zu %zu\n", ++dump, formats[f].name, n_attrs, iters);
            bench_measured_loop(baseline_for(formats[f].bits), n_attrs, iters);
            printf("dump %d base %s %zu %zu\n", ++dump, formats[f].name, n_attrs, iters);
        }
    }
    otelprof_shutdown();
    return 0;
}

static void pairs_mixed(size_t iters)
{
    /* attach/detach with and without attributes, nested, and a clear in between. */
    for (size_t i = 0; i < iters; i++) {
        otelprof_token outer, inner, cleared;
        otelprof_status rc = otelprof_attach(&the_ctx, the_attrs, 2, &outer);
        if (rc == OTELPROF_OK)
            rc = otelprof_attach(&the_ctx, the_attrs, i & 1, &inner);
        if (rc == OTELPROF_OK)
            rc = otelprof_clear(&cleared);
        if (rc != OTELPROF_OK)
            die("attach/clear", rc);
        otelprof_detach(&cleared);
        otelprof_detach(&inner);
        otelprof_detach(&outer);
    }
}

static bool check_window(const char *what, size_t iters)
{
    struct counts c0 = counts_now();
    pairs_mixed(iters);
    struct counts d = counts_since(c0);
    printf("%-34s %8zu iterations: malloc-family %lu, free %lu, mmap/mremap %lu, munmap %lu\n",
           what, iters, d.alloc, d.release, d.map, d.unmap);
    return counts_total(d) == 0;
}

static void *alloc_thread(void *arg)
{
    bool *ok = arg;
    struct counts c0 = counts_now();
    otelprof_status rc = otelprof_thread_init();
    if (rc != OTELPROF_OK)
        die("otelprof_thread_init", rc);
    struct counts d = counts_since(c0);
    printf("new thread: first use (otelprof_thread_init): mmap %lu, malloc-family %lu\n", d.map,
           d.alloc);
    /* The counters must see the library's own calls, or zero below proves nothing. */
    if (d.map == 0) {
        printf("FAIL: the thread's first-use mmap was not counted: interposition is broken\n");
        *ok = false;
        return NULL;
    }
    *ok = check_window("new thread, after first use", 1000) &&
          check_window("new thread, after first use", 100000);
    return NULL;
}

static int mode_alloc(void)
{
    if (!BENCH_COUNT_ALLOCS) {
        printf("SKIPPED: sanitizer build: the sanitizer owns malloc/mmap interposition\n");
        return 77;
    }
    bool ok = true;
    for (size_t f = 0; f < N_FORMATS; f++) {
        struct counts c0 = counts_now();
        use_format(formats[f].bits);
        struct counts d = counts_since(c0);
        if (f == 0 && d.alloc == 0) {
            printf("FAIL: init + key registration made no counted allocation: interposition is "
                   "broken\n");
            return 1;
        }
        warm_up(); /* the thread's first use */
        char what[64];
        snprintf(what, sizeof what, "main thread, %s", formats[f].name);
        ok &= check_window(what, 1000);
        ok &= check_window(what, 100000);
    }
    bool thread_ok = false;
    pthread_t th;
    if (pthread_create(&th, NULL, alloc_thread, &thread_ok) != 0)
        return 1;
    pthread_join(th, NULL);
    otelprof_shutdown();
    if (!ok || !thread_ok) {
        printf("FAIL: attach/detach/clear allocated or mapped memory after the thread's first "
               "use\n");
        return 1;
    }
    printf("PASS: no allocation, free, mmap or munmap in attach/detach/clear after first use\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "time";
    if (strcmp(mode, "time") == 0) {
        size_t iters = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
        int reps = argc > 3 ? atoi(argv[3]) : 5;
        if (iters == 0 || reps <= 0)
            return 2;
        return mode_time(iters, reps);
    }
    if (strcmp(mode, "instr") == 0)
        return mode_instr(argc > 2 ? strtoul(argv[2], NULL, 10) : 100000);
    if (strcmp(mode, "alloc") == 0)
        return mode_alloc();
    fprintf(stderr, "usage: %s time [ITERS [REPS]] | instr [ITERS] | alloc\n", argv[0]);
    return 2;
}
