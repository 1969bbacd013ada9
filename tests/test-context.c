/* Thread-context API: attach/detach/current semantics, bad input, limits, formats, and the
 * bytes published in-process (the out-of-process proofs live in tests/inspect and
 * tests/ebpf). Each case runs in its own process (one ctest entry per case). */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>

#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

/* The reader-side view of the published data, written from reader-abis.md, not from the
 * writer's private structs. */
extern __thread void *otel_thread_ctx_v1;
extern __thread void *custom_labels_current_set;
struct rd_string {
    size_t len;
    const unsigned char *buf;
};
struct rd_label {
    struct rd_string key, value;
};
struct rd_set {
    struct rd_label *storage;
    size_t count, capacity;
};

static otelprof_context mkctx(uint64_t n, uint8_t flags)
{
    otelprof_context c;
    for (int i = 0; i < 8; i++) {
        c.trace_id[i] = (uint8_t)(n >> (8 * i));
        c.trace_id[8 + i] = (uint8_t) ~(n >> (8 * i));
        c.span_id[i] = (uint8_t)((n + 1) >> (8 * i)) ^ 0x5a;
    }
    c.trace_flags = flags;
    return c;
}

static void expect_current(const otelprof_context *want)
{
    otelprof_context got;
    memset(&got, 0xee, sizeof got);
    if (!want) {
        ASSERT_STATUS(otelprof_current(&got, NULL, 0, NULL), OTELPROF_E_NO_CONTEXT);
        return;
    }
    ASSERT_OK(otelprof_current(&got, NULL, 0, NULL));
    ASSERT_MEM_EQ(got.trace_id, want->trace_id, 16);
    ASSERT_MEM_EQ(got.span_id, want->span_id, 8);
    ASSERT_EQ(got.trace_flags, want->trace_flags);
}

/* The OTEP 4947 record as a reader sees it. */
static void expect_record(const otelprof_context *want, const uint8_t *attrs, size_t attrs_len)
{
    const uint8_t *r = otel_thread_ctx_v1;
    if (!want) {
        ASSERT_NULL(r);
        return;
    }
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ((uintptr_t)r % 2, 0);
    ASSERT_MEM_EQ(r, want->trace_id, 16);
    ASSERT_MEM_EQ(r + 16, want->span_id, 8);
    ASSERT_EQ(r[24], 1);
    ASSERT_EQ(r[25], want->trace_flags);
    uint16_t sz;
    memcpy(&sz, r + 26, 2);
    ASSERT_EQ(sz, attrs_len);
    if (attrs_len)
        ASSERT_MEM_EQ(r + 28, attrs, attrs_len);
}

static void test_status_codes(void)
{
    int codes[] = {
#define X(name, value, msg) value,
        OTELPROF_STATUS_MAP(X)
#undef X
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(codes[i], -(int)i); /* dense, append-only */
        ASSERT_TRUE(strcmp(otelprof_strerror((otelprof_status)codes[i]), "unknown status") != 0);
        ASSERT_TRUE(strncmp(otelprof_status_name((otelprof_status)codes[i]), "OTELPROF_", 9) == 0);
        for (size_t j = 0; j < i; j++)
            ASSERT_TRUE(strcmp(otelprof_strerror((otelprof_status)codes[i]),
                               otelprof_strerror((otelprof_status)codes[j])) != 0);
    }
    ASSERT_STR_EQ(otelprof_status_name((otelprof_status)-999), "OTELPROF_E_UNKNOWN");
    ASSERT_STR_EQ(otelprof_status_name(OTELPROF_E_TOO_LARGE), "OTELPROF_E_TOO_LARGE");
    ASSERT_STR_EQ(otelprof_version(), OTELPROF_VERSION_STRING);
}

static void test_attach_detach(void)
{
    otelprof_token t = OTELPROF_TOKEN_INIT;
    otelprof_context a = mkctx(1, OTELPROF_FLAG_SAMPLED);
    expect_current(NULL);
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    expect_current(&a);
    expect_record(&a, NULL, 0);
    ASSERT_OK(otelprof_detach(&t));
    expect_current(NULL);
    expect_record(NULL, NULL, 0);
    ASSERT_NULL(custom_labels_current_set);
    /* the token was reset: detaching it again is the null-token no-op */
    ASSERT_EQ(t.priv[0], 0);
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_STATUS(otelprof_attach(&a, NULL, 0, NULL), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_attach(NULL, NULL, 0, &t), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_attach(&a, NULL, 1, &t), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_detach(NULL), OTELPROF_E_INVAL);
}

static void test_nesting(void)
{
    otelprof_context c[4];
    otelprof_token t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = mkctx(100 + (uint64_t)i, (uint8_t)i);
        ASSERT_OK(otelprof_attach(&c[i], NULL, 0, &t[i]));
        expect_current(&c[i]);
        expect_record(&c[i], NULL, 0);
    }
    for (int i = 3; i >= 0; i--) {
        ASSERT_OK(otelprof_detach(&t[i]));
        expect_current(i ? &c[i - 1] : NULL);
        expect_record(i ? &c[i - 1] : NULL, NULL, 0);
    }
    /* reattach after a pop reuses the arena; the earlier records stay intact */
    ASSERT_OK(otelprof_attach(&c[0], NULL, 0, &t[0]));
    ASSERT_OK(otelprof_attach(&c[1], NULL, 0, &t[1]));
    ASSERT_OK(otelprof_detach(&t[1]));
    ASSERT_OK(otelprof_attach(&c[2], NULL, 0, &t[2]));
    ASSERT_OK(otelprof_detach(&t[2]));
    expect_record(&c[0], NULL, 0);
    ASSERT_OK(otelprof_detach(&t[0]));
}

