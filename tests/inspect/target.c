/* Target process for the out-of-process tests: written against the public API only.
 *
 * Starts threads that each publish a distinct context (nested, detached back to an outer
 * one, cleared, never attached, no attributes, many labels, a record at the 640-byte
 * limit), then prints one JSON line with what every thread should show to a reader, and
 * waits until its standard input closes.
 *
 * Built as an executable (static or shared libotelprof) or, with INSPECT_PLUGIN, as a
 * plugin that a host dlopen()s: inspect_plugin_run() is then the entry point.
 */
#define _GNU_SOURCE
#include <otelprof/context.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "inspect target: " __VA_ARGS__);                                           \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)
#define CHECK(call)                                                                                \
    do {                                                                                           \
        otelprof_status st_ = (call);                                                              \
        if (st_ != OTELPROF_OK)                                                                    \
            DIE("%s: %s", #call, otelprof_strerror(st_));                                          \
    } while (0)

/* Keys; K_LONG is over Parca's 25-byte key limit, so custom labels leave it out. */
enum { K_ROUTE, K_TENANT, K_LONG, K_USER, K_X0, K_COUNT = K_X0 + 10 };
/* clang-format off */
static const char *const key_names[K_COUNT] = {
    "http.route", "tenant", "service.request.correlation.identifier", "user.name",
    "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09",
};
/* clang-format on */
static uint32_t keys[K_COUNT];

/* custom-labels limits the writer documents (docs/architecture.md) */
#define CL_LABELS 10
#define CL_KEY    25
#define CL_VALUE  53

struct attr_spec {
    int key;
    const char *value;
};

struct ctx_spec {
    unsigned seed;
    uint8_t flags;
    size_t n;
    struct attr_spec attrs[12];
};

/* ---------------------------------------------------------------- JSON out ---- */

struct out {
    char buf[16384];
    size_t len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof o->buf - o->len)
        DIE("expectation buffer too small");
    o->len += (size_t)n;
}

/* The values here are UTF-8 without control characters; escape what JSON requires. */
static void put_str(struct out *o, const char *s, size_t n)
{
    put(o, "\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            put(o, "\\%c", s[i]);
        else
            put(o, "%c", s[i]);
    }
    put(o, "\"");
}