static void test_unwind(void)
{
    otelprof_context a = mkctx(1, 1), b = mkctx(2, 1), c = mkctx(3, 1);
    otelprof_token ta, tb, tc;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &ta));
    ASSERT_OK(otelprof_attach(&b, NULL, 0, &tb));
    ASSERT_OK(otelprof_attach(&c, NULL, 0, &tc));
    /* detaching b while c is attached unwinds c too and restores a */
    ASSERT_OK(otelprof_detach(&tb));
    expect_current(&a);
    expect_record(&a, NULL, 0);
    ASSERT_STATUS(otelprof_detach(&tc), OTELPROF_E_STALE_TOKEN);
    expect_current(&a);
    /* a new attach at c's old depth must not revive c's token */
    otelprof_token tc_copy = tc, td;
    (void)tc_copy;
    ASSERT_OK(otelprof_attach(&b, NULL, 0, &tb));
    ASSERT_OK(otelprof_attach(&c, NULL, 0, &td));
    otelprof_token stale = td;
    ASSERT_OK(otelprof_detach(&td));
    ASSERT_STATUS(otelprof_detach(&stale), OTELPROF_E_STALE_TOKEN);
    expect_current(&b);
    ASSERT_OK(otelprof_detach(&tb));
    ASSERT_OK(otelprof_detach(&ta));
    expect_current(NULL);
}

static void test_clear(void)
{
    otelprof_context a = mkctx(7, 1);
    otelprof_token ta, tc;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &ta));
    ASSERT_OK(otelprof_clear(&tc));
    expect_current(NULL);
    expect_record(NULL, NULL, 0);
    ASSERT_NULL(custom_labels_current_set);
    ASSERT_OK(otelprof_detach(&tc));
    expect_current(&a);
    expect_record(&a, NULL, 0);
    ASSERT_TRUE(custom_labels_current_set != NULL);
    ASSERT_OK(otelprof_detach(&ta));
}

static void test_zero_ids(void)
{
    otelprof_context a = mkctx(1, 1), z = a;
    otelprof_token t, tz;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    memset(z.trace_id, 0, 16);
    ASSERT_STATUS(otelprof_attach(&z, NULL, 0, &tz), OTELPROF_E_INVALID_ID);
    ASSERT_EQ(tz.priv[0], 0);
    z = a;
    memset(z.span_id, 0, 8);
    ASSERT_STATUS(otelprof_attach(&z, NULL, 0, &tz), OTELPROF_E_INVALID_ID);
    /* nothing changed and the failed token is a harmless null token */
    expect_current(&a);
    expect_record(&a, NULL, 0);
    ASSERT_OK(otelprof_detach(&tz));
    expect_current(&a);
    ASSERT_OK(otelprof_detach(&t));
}

static uint32_t reg(const char *name)
{
    uint32_t k = 999;
    ASSERT_OK(otelprof_key_register(name, &k));
    ASSERT_STR_EQ(otelprof_key_name(k), name);
    return k;
}

static void test_attributes(void)
{
    uint32_t route = reg("http.route"), tenant = reg("tenant");
    ASSERT_EQ(route, 0);
    ASSERT_EQ(tenant, 1);
    ASSERT_EQ(reg("http.route"), route); /* idempotent */
    ASSERT_NULL(otelprof_key_name(2));
    otelprof_attr at[] = {{route, "/users/{id}", OTELPROF_NUL_TERMINATED},
                          {tenant, "caf\xc3\xa9-\xf0\x9f\x9a\x80", 10}};
    otelprof_context a = mkctx(9, 3);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, at, 2, &t));
    static const uint8_t want[] = {0,    11,   '/', 'u',  's',  'e',  'r', 's', '/',
                                   '{',  'i',  'd', '}',  1,    10,   'c', 'a', 'f',
                                   0xc3, 0xa9, '-', 0xf0, 0x9f, 0x9a, 0x80};
    expect_record(&a, want, sizeof want);
    otelprof_attr back[4];
    size_t n = 0;
    ASSERT_OK(otelprof_current(NULL, back, 4, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(back[0].key, route);
    ASSERT_EQ(back[0].value_len, 11);
    ASSERT_MEM_EQ(back[0].value, "/users/{id}", 11);
    ASSERT_EQ(back[1].key, tenant);
    ASSERT_MEM_EQ(back[1].value, at[1].value, 10);
    /* cap smaller than the count still reports the count */
    ASSERT_OK(otelprof_current(NULL, back, 1, &n));
    ASSERT_EQ(n, 2);
    ASSERT_OK(otelprof_detach(&t));
}

static void test_bad_utf8(void)
{
    uint32_t k = reg("k");
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* > U+10FFFF */
        "ab\xe2\x82",       /* truncated */
        "\x80",             /* lone continuation */
        "\xf8\x88\x80\x80\x80",
    };
    otelprof_context a = mkctx(5, 1);
    otelprof_token t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        otelprof_attr at = {k, bad[i], OTELPROF_NUL_TERMINATED};
        ASSERT_STATUS(otelprof_attach(&a, &at, 1, &t), OTELPROF_E_UTF8);
        expect_current(NULL);
    }
    /* an embedded NUL is valid UTF-8 when the length says so */
    otelprof_attr nul = {k, "a\0b", 3};
    ASSERT_OK(otelprof_attach(&a, &nul, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    otelprof_attr ok = {k, "\xf4\x8f\xbf\xbf", OTELPROF_NUL_TERMINATED}; /* U+10FFFF */
    ASSERT_OK(otelprof_attach(&a, &ok, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
}

static void test_oversized(void)
{
    uint32_t k0 = reg("a"), k1 = reg("b"), k2 = reg("c");
    char big[300];
    memset(big, 'x', sizeof big);
    otelprof_context a = mkctx(5, 1);
    otelprof_token t;
    otelprof_attr at[3] = {{k0, big, 256}};
    ASSERT_STATUS(otelprof_attach(&a, at, 1, &t), OTELPROF_E_TOO_LARGE);
    at[0].value_len = 255;
    ASSERT_OK(otelprof_attach(&a, at, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    /* exactly 612 bytes of entries: 257 + 257 + 98 */
    at[1] = (otelprof_attr){k1, big, 255};
    at[2] = (otelprof_attr){k2, big, 96};
    ASSERT_OK(otelprof_attach(&a, at, 3, &t));
    uint16_t sz;
    memcpy(&sz, (const uint8_t *)otel_thread_ctx_v1 + 26, 2);
    ASSERT_EQ(sz, OTELPROF_ATTRS_MAX);
    ASSERT_EQ(28 + sz, OTELPROF_RECORD_MAX);
    ASSERT_OK(otelprof_detach(&t));
    at[2].value_len = 97;
    ASSERT_STATUS(otelprof_attach(&a, at, 3, &t), OTELPROF_E_TOO_LARGE);
    expect_current(NULL);
    /* a multi-byte character straddling the limit is rejected, never cut */
    char mb[256];
    memset(mb, 'y', 254);
    memcpy(mb + 254, "\xc3\xa9", 2);
    otelprof_attr m = {k0, mb, 256};
    ASSERT_STATUS(otelprof_attach(&a, &m, 1, &t), OTELPROF_E_TOO_LARGE);
}

static void test_bad_keys(void)
{
    uint32_t k = reg("k");
    otelprof_context a = mkctx(5, 1);
    otelprof_token t;
    otelprof_attr unk = {k + 1, "v", 1};
    ASSERT_STATUS(otelprof_attach(&a, &unk, 1, &t), OTELPROF_E_UNKNOWN_KEY);
    unk.key = 100000;
    ASSERT_STATUS(otelprof_attach(&a, &unk, 1, &t), OTELPROF_E_UNKNOWN_KEY);
    otelprof_attr dup[2] = {{k, "v", 1}, {k, "w", 1}};
    ASSERT_STATUS(otelprof_attach(&a, dup, 2, &t), OTELPROF_E_DUP_KEY);
    otelprof_attr nullv = {k, NULL, 0};
    ASSERT_STATUS(otelprof_attach(&a, &nullv, 1, &t), OTELPROF_E_INVAL);
    expect_current(NULL);
    uint32_t idx;
    ASSERT_STATUS(otelprof_key_register("", &idx), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_key_register(NULL, &idx), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_key_register("bad\xff", &idx), OTELPROF_E_UTF8);
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = 0;
    ASSERT_STATUS(otelprof_key_register(longname, &idx), OTELPROF_E_INVAL);
}

static void test_key_limit(void)
{
    char name[32];
    for (unsigned i = 0; i < OTELPROF_MAX_KEYS; i++) {
        snprintf(name, sizeof name, "key.%u", i);
        ASSERT_EQ(reg(name), i);
    }
    uint32_t idx = 12345;
    ASSERT_STATUS(otelprof_key_register("one.too.many", &idx), OTELPROF_E_KEY_LIMIT);
    ASSERT_EQ(idx, 12345);
    ASSERT_EQ(reg("key.255"), 255); /* existing names still resolve */
    otelprof_attr at = {255, "last", 4};
    otelprof_context a = mkctx(5, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, &at, 1, &t));
    const uint8_t *r = otel_thread_ctx_v1;
    ASSERT_EQ(r[28], 255);
    ASSERT_OK(otelprof_detach(&t));
}

static void test_depth(void)
{
    static otelprof_token t[OTELPROF_MAX_DEPTH];
    otelprof_context c = mkctx(1, 1);
    for (int i = 0; i < OTELPROF_MAX_DEPTH; i++)
        ASSERT_OK(otelprof_attach(&c, NULL, 0, &t[i]));
    otelprof_token extra;
    ASSERT_STATUS(otelprof_attach(&c, NULL, 0, &extra), OTELPROF_E_DEPTH);
    ASSERT_STATUS(otelprof_clear(&extra), OTELPROF_E_DEPTH);
    expect_current(&c);
    ASSERT_OK(otelprof_detach(&t[0]));
    expect_current(NULL);
    ASSERT_STATUS(otelprof_detach(&t[OTELPROF_MAX_DEPTH - 1]), OTELPROF_E_STALE_TOKEN);
}

static void test_arena_full(void)
{
    uint32_t k[3] = {reg("a"), reg("b"), reg("c")};
    char big[255];
    memset(big, 'q', sizeof big);
    otelprof_attr at[3] = {{k[0], big, 255}, {k[1], big, 255}, {k[2], big, 96}};
    static otelprof_token t[OTELPROF_MAX_DEPTH];
    otelprof_context c = mkctx(1, 1);
    int n = 0;
    otelprof_status rc;
    while ((rc = otelprof_attach(&c, at, 3, &t[n])) == OTELPROF_OK)
        n++;
    ASSERT_STATUS(rc, OTELPROF_E_DEPTH);
    ASSERT_GE(n, 63); /* the documented guarantee for records of the largest size */
    ASSERT_LT(n, OTELPROF_MAX_DEPTH);
    /* a failed attach left the innermost context published and intact */
    expect_current(&c);
    uint16_t sz;
    memcpy(&sz, (const uint8_t *)otel_thread_ctx_v1 + 26, 2);
    ASSERT_EQ(sz, OTELPROF_ATTRS_MAX);
    ASSERT_OK(otelprof_detach(&t[n - 1]));
    ASSERT_OK(otelprof_attach(&c, at, 3, &t[n - 1])); /* the freed space is reusable */
    ASSERT_OK(otelprof_detach(&t[0]));
    expect_current(NULL);
}

static otelprof_token shared_token;

static void *detach_elsewhere(void *arg)
{
    (void)arg;
    otelprof_token t = shared_token;
    ASSERT_STATUS(otelprof_detach(&t), OTELPROF_E_WRONG_THREAD);
    ASSERT_EQ(t.priv[0], shared_token.priv[0]); /* unchanged: the owner can still use it */
    expect_current(NULL);
    return NULL;
}

static void test_wrong_thread(void)
{
    otelprof_context a = mkctx(3, 1);
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &shared_token));
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, detach_elsewhere, NULL), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    expect_current(&a);
    ASSERT_OK(otelprof_detach(&shared_token));
}

static void *exit_attached(void *arg)
{
    otelprof_context c = mkctx((uint64_t)(uintptr_t)arg, 1);
    otelprof_token t;
    /* a new thread, maybe on a recycled state: nothing published or readable yet */
    ASSERT_TRUE(otel_thread_ctx_v1 == NULL);
    expect_current(NULL);
    ASSERT_OK(otelprof_attach(&c, NULL, 0, &t));
    expect_record(&c, NULL, 0);
    return otel_thread_ctx_v1; /* exits with the context still attached */
}

static bool page_mapped(const void *p)
{
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char vec;
    return mincore((void *)((uintptr_t)p & ~(uintptr_t)(pg - 1)), 1, &vec) == 0;
}

static pthread_barrier_t exit_barrier;

static void *exit_attached_together(void *arg)
{
    otelprof_context c = mkctx((uint64_t)(uintptr_t)arg, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&c, NULL, 0, &t));
    pthread_barrier_wait(&exit_barrier); /* all states live at once */
    return otel_thread_ctx_v1;
}