static void hex(char *out, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static void make_ctx(const struct ctx_spec *c, otelprof_context *ctx)
{
    for (unsigned i = 0; i < 16; i++)
        ctx->trace_id[i] = (uint8_t)(c->seed * 37u + i * 11u + 1u);
    for (unsigned i = 0; i < 8; i++)
        ctx->span_id[i] = (uint8_t)(c->seed * 53u + i * 7u + 3u);
    ctx->trace_flags = c->flags;
}

static otelprof_token attach(const struct ctx_spec *c)
{
    otelprof_context ctx;
    otelprof_attr attrs[12];
    make_ctx(c, &ctx);
    for (size_t i = 0; i < c->n; i++)
        attrs[i] =
            (otelprof_attr){keys[c->attrs[i].key], c->attrs[i].value, OTELPROF_NUL_TERMINATED};
    otelprof_token t;
    CHECK(otelprof_attach(&ctx, attrs, c->n, &t));
    return t;
}

/* What a reader must see for context c (NULL: nothing attached). */
static void expect_tid(struct out *o, long thread_id, const char *name, const struct ctx_spec *c)
{
    put(o, "{\"tid\":%ld,\"name\":", thread_id);
    put_str(o, name, strlen(name));
    if (!c) {
        put(o, ",\"thread_ctx\":{\"state\":\"none\"},\"custom_labels\":{\"state\":\"none\"}}");
        return;
    }
    otelprof_context ctx;
    make_ctx(c, &ctx);
    char tid[33], sid[17];
    hex(tid, ctx.trace_id, 16);
    hex(sid, ctx.span_id, 8);
    put(o,
        ",\"thread_ctx\":{\"state\":\"attached\",\"trace_id\":\"%s\",\"span_id\":\"%s\","
        "\"trace_flags\":%u,\"attributes\":{",
        tid, sid, c->flags);
    for (size_t i = 0; i < c->n; i++) {
        put(o, i ? "," : "");
        put_str(o, key_names[c->attrs[i].key], strlen(key_names[c->attrs[i].key]));
        put(o, ":");
        put_str(o, c->attrs[i].value, strlen(c->attrs[i].value));
    }
    /* custom labels: the ids, then attributes whose key fits, values cut at a character
     * boundary, 10 labels at most */
    put(o,
        "}},\"custom_labels\":{\"state\":\"attached\",\"labels\":{\"otel_traceid\":\"%s\","
        "\"otel_spanid\":\"%s\"",
        tid, sid);
    size_t labels = 2;
    for (size_t i = 0; i < c->n && labels < CL_LABELS; i++) {
        const char *k = key_names[c->attrs[i].key], *v = c->attrs[i].value;
        if (strlen(k) > CL_KEY)
            continue;
        size_t len = strlen(v), cut = len < CL_VALUE ? len : CL_VALUE;
        while (cut > 0 && cut < len && ((unsigned char)v[cut] & 0xc0) == 0x80)
            cut--;
        put(o, ",");
        put_str(o, k, strlen(k));
        put(o, ":");
        put_str(o, v, cut);
        labels++;
    }
    put(o, "}}}");
}

static void expect(struct out *o, const char *name, const struct ctx_spec *c)
{
    expect_tid(o, (long)syscall(SYS_gettid), name, c);
}

/* ---------------------------------------------------------------- threads ---- */

struct worker {
    const char *name;
    void (*fn)(struct worker *);
    pthread_t th;
    struct out exp;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;
static int stop;

static char big_route[256], big_tenant[256], big_user[128];

static void w_simple(struct worker *w)
{
    static const struct ctx_spec a = {
        1, 0x01, 2, {{K_ROUTE, "/api/v1/users/{id}"}, {K_TENANT, "acme"}}};
    (void)attach(&a);
    expect(&w->exp, w->name, &a);
}

/* three deep, multibyte values, a key too long for custom labels */
static void w_nested3(struct worker *w)
{
    static const struct ctx_spec b = {2, 0x01, 1, {{K_ROUTE, "/orders"}}};
    static const struct ctx_spec c = {
        3, 0x03, 2, {{K_TENANT, "caf\xc3\xa9 \xe2\x98\x95"}, {K_ROUTE, "/orders/{id}"}}};
    static const struct ctx_spec d = {4,
                                      0x01,
                                      2,
                                      {{K_LONG, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
                                                "\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88"},
                                       {K_USER, "Zo\xc3\xab \xf0\x9f\x98\x80"}}};
    (void)attach(&b);
    (void)attach(&c);
    (void)attach(&d);
    expect(&w->exp, w->name, &d);
}

/* attach, attach, detach: back to the outer one */
static void w_detach(struct worker *w)
{
    static const struct ctx_spec e = {5, 0x01, 1, {{K_ROUTE, "/outer"}}};
    static const struct ctx_spec f = {6, 0x01, 1, {{K_TENANT, "inner"}}};
    (void)attach(&e);
    otelprof_token t = attach(&f);
    CHECK(otelprof_detach(&t));
    expect(&w->exp, w->name, &e);
}

/* three deep, detach the innermost: the middle one shows */
static void w_detach3(struct worker *w)
{
    static const struct ctx_spec g = {7, 0x01, 1, {{K_ROUTE, "/g"}}};
    static const struct ctx_spec h = {
        8, 0x00, 2, {{K_ROUTE, "/h"}, {K_TENANT, "\xce\xb1\xce\xb2\xce\xb3"}}};
    static const struct ctx_spec i = {9, 0x01, 1, {{K_USER, "innermost"}}};
    (void)attach(&g);
    (void)attach(&h);
    otelprof_token t = attach(&i);
    CHECK(otelprof_detach(&t));
    expect(&w->exp, w->name, &h);
}

static void w_cleared(struct worker *w)
{
    static const struct ctx_spec j = {10, 0x01, 1, {{K_ROUTE, "/cleared"}}};
    (void)attach(&j);
    otelprof_token t;
    CHECK(otelprof_clear(&t));
    expect(&w->exp, w->name, NULL);
}

static void w_never(struct worker *w)
{
    expect(&w->exp, w->name, NULL);
}

static void w_noattrs(struct worker *w)
{
    static const struct ctx_spec k = {11, 0x00, 0, {{0, NULL}}};
    (void)attach(&k);
    expect(&w->exp, w->name, &k);
}

/* 11 attributes: custom labels stop at 10 labels (the ids + 8) */
static void w_many(struct worker *w)
{
    static const struct ctx_spec l = {12,
                                      0x01,
                                      11,
                                      {{K_X0, "v0"},
                                       {K_X0 + 1, "v1"},
                                       {K_X0 + 2, "v2"},
                                       {K_X0 + 3, "v3"},
                                       {K_X0 + 4, "v4"},
                                       {K_X0 + 5, "v5"},
                                       {K_X0 + 6, "v6"},
                                       {K_X0 + 7, "v7"},
                                       {K_X0 + 8, "v8"},
                                       {K_X0 + 9, "v9"},
                                       {K_ROUTE, "/many"}}};
    (void)attach(&l);
    expect(&w->exp, w->name, &l);
}

/* entries of exactly 612 bytes: a 640-byte record; long values cut in custom labels */
static void w_big(struct worker *w)
{
    struct ctx_spec m = {
        13, 0x01, 3, {{K_ROUTE, big_route}, {K_TENANT, big_tenant}, {K_USER, big_user}}};
    (void)attach(&m);
    expect(&w->exp, w->name, &m);
}

/* attach, detach, attach again */
static void w_reattach(struct worker *w)
{
    static const struct ctx_spec n = {14, 0x01, 1, {{K_ROUTE, "/first"}}};
    static const struct ctx_spec o = {15, 0x03, 1, {{K_TENANT, "second"}}};
    otelprof_token t = attach(&n);
    CHECK(otelprof_detach(&t));
    (void)attach(&o);
    expect(&w->exp, w->name, &o);
}

static struct worker workers[] = {
    {"t-simple", w_simple, 0, {{0}, 0}},   {"t-nested3", w_nested3, 0, {{0}, 0}},
    {"t-detach", w_detach, 0, {{0}, 0}},   {"t-detach3", w_detach3, 0, {{0}, 0}},
    {"t-cleared", w_cleared, 0, {{0}, 0}}, {"t-never", w_never, 0, {{0}, 0}},
    {"t-noattrs", w_noattrs, 0, {{0}, 0}}, {"t-many", w_many, 0, {{0}, 0}},
    {"t-big", w_big, 0, {{0}, 0}},         {"t-reattach", w_reattach, 0, {{0}, 0}},
};
#define N_WORKERS (sizeof workers / sizeof workers[0])

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_setname_np(pthread_self(), w->name);
    w->fn(w);
    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_broadcast(&cv);
    while (!stop)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void finish(void)
{
    /* Wait for the test driver to close our standard input. */
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&mu);
    stop = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < N_WORKERS; i++)
        pthread_join(workers[i].th, NULL);
}