/* An exited thread's state is recycled by the next thread (src/util/mapcache.h) instead of
 * an munmap + mmap per thread; at most OP_MAPCACHE_SLOTS (16) are kept, the rest unmapped. */
static void test_thread_exit(void)
{
    /* One thread at a time: each reuses the previous one's state, so the record lands at
     * the same address again, and it was still mapped in between (kept, not leaked: the
     * next thread has it). */
    void *first = NULL;
    for (int i = 0; i < 16; i++) {
        pthread_t th;
        void *rec = NULL;
        ASSERT_EQ(pthread_create(&th, NULL, exit_attached, (void *)(uintptr_t)(i + 1)), 0);
        ASSERT_EQ(pthread_join(th, &rec), 0);
        ASSERT_TRUE(rec != NULL);
        ASSERT_TRUE(page_mapped(rec));
        if (i == 0)
            first = rec;
        ASSERT_TRUE(rec == first);
    }
    /* 40 threads alive together, then all gone: 16 states are kept, 24 unmapped. */
    enum { N = 40 };
    pthread_t th[N];
    void *recs[N];
    ASSERT_EQ(pthread_barrier_init(&exit_barrier, NULL, N), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(
            pthread_create(&th[i], NULL, exit_attached_together, (void *)(uintptr_t)(i + 100)), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(pthread_join(th[i], &recs[i]), 0);
    pthread_barrier_destroy(&exit_barrier);
    int mapped = 0;
    for (int i = 0; i < N; i++)
        mapped += page_mapped(recs[i]);
    ASSERT_LE(mapped, 16);
    ASSERT_GE(mapped, 15); /* the first loop's state is among them, or was reused */
    /* A recycled state starts clean: a new thread has no context until it attaches. */
    otelprof_context c = mkctx(99, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&c, NULL, 0, &t));
    ASSERT_TRUE(page_mapped(otel_thread_ctx_v1));
    ASSERT_OK(otelprof_detach(&t));
}

static bool has_otel_ctx_mapping(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT_TRUE(f != NULL);
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "OTEL_CTX"))
            continue;
        unsigned long lo;
        ASSERT_EQ(sscanf(line, "%lx-", &lo), 1);
        const char *h = (const char *)lo;
        uint64_t ts;
        memcpy(&ts, h + 16, 8);
        found = memcmp(h, "OTEL_CTX", 8) == 0 && ts != 0;
    }
    fclose(f);
    return found;
}

static void test_fork(void)
{
    uint32_t k = reg("tenant");
    otelprof_context a = mkctx(77, 1);
    otelprof_attr at = {k, "acme", 4};
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, &at, 1, &t));
    ASSERT_TRUE(has_otel_ctx_mapping());
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        /* the child's copy of this thread keeps its context... */
        expect_current(&a);
        static const uint8_t want[] = {0, 4, 'a', 'c', 'm', 'e'};
        expect_record(&a, want, sizeof want);
        /* ...and the process context was republished (MADV_DONTFORK dropped the old) */
        if (!has_otel_ctx_mapping())
            _exit(3);
        otelprof_context b = mkctx(78, 0);
        otelprof_token tb;
        if (otelprof_attach(&b, NULL, 0, &tb) != OTELPROF_OK || otelprof_detach(&tb) != OTELPROF_OK)
            _exit(4);
        if (otelprof_detach(&t) != OTELPROF_OK)
            _exit(5);
        _exit(otelprof_current(NULL, NULL, 0, NULL) == OTELPROF_E_NO_CONTEXT ? 0 : 6);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    expect_current(&a);
    ASSERT_TRUE(has_otel_ctx_mapping());
    ASSERT_OK(otelprof_detach(&t));
}

/* A signal handler plays both roles: a profiler that reads the record at an arbitrary
 * instruction of attach/detach (it must always be complete and self-consistent), and code
 * that attaches and detaches its own context (the interrupted one must be restored). */
static atomic_ulong sig_count, sig_checked;
static volatile uint64_t main_n; /* the n the main loop has attached, 0 while none */

static void check_record_consistent(const uint8_t *r)
{
    if (!r)
        return;
    if (r[24] != 1)
        abort();
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)r[i] << (8 * i);
    otelprof_context want = mkctx(n, (uint8_t)(n & 3));
    if (memcmp(r, want.trace_id, 16) != 0 || memcmp(r + 16, want.span_id, 8) != 0 ||
        r[25] != want.trace_flags)
        abort();
}

static uint32_t sig_key;

/* The main loop's attribute value for context n, on both formats. */
static void expect_sig_attr(uint64_t n)
{
    static const char *const vals[] = {"/a", "/b", "/c"};
    const char *want = vals[(n / 6) % 3];
    otelprof_attr at[2];
    size_t na = 0;
    if (otelprof_current(NULL, at, 2, &na) != OTELPROF_OK || na != 1 || at[0].key != sig_key ||
        at[0].value_len != 2 || memcmp(at[0].value, want, 2) != 0)
        abort();
    const struct rd_set *ls = custom_labels_current_set;
    if (!ls || ls->count != 3 || ls->storage[2].value.len != 2 ||
        memcmp(ls->storage[2].value.buf, want, 2) != 0)
        abort();
}