static struct out o;

/* With INSPECT_LEADER_EXITS: once the main thread is a zombie, print and wait. */
static void *finisher(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "t-finisher");
    char path[64], st[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", (long)getpid());
    for (;;) {
        FILE *f = fopen(path, "re");
        size_t n = f ? fread(st, 1, sizeof st - 1, f) : 0;
        if (f)
            fclose(f);
        st[n] = '\0';
        const char *p = strrchr(st, ')');
        if (!f || (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')))
            break;
        usleep(1000);
    }
    expect(&o, "t-finisher", NULL);
    for (size_t i = 0; i < N_WORKERS; i++)
        put(&o, ",%s", workers[i].exp.buf);
    put(&o, "]}\n");
    fwrite(o.buf, 1, o.len, stdout);
    fflush(stdout);
    finish();
    exit(0);
}

#ifdef INSPECT_PLUGIN
int inspect_plugin_run(void);
__attribute__((visibility("default"))) int inspect_plugin_run(void)
#else
static int target_run(void)
#endif
{
    /* 255 + 255 + 96 bytes of values + 3 * 2 bytes of entry headers = 612 */
    big_route[0] = '/';
    memset(big_route + 1, 'r', 254);
    for (int i = 0; i < 127; i++)
        memcpy(big_tenant + 2 * i, "\xc3\xbc", 2); /* u-umlaut, 2 bytes */
    big_tenant[254] = 'x';
    for (int i = 0; i < 32; i++)
        memcpy(big_user + 3 * i, "\xe2\x82\xac", 3); /* euro sign, 3 bytes */

    CHECK(otelprof_init(
        &OTELPROF_INIT_OPTS(.formats = OTELPROF_FORMAT_ALL, .service_name = "inspect-target")));
    for (int i = 0; i < K_COUNT; i++)
        CHECK(otelprof_key_register(key_names[i], &keys[i]));
    pthread_setname_np(pthread_self(), "t-main");

    for (size_t i = 0; i < N_WORKERS; i++)
        if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) != 0)
            DIE("pthread_create failed");
    pthread_mutex_lock(&mu);
    while (ready < (int)N_WORKERS)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    put(&o, "{\"pid\":%ld,\"service_name\":\"inspect-target\",\"keys\":[", (long)getpid());
    for (int i = 0; i < K_COUNT; i++) {
        put(&o, i ? "," : "");
        put_str(&o, key_names[i], strlen(key_names[i]));
    }
    put(&o, "],\"threads\":[");
    /* INSPECT_LEADER_EXITS: the main thread leaves with pthread_exit (a zombie thread-group
     * leader has no memory map: readers must use another thread's view) */
    if (getenv("INSPECT_LEADER_EXITS")) {
        pthread_t th;
        if (pthread_create(&th, NULL, finisher, NULL) != 0)
            DIE("pthread_create failed");
        pthread_exit(NULL);
    }
    expect(&o, "t-main", NULL);
    for (size_t i = 0; i < N_WORKERS; i++)
        put(&o, ",%s", workers[i].exp.buf);
    put(&o, "]}\n");
    fwrite(o.buf, 1, o.len, stdout);
    fflush(stdout);
    finish();
    return 0;
}

#ifndef INSPECT_PLUGIN
int main(void)
{
    return target_run();
}
#endif