static void on_signal(int sig)
{
    (void)sig;
    check_record_consistent(otel_thread_ctx_v1);
    otelprof_context before;
    bool had = otelprof_current(&before, NULL, 0, NULL) == OTELPROF_OK;
    if (had) {
        uint64_t n = 0;
        for (int i = 0; i < 8; i++)
            n |= (uint64_t)before.trace_id[i] << (8 * i);
        otelprof_context want = mkctx(n, (uint8_t)(n & 3));
        if (memcmp(&want, &before, sizeof want) != 0)
            abort();
    }
    otelprof_context mine = mkctx(0xfeed0000u + (sig_count & 0xff), 0);
    mine.trace_flags = (uint8_t)((0xfeed0000u + (sig_count & 0xff)) & 3);
    /* An attribute of the same key and size as the main loop's, so that a handler
     * running inside its attach leaves bytes its reuse checks could mistake. */
    otelprof_attr ha = {sig_key, "/h", 2};
    otelprof_token t;
    if (otelprof_attach(&mine, &ha, 1, &t) != OTELPROF_OK)
        abort();
    otelprof_context now;
    if (otelprof_current(&now, NULL, 0, NULL) != OTELPROF_OK ||
        memcmp(now.trace_id, mine.trace_id, 16) != 0)
        abort();
    check_record_consistent(otel_thread_ctx_v1);
    if (otelprof_detach(&t) != OTELPROF_OK)
        abort();
    otelprof_context after;
    bool has_after = otelprof_current(&after, NULL, 0, NULL) == OTELPROF_OK;
    if (has_after != had || (had && memcmp(&after, &before, sizeof after) != 0))
        abort();
    check_record_consistent(otel_thread_ctx_v1);
    atomic_fetch_add(&sig_count, 1);
    if (had)
        atomic_fetch_add(&sig_checked, 1);
}

static pthread_t sender_target;
static atomic_bool sender_done;

/* Signals as fast as they are handled (a pending one is not sent again), at varied points
 * of the main loop; bounded in count and time. */
static void *send_signals(void *arg)
{
    (void)arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        unsigned long before = atomic_load(&sig_count);
        pthread_kill(sender_target, SIGPROF);
        for (volatile int spin = 0; spin < 500 + (int)(before % 1024); spin++) {
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (atomic_load(&sig_count) < 50000 && now.tv_sec - t0.tv_sec < 30);
    atomic_store(&sender_done, true);
    return NULL;
}

static void test_signal_handler(void)
{
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_OK(otelprof_thread_init());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGPROF, &sa, NULL), 0);
    sig_key = reg("sig.route");
    pthread_t sender;
    sender_target = pthread_self();
    ASSERT_EQ(pthread_create(&sender, NULL, send_signals, NULL), 0);
    uint64_t n = 1;
    while (!atomic_load(&sender_done)) {
        otelprof_context c = mkctx(n, (uint8_t)(n & 3)), d = mkctx(n + 1, (uint8_t)((n + 1) & 3));
        otelprof_token t1, t2;
        static const char *const vals[] = {"/a", "/b", "/c"};
        /* the value of the last iteration two times in three: reattached */
        otelprof_attr a = {sig_key, vals[(n / 6) % 3], 2};
        if (otelprof_attach(&c, &a, 1, &t1) != OTELPROF_OK)
            abort();
        expect_sig_attr(n);
        main_n = n;
        if (otelprof_attach(&d, NULL, 0, &t2) != OTELPROF_OK || otelprof_detach(&t2) != OTELPROF_OK)
            abort();
        expect_current(&c);
        expect_sig_attr(n);
        main_n = 0;
        if (otelprof_detach(&t1) != OTELPROF_OK)
            abort();
        n += 2;
    }
    ASSERT_EQ(pthread_join(sender, NULL), 0);
    printf("signals: %lu (%lu with a context attached), iterations: %llu\n",
           (unsigned long)atomic_load(&sig_count), (unsigned long)atomic_load(&sig_checked),
           (unsigned long long)n / 2);
    /* 50,000 on an idle machine in well under a second; a loaded one gets fewer */
    ASSERT_GE(atomic_load(&sig_count), 2000);
    ASSERT_GT(atomic_load(&sig_checked), 0);
    expect_current(NULL);
}

static void test_formats_env_thread_only(void)
{
    setenv("OTELPROF_FORMATS", "thread_ctx", 1);
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_EQ(otelprof_formats(), OTELPROF_FORMAT_THREAD_CTX);
    otelprof_context a = mkctx(1, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    expect_record(&a, NULL, 0);
    ASSERT_NULL(custom_labels_current_set);
    ASSERT_TRUE(!has_otel_ctx_mapping());
    ASSERT_OK(otelprof_detach(&t));
}

static void test_formats_env_labels_only(void)
{
    setenv("OTELPROF_FORMATS", "custom_labels", 1);
    otelprof_context a = mkctx(1, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t)); /* lazily initialises */
    ASSERT_EQ(otelprof_formats(), OTELPROF_FORMAT_CUSTOM_LABELS);
    ASSERT_NULL(otel_thread_ctx_v1);
    ASSERT_TRUE(custom_labels_current_set != NULL);
    expect_current(&a); /* read-back works whatever is published */
    ASSERT_OK(otelprof_detach(&t));
}

static void log_capture(otelprof_log_level level, const char *msg, void *arg)
{
    if (level <= OTELPROF_LOG_WARN)
        snprintf(arg, 256, "%s", msg);
}

static void test_formats_env_bad(void)
{
    static char logged[256];
    otelprof_set_log(log_capture, logged, NULL, NULL);
    setenv("OTELPROF_FORMATS", "thread_ctx,bogus", 1);
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_EQ(otelprof_formats(), OTELPROF_FORMAT_ALL); /* bad value: default, and a warning */
    ASSERT_TRUE(strstr(logged, "bogus") != NULL);
    otelprof_log_fn prev;
    void *prev_arg;
    otelprof_set_log(NULL, NULL, &prev, &prev_arg);
    ASSERT_TRUE(prev == log_capture);
    ASSERT_TRUE(prev_arg == logged);
}

static void test_formats_api(void)
{
    setenv("OTELPROF_FORMATS", "all", 1);
    otelprof_init_opts o = OTELPROF_INIT_OPTS(.formats = OTELPROF_FORMAT_NONE);
    ASSERT_OK(otelprof_init(&o));
    ASSERT_EQ(otelprof_formats(), 0);
    otelprof_context a = mkctx(1, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    ASSERT_NULL(otel_thread_ctx_v1);
    ASSERT_NULL(custom_labels_current_set);
    ASSERT_TRUE(!has_otel_ctx_mapping());
    expect_current(&a);
    ASSERT_OK(otelprof_detach(&t));
}

static void test_init_opts(void)
{
    struct {
        otelprof_init_opts o;
        uint64_t future_field;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.o.sz = sizeof newer;
    newer.future_field = 1;
    ASSERT_STATUS(otelprof_init(&newer.o), OTELPROF_E_OPTS);
    newer.future_field = 0; /* unknown but zero: accepted */
    newer.o.formats = OTELPROF_FORMAT_THREAD_CTX;
    ASSERT_OK(otelprof_init(&newer.o));
    ASSERT_EQ(otelprof_formats(), OTELPROF_FORMAT_THREAD_CTX);
    otelprof_init_opts bad = {.sz = 1};
    otelprof_shutdown();
    ASSERT_STATUS(otelprof_init(&bad), OTELPROF_E_INVAL);
    /* an older caller's struct that stops before `formats` */
    otelprof_init_opts old = {.sz = sizeof(size_t), .formats = 0x1234};
    ASSERT_OK(otelprof_init(&old));
    ASSERT_EQ(otelprof_formats(), OTELPROF_FORMAT_ALL);
}

static void expect_label(const struct rd_label *l, const char *k, const char *v, size_t vlen)
{
    ASSERT_EQ(l->key.len, strlen(k));
    ASSERT_MEM_EQ(l->key.buf, k, strlen(k));
    ASSERT_EQ(l->value.len, vlen);
    ASSERT_MEM_EQ(l->value.buf, v, vlen);
}

static void test_custom_labels(void)
{
    otelprof_init_opts o = OTELPROF_INIT_OPTS(.trace_id_label = "trace_id");
    ASSERT_OK(otelprof_init(&o));
    uint32_t route = reg("http.route");
    uint32_t longk = reg("a.key.that.is.longer.than.25.bytes");
    uint32_t val = reg("v");
    char keys[12][8];
    uint32_t more[12];
    for (int i = 0; i < 12; i++) {
        snprintf(keys[i], sizeof keys[i], "m%d", i);
        more[i] = reg(keys[i]);
    }
    /* a 60-byte value with a 2-byte character across byte 53 */
    char v60[61];
    memset(v60, 'z', 60);
    memcpy(v60 + 52, "\xc3\xa9", 2);
    v60[60] = 0;
    otelprof_attr at[3 + 12] = {{route, "/a", 2}, {longk, "x", 1}, {val, v60, 60}};
    for (int i = 0; i < 12; i++)
        at[3 + i] = (otelprof_attr){more[i], keys[i], OTELPROF_NUL_TERMINATED};
    otelprof_context a;
    for (int i = 0; i < 16; i++)
        a.trace_id[i] = (uint8_t)(0x10 * (i % 16) + i);
    for (int i = 0; i < 8; i++)
        a.span_id[i] = (uint8_t)(0xf0 - i);
    a.trace_flags = 1;
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, at, 15, &t));
    const struct rd_set *s = custom_labels_current_set;
    ASSERT_TRUE(s != NULL);
    ASSERT_EQ(s->count, 10); /* Parca reads 10 labels */
    ASSERT_LE(s->count, s->capacity);
    expect_label(&s->storage[0], "trace_id", "00112233445566778899aabbccddeeff", 32);
    expect_label(&s->storage[1], "otel_spanid", "f0efeeedecebeae9", 16);
    expect_label(&s->storage[2], "http.route", "/a", 2);
    /* the >25-byte key is left out; the value is cut before the straddling character */
    expect_label(&s->storage[3], "v", v60, 52);
    for (int i = 0; i < 6; i++)
        expect_label(&s->storage[4 + i], keys[i], keys[i], strlen(keys[i]));
    otelprof_token t2;
    otelprof_context b = mkctx(2, 0);
    ASSERT_OK(otelprof_attach(&b, NULL, 0, &t2));
    const struct rd_set *s2 = custom_labels_current_set;
    ASSERT_TRUE(s2 != s);
    ASSERT_EQ(s2->count, 2);
    ASSERT_OK(otelprof_detach(&t2));
    ASSERT_TRUE(custom_labels_current_set == s);
    ASSERT_EQ(s->count, 10);
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_NULL(custom_labels_current_set);
}

/* Every byte value, in every position, becomes the right lowercase hex pair. */
static void test_custom_labels_hex(void)
{
    ASSERT_OK(otelprof_init(NULL));
    char want[33];
    for (int b = 0; b < 256; b++) {
        otelprof_context c;
        for (int i = 0; i < 16; i++)
            c.trace_id[i] = (uint8_t)(b + i * 17);
        for (int i = 0; i < 8; i++)
            c.span_id[i] = (uint8_t)(b * 7 + i + 1);
        c.trace_flags = 1;
        otelprof_token t;
        ASSERT_OK(otelprof_attach(&c, NULL, 0, &t));
        const struct rd_set *s = custom_labels_current_set;
        for (int i = 0; i < 16; i++)
            snprintf(want + 2 * i, 3, "%02x", c.trace_id[i]);
        expect_label(&s->storage[0], "otel_traceid", want, 32);
        for (int i = 0; i < 8; i++)
            snprintf(want + 2 * i, 3, "%02x", c.span_id[i]);
        expect_label(&s->storage[1], "otel_spanid", want, 16);
        ASSERT_OK(otelprof_detach(&t));
    }
}

/* The record and label set a reader sees for ctx with one attribute route=v (or none). */
static void expect_route(const otelprof_context *ctx, uint32_t route, const char *v,
                         const char *trace_label)
{
    uint8_t attrs[64] = {0};
    size_t n = 0;
    if (v) {
        attrs[0] = (uint8_t)route;
        attrs[1] = (uint8_t)strlen(v);
        memcpy(attrs + 2, v, strlen(v));
        n = 2 + strlen(v);
    }
    expect_record(ctx, attrs, n);
    const struct rd_set *s = custom_labels_current_set;
    ASSERT_TRUE(s != NULL);
    ASSERT_EQ(s->count, v ? 3 : 2);
    char hx[33];
    for (int i = 0; i < 16; i++)
        snprintf(hx + 2 * i, 3, "%02x", ctx->trace_id[i]);
    expect_label(&s->storage[0], trace_label, hx, 32);
    for (int i = 0; i < 8; i++)
        snprintf(hx + 2 * i, 3, "%02x", ctx->span_id[i]);
    expect_label(&s->storage[1], "otel_spanid", hx, 16);
    if (v)
        expect_label(&s->storage[2], "http.route", v, strlen(v));
}

/* An attach at the depth and arena offset of the frame just popped reuses its unchanged
 * bytes (thread_ctx.c: attach_build). Every way the old bytes can differ from the new
 * ones must still give exactly the record and labels of a fresh attach. */
static void test_reuse(void)
{
    ASSERT_OK(otelprof_init(NULL));
    uint32_t route = reg("http.route"), other = reg("other");
    otelprof_token t, t2;
    otelprof_context a = mkctx(10, 1), a2 = a, b = mkctx(20, 0);
    a2.span_id[0] ^= 0xff; /* same trace, another span */
    otelprof_attr ra = {route, "/a", 2}, rb = {route, "/b", 2}, rbb = {route, "/bbbbbbbbb", 10};
    /* same attribute, same trace: only the span id changes */
    ASSERT_OK(otelprof_attach(&a, &ra, 1, &t));
    expect_route(&a, route, "/a", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_attach(&a2, &ra, 1, &t));
    expect_route(&a2, route, "/a", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    /* same size, other value and trace */
    ASSERT_OK(otelprof_attach(&b, &rb, 1, &t));
    expect_route(&b, route, "/b", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    /* other size, then none, then two */
    ASSERT_OK(otelprof_attach(&b, &rbb, 1, &t));
    expect_route(&b, route, "/bbbbbbbbb", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    expect_route(&a, route, NULL, "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    otelprof_attr two[2] = {{other, "/b", 2}, rb};
    ASSERT_OK(otelprof_attach(&a, two, 2, &t));
    ASSERT_EQ(((const struct rd_set *)custom_labels_current_set)->count, 4);
    expect_label(&((const struct rd_set *)custom_labels_current_set)->storage[2], "other", "/b", 2);
    ASSERT_OK(otelprof_detach(&t));
    /* same key and length, the key changed: not the same entry */
    otelprof_attr ob = {other, "/b", 2};
    ASSERT_OK(otelprof_attach(&a, &rb, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_attach(&a, &ob, 1, &t));
    expect_label(&((const struct rd_set *)custom_labels_current_set)->storage[2], "other", "/b", 2);
    ASSERT_OK(otelprof_detach(&t));
    /* something attached above in between: the frame's bytes may have been overwritten */
    ASSERT_OK(otelprof_attach(&a, &ra, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_attach(&b, &rbb, 1, &t));
    ASSERT_OK(otelprof_attach(&a2, &rb, 1, &t2));
    ASSERT_OK(otelprof_detach(&t2));
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_attach(&a, &ra, 1, &t));
    expect_route(&a, route, "/a", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    /* a failed attach (bad UTF-8) at the same place, then the same attach as before it */
    otelprof_attr bad = {route, "\xff\xfe", 2};
    ASSERT_OK(otelprof_attach(&a, &ra, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_STATUS(otelprof_attach(&a, &bad, 1, &t), OTELPROF_E_UTF8);
    ASSERT_OK(otelprof_attach(&a2, &ra, 1, &t));
    expect_route(&a2, route, "/a", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    /* nested: a root and a child, again with new ids (the root reattached, so the child's
     * frame is intact), then a root of another size (the child's bytes are overwritten) */
    otelprof_attr rc = {route, "/c", 2};
    for (int round = 0; round < 3; round++) {
        otelprof_context root = mkctx(100 + (uint64_t)round, 1),
                         kid = mkctx(200 + (uint64_t)round, 1);
        otelprof_attr *ra_or_long = round == 2 ? &rbb : &ra;
        ASSERT_OK(otelprof_attach(&root, ra_or_long, 1, &t));
        expect_route(&root, route, round == 2 ? "/bbbbbbbbb" : "/a", "otel_traceid");
        ASSERT_OK(otelprof_attach(&kid, &rc, 1, &t2));
        expect_route(&kid, route, "/c", "otel_traceid");
        ASSERT_OK(otelprof_detach(&t2));
        expect_route(&root, route, round == 2 ? "/bbbbbbbbb" : "/a", "otel_traceid");
        ASSERT_OK(otelprof_detach(&t));
    }
    /* custom labels off for one attach, then on again */
    ASSERT_OK(otelprof_attach(&a, &ra, 1, &t));
    ASSERT_OK(otelprof_detach(&t));
    otelprof_shutdown();
    otelprof_init_opts tc = OTELPROF_INIT_OPTS(.formats = OTELPROF_FORMAT_THREAD_CTX);
    ASSERT_OK(otelprof_init(&tc));
    ASSERT_OK(otelprof_attach(&a2, &ra, 1, &t));
    ASSERT_NULL(custom_labels_current_set);
    ASSERT_OK(otelprof_detach(&t));
    otelprof_shutdown();
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_OK(otelprof_attach(&b, &ra, 1, &t));
    expect_route(&b, route, "/a", "otel_traceid");
    ASSERT_OK(otelprof_detach(&t));
    /* the id label names changed in between */
    otelprof_shutdown();
    otelprof_init_opts tl = OTELPROF_INIT_OPTS(.trace_id_label = "tid");
    ASSERT_OK(otelprof_init(&tl));
    ASSERT_OK(otelprof_attach(&b, &ra, 1, &t));
    expect_route(&b, route, "/a", "tid");
    ASSERT_OK(otelprof_detach(&t));
}

static void test_shutdown(void)
{
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_TRUE(has_otel_ctx_mapping());
    otelprof_context a = mkctx(1, 1);
    otelprof_token t;
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    otelprof_shutdown();
    ASSERT_EQ(otelprof_formats(), 0);
    ASSERT_TRUE(!has_otel_ctx_mapping());
    ASSERT_NULL(otel_thread_ctx_v1); /* the calling thread stops publishing at once */
    expect_current(&a);
    ASSERT_OK(otelprof_detach(&t));
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_TRUE(has_otel_ctx_mapping());
    ASSERT_OK(otelprof_attach(&a, NULL, 0, &t));
    expect_record(&a, NULL, 0);
    ASSERT_OK(otelprof_detach(&t));
}

/* The payload is protobuf: strings appear as raw bytes, which is enough to check what the
 * environment contributed (tests/procctx decodes it with protoc). */
static bool payload_contains(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo;
        if (!strstr(line, "OTEL_CTX") || sscanf(line, "%lx-", &lo) != 1)
            continue;
        const unsigned char *h = (const unsigned char *)lo;
        uint32_t size;
        uint64_t ptr;
        memcpy(&size, h + 12, 4);
        memcpy(&ptr, h + 24, 8);
        found = memmem((const void *)(uintptr_t)ptr, size, needle, strlen(needle)) != NULL;
    }
    if (f)
        fclose(f);
    return found;
}

static void test_resource_env(void)
{
    setenv("OTEL_RESOURCE_ATTRIBUTES",
           " deployment.environment = prod%20eu ,team=core%2Cinfra,,empty.value=", 1);
    setenv("OTEL_SERVICE_NAME", "checkout", 1);
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_TRUE(payload_contains("deployment.environment"));
    ASSERT_TRUE(payload_contains("prod eu"));
    ASSERT_TRUE(payload_contains("core,infra"));
    ASSERT_TRUE(payload_contains("empty.value")); /* empty values are allowed, as in the SDK */
    ASSERT_TRUE(payload_contains("checkout"));
    ASSERT_TRUE(payload_contains("tlsdesc_v1_dev"));
    ASSERT_TRUE(!payload_contains("unknown_service"));
    ASSERT_OK(otelprof_resource_set("service.version", "1.2.3"));
    ASSERT_TRUE(payload_contains("1.2.3"));
    uint32_t k;
    ASSERT_OK(otelprof_key_register("a.new.key", &k));
    ASSERT_TRUE(payload_contains("a.new.key"));
    ASSERT_STATUS(otelprof_resource_set("k", "bad\xff"), OTELPROF_E_INVAL);
}

static void test_resource_env_malformed(void)
{
    static char logged[256];
    otelprof_set_log(log_capture, logged, NULL, NULL);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,bad%zz=2", 1);
    unsetenv("OTEL_SERVICE_NAME");
    ASSERT_OK(otelprof_init(NULL));
    ASSERT_TRUE(strstr(logged, "OTEL_RESOURCE_ATTRIBUTES") != NULL);
    ASSERT_TRUE(!payload_contains("good"));                 /* all of it discarded */
    ASSERT_TRUE(payload_contains("unknown_service:test-")); /* program name default */
}

/* Many threads attach/detach while others register keys and set resources: run under TSan. */
static atomic_bool stop_flag;

static void *churn(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg << 32;
    uint32_t k = 0;
    for (uint64_t i = 1; !atomic_load(&stop_flag) || i < 1000; i++) {
        otelprof_context c = mkctx(base + i, 1), d = mkctx(base + i + 7, 0);
        otelprof_attr at = {k, "v", 1};
        otelprof_token t1, t2;
        ASSERT_OK(otelprof_attach(&c, &at, 1, &t1));
        ASSERT_OK(otelprof_attach(&d, NULL, 0, &t2));
        expect_current(&d);
        ASSERT_OK(otelprof_detach(&t2));
        expect_current(&c);
        ASSERT_OK(otelprof_detach(&t1));
        expect_current(NULL);
    }
    return NULL;
}

static void test_concurrency(void)
{
    uint32_t k;
    ASSERT_OK(otelprof_key_register("first", &k));
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "dyn.%d", i);
        ASSERT_OK(otelprof_key_register(name, &k));
        ASSERT_OK(otelprof_resource_set("iteration", name));
    }
    atomic_store(&stop_flag, true);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"status_codes", test_status_codes},
        {"attach_detach", test_attach_detach},
        {"nesting", test_nesting},
        {"unwind", test_unwind},
        {"clear", test_clear},
        {"zero_ids", test_zero_ids},
        {"attributes", test_attributes},
        {"bad_utf8", test_bad_utf8},
        {"oversized", test_oversized},
        {"bad_keys", test_bad_keys},
        {"key_limit", test_key_limit},
        {"depth", test_depth},
        {"arena_full", test_arena_full},
        {"wrong_thread", test_wrong_thread},
        {"thread_exit", test_thread_exit},
        {"fork", test_fork},
        {"signal_handler", test_signal_handler},
        {"formats_env_thread_only", test_formats_env_thread_only},
        {"formats_env_labels_only", test_formats_env_labels_only},
        {"formats_env_bad", test_formats_env_bad},
        {"formats_api", test_formats_api},
        {"init_opts", test_init_opts},
        {"custom_labels", test_custom_labels},
        {"custom_labels_hex", test_custom_labels_hex},
        {"reuse", test_reuse},
        {"shutdown", test_shutdown},
        {"resource_env", test_resource_env},
        {"resource_env_malformed", test_resource_env_malformed},
        {"concurrency", test_concurrency},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
