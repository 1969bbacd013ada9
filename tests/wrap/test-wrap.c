/* The profiling tracer wrapper: spans started through it are published on the starting
 * thread and restored at their end (checked through the core read-back API and the
 * OTEP 4947 record itself); options; cross-thread end. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include "test.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

extern __thread void *otel_thread_ctx_v1;

static otelprof_span_exporter *mem;

static otelprof_tracer_provider *sdk_provider(otelprof_sampler *sampler)
{
    mem = otelprof_memory_exporter_new(1000);
    ASSERT_TRUE(mem != NULL);
    otelprof_span_processor *proc = otelprof_simple_processor_new(mem);
    ASSERT_TRUE(proc != NULL);
    otelprof_span_processor *procs[] = {proc};
    otelprof_sdk_opts o =
        OTELPROF_SDK_OPTS(.sampler = sampler ? sampler : otelprof_sampler_always_on(),
                          .processors = procs, .n_processors = 1);
    otelprof_status err = OTELPROF_OK;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&o, &err);
    ASSERT_OK(err);
    ASSERT_TRUE(p != NULL);
    return p;
}

static otelprof_tracer_provider *wrapped(otelprof_sampler *sampler, const otelprof_wrap_opts *wo)
{
    otelprof_wrap_opts o = wo ? *wo : OTELPROF_WRAP_OPTS(.take_ownership = true);
    o.take_ownership = true;
    otelprof_status err = OTELPROF_E_INVAL;
    otelprof_tracer_provider *w = otelprof_tracer_provider_wrap(sdk_provider(sampler), &o, &err);
    ASSERT_OK(err);
    ASSERT_TRUE(w != NULL);
    return w;
}

/* The thread's published context equals the span's. */
static void expect_published(const otelprof_span *span)
{
    const otelprof_span_context *sc = otelprof_span_get_context(span);
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.trace_id, sc->trace_id, 16);
    ASSERT_MEM_EQ(cur.span_id, sc->span_id, 8);
    ASSERT_EQ(cur.trace_flags, sc->trace_flags);
    const uint8_t *r = otel_thread_ctx_v1;
    ASSERT_TRUE(r != NULL);
    ASSERT_MEM_EQ(r, sc->trace_id, 16);
    ASSERT_MEM_EQ(r + 16, sc->span_id, 8);
    ASSERT_EQ(r[24], 1);
}

static void expect_nothing(void)
{
    ASSERT_STATUS(otelprof_current(NULL, NULL, 0, NULL), OTELPROF_E_NO_CONTEXT);
    ASSERT_NULL(otel_thread_ctx_v1);
}

static otelprof_span *child_of(otelprof_tracer *t, const char *name, const otelprof_span *parent)
{
    otelprof_span_start_opts o =
        OTELPROF_SPAN_START_OPTS(.parent = otelprof_span_get_context(parent));
    return otelprof_tracer_start_span(t, name, &o);
}

static void test_nested(void)
{
    otelprof_tracer_provider *p = wrapped(NULL, NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", "1", NULL);
    ASSERT_TRUE(t == otelprof_tracer_provider_get_tracer(p, "test", "1", NULL));
    expect_nothing();
    otelprof_span *a = otelprof_tracer_start_span(t, "a", NULL);
    expect_published(a);
    otelprof_span *b = child_of(t, "b", a);
    ASSERT_MEM_EQ(otelprof_span_get_context(b)->trace_id, otelprof_span_get_context(a)->trace_id,
                  16);
    expect_published(b);
    otelprof_span *c = child_of(t, "c", b);
    expect_published(c);
    otelprof_span_end(c, 0);
    expect_published(b);
    otelprof_span_end(b, 0);
    expect_published(a);
    otelprof_span_end(a, 0);
    expect_nothing();
    /* the wrapper is transparent: the inner provider exported all three */
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 3);
    ASSERT_STR_EQ(otelprof_memory_exporter_get(mem, 0)->name, "c");
    ASSERT_MEM_EQ(otelprof_memory_exporter_get(mem, 0)->parent_span_id,
                  otelprof_memory_exporter_get(mem, 1)->context.span_id, 8);
    otelprof_wrap_stats st;
    ASSERT_OK(otelprof_wrap_get_stats(p, &st));
    ASSERT_EQ(st.published, 3);
    otelprof_tracer_provider_free(p);
}

static void test_out_of_order_end(void)
{
    otelprof_tracer_provider *p = wrapped(NULL, NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_token outer;
    otelprof_context o = {
        {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, {7, 7, 7, 7, 7, 7, 7, 7}, 1};
    ASSERT_OK(otelprof_attach(&o, NULL, 0, &outer));
    otelprof_span *a = otelprof_tracer_start_span(t, "a", NULL);
    otelprof_span *b = child_of(t, "b", a);
    /* ending the outer span first restores what was there before it, b included */
    otelprof_span_end(a, 0);
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.trace_id, o.trace_id, 16);
    otelprof_span_end(b, 0);
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.span_id, o.span_id, 8);
    ASSERT_OK(otelprof_detach(&outer));
    expect_nothing();
    otelprof_tracer_provider_free(p);
}

static void test_unsampled(void)
{
    /* default: unsampled spans are published, the flags say so */
    otelprof_tracer_provider *p = wrapped(otelprof_sampler_always_off(), NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_span *a = otelprof_tracer_start_span(t, "a", NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(a));
    ASSERT_TRUE(otelprof_span_context_is_valid(otelprof_span_get_context(a)));
    expect_published(a);
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_EQ(cur.trace_flags & OTELPROF_FLAG_SAMPLED, 0);
    otelprof_span_end(a, 0);
    expect_nothing();
    otelprof_tracer_provider_free(p);

    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.skip_unsampled = true);
    p = wrapped(otelprof_sampler_always_off(), &wo);
    t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    a = otelprof_tracer_start_span(t, "a", NULL);
    expect_nothing();
    otelprof_span_end(a, 0);
    otelprof_wrap_stats st;
    ASSERT_OK(otelprof_wrap_get_stats(p, &st));
    ASSERT_EQ(st.published, 0);
    ASSERT_EQ(st.not_published, 1);
    otelprof_tracer_provider_free(p);

    /* sampled spans under skip_unsampled are still published */
    p = wrapped(otelprof_sampler_always_on(), &wo);
    t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    a = otelprof_tracer_start_span(t, "a", NULL);
    expect_published(a);
    otelprof_span_end(a, 0);
    otelprof_tracer_provider_free(p);
}

static void test_local_roots_only(void)
{
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.local_roots_only = true);
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_span *root = otelprof_tracer_start_span(t, "root", NULL);
    expect_published(root);
    otelprof_span *child = child_of(t, "child", root);
    expect_published(root); /* the child is not a local root: the root stays published */
    otelprof_span_end(child, 0);
    expect_published(root);
    otelprof_span_end(root, 0);
    expect_nothing();

    /* a span whose parent came from another process is a local root */
    otelprof_span_context remote;
    ASSERT_OK(otelprof_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                         55, &remote));
    remote.is_remote = true;
    otelprof_span_start_opts so =
        OTELPROF_SPAN_START_OPTS(.parent = &remote, .kind = OTELPROF_SPAN_KIND_SERVER);
    otelprof_span *server = otelprof_tracer_start_span(t, "server", &so);
    expect_published(server);
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.trace_id, remote.trace_id, 16);
    otelprof_span_end(server, 0);
    expect_nothing();
    otelprof_tracer_provider_free(p);
}

static const char *published_attr(const char *key)
{
    static char buf[300];
    otelprof_attr at[16];
    size_t n = 0;
    if (otelprof_current(NULL, at, 16, &n) != OTELPROF_OK)
        return NULL;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(otelprof_key_name(at[i].key), key) == 0) {
            memcpy(buf, at[i].value, at[i].value_len);
            buf[at[i].value_len] = 0;
            return buf;
        }
    }
    return NULL;
}

static void test_attributes(void)
{
    static const char *const keys[] = {"http.route", "tenant.id"};
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 2,
                                               .span_name_key = "span.name");
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_kv kv[] = {OTELPROF_KV_STR("http.route", "/users/{id}"),
                        OTELPROF_KV_INT("tenant.id", 42), OTELPROF_KV_STR("not.published", "x")};
    otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = kv, .n_attrs = 3);
    otelprof_span *s = otelprof_tracer_start_span(t, "GET /users/{id}", &so);
    ASSERT_STR_EQ(published_attr("http.route"), "/users/{id}");
    ASSERT_STR_EQ(published_attr("tenant.id"), "42");
    ASSERT_STR_EQ(published_attr("span.name"), "GET /users/{id}");
    ASSERT_NULL(published_attr("not.published"));
    /* the route is often known only after routing: republished while innermost */
    otelprof_kv later = OTELPROF_KV_STR("http.route", "/orders/{id}");
    otelprof_span_set_attributes(s, &later, 1);
    ASSERT_STR_EQ(published_attr("http.route"), "/orders/{id}");
    expect_published(s);
    otelprof_span_end(s, 0);
    expect_nothing();
    otelprof_tracer_provider_free(p);
}

/* Number of attributes the thread publishes now. */
static size_t published_count(void)
{
    size_t n = 0;
    ASSERT_OK(otelprof_current(NULL, NULL, 0, &n));
    return n;
}

/* Values of every type, a key given twice, later updates of one key keeping the others,
 * and values that cannot be published. */
static void test_attribute_updates(void)
{
    static const char *const keys[] = {"http.route", "tenant.id", "cache.hit", "load"};
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 4,
                                               .span_name_key = "span.name");
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_kv kv[] = {
        OTELPROF_KV_STR("http.route", "/first"), OTELPROF_KV_INT("tenant.id", -7),
        OTELPROF_KV_BOOL("cache.hit", true),     OTELPROF_KV_DOUBLE("load", 0.5),
        OTELPROF_KV_STR("other", "x"),           OTELPROF_KV_STR("http.route", "/second")};
    otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = kv, .n_attrs = 6);
    otelprof_span *s = otelprof_tracer_start_span(t, "op", &so);
    ASSERT_STR_EQ(published_attr("http.route"), "/second"); /* the later one wins */
    ASSERT_STR_EQ(published_attr("tenant.id"), "-7");
    ASSERT_STR_EQ(published_attr("cache.hit"), "true");
    ASSERT_STR_EQ(published_attr("load"), "0.5");
    ASSERT_STR_EQ(published_attr("span.name"), "op");
    ASSERT_EQ(published_count(), 5);
    /* one key updated: the others stay */
    otelprof_kv upd = OTELPROF_KV_INT("tenant.id", 8);
    otelprof_span_set_attributes(s, &upd, 1);
    ASSERT_STR_EQ(published_attr("tenant.id"), "8");
    ASSERT_STR_EQ(published_attr("http.route"), "/second");
    ASSERT_STR_EQ(published_attr("span.name"), "op");
    ASSERT_EQ(published_count(), 5);
    /* no configured key: nothing changes */
    otelprof_kv none = OTELPROF_KV_STR("other", "y");
    otelprof_span_set_attributes(s, &none, 1);
    ASSERT_EQ(published_count(), 5);
    /* a value over 255 bytes is left out, the others stay */
    char big[300];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = 0;
    otelprof_kv longer = OTELPROF_KV_STR("http.route", big);
    otelprof_span_set_attributes(s, &longer, 1);
    ASSERT_NULL(published_attr("http.route"));
    ASSERT_STR_EQ(published_attr("tenant.id"), "8");
    ASSERT_EQ(published_count(), 4);
    /* a value the core refuses (not UTF-8): the ids stay published, alone */
    otelprof_kv bad = OTELPROF_KV_STR("http.route", "/\xff");
    otelprof_span_set_attributes(s, &bad, 1);
    expect_published(s);
    ASSERT_EQ(published_count(), 0);
    otelprof_span_end(s, 0);
    expect_nothing();
    /* the same again from the start: the values other than the refused one survive */
    otelprof_kv kv2[] = {OTELPROF_KV_STR("http.route", "/\xff"), OTELPROF_KV_INT("tenant.id", 1)};
    otelprof_span_start_opts so2 = OTELPROF_SPAN_START_OPTS(.attrs = kv2, .n_attrs = 2);
    s = otelprof_tracer_start_span(t, "op", &so2);
    expect_published(s);
    ASSERT_EQ(published_count(), 0);
    otelprof_span_end(s, 0);
    otelprof_tracer_provider_free(p);
}

/* Key matching: near misses are not matches, and keys read near the end of a readable
 * page (followed by an unreadable one) neither fault nor fail to match. */
static void test_key_matching(void)
{
    static const char *const keys[] = {"http.route", "a.key.of.twenty.chars"};
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 2);
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    static const char *const misses[] = {"http.rout",
                                         "http.route2",
                                         "http.routE",
                                         "h",
                                         "a.key.of.twenty.char",
                                         "a.key.of.twenty.charz",
                                         "http.route\x01"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        otelprof_kv kv = OTELPROF_KV_STR(misses[i], "v");
        otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = &kv, .n_attrs = 1);
        otelprof_span *s = otelprof_tracer_start_span(t, "op", &so);
        expect_published(s);
        ASSERT_EQ(published_count(), 0);
        otelprof_span_end(s, 0);
    }
    long pg = sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    ASSERT_EQ(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    /* the NUL on the page's last byte, and starting 16, 15 and 2 bytes before its end */
    static const struct {
        size_t from_end;
        const char *key;
        bool match;
    } at[] = {{11, "http.route", true},
              {16, "http.route", true},
              {15, "http.route", true},
              {2, "h", false},
              {22, "a.key.of.twenty.chars", true}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char *k = m + pg - at[i].from_end;
        memset(m, 'x', (size_t)pg);
        memcpy(k, at[i].key, strlen(at[i].key) + 1);
        otelprof_kv kv = OTELPROF_KV_STR(k, "/v");
        otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = &kv, .n_attrs = 1);
        otelprof_span *s = otelprof_tracer_start_span(t, "op", &so);
        ASSERT_EQ(published_count(), at[i].match ? 1 : 0);
        otelprof_span_end(s, 0);
    }
    munmap(m, (size_t)pg * 2);
    otelprof_tracer_provider_free(p);
}

/* set_attributes while code inside the span published a context of its own: that context
 * is left alone, and the span's comes back unchanged when it is detached. */
static void test_set_attributes_under_own_context(void)
{
    static const char *const keys[] = {"http.route"};
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 1);
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_kv kv = OTELPROF_KV_STR("http.route", "/span");
    otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = &kv, .n_attrs = 1);
    otelprof_span *s = otelprof_tracer_start_span(t, "op", &so);
    otelprof_context mine;
    memset(&mine, 0, sizeof mine);
    mine.trace_id[0] = 0x42;
    mine.span_id[0] = 0x43;
    otelprof_token tok;
    ASSERT_OK(otelprof_attach(&mine, NULL, 0, &tok));
    otelprof_kv later = OTELPROF_KV_STR("http.route", "/later");
    otelprof_span_set_attributes(s, &later, 1);
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.trace_id, mine.trace_id, 16);
    ASSERT_EQ(published_count(), 0);
    ASSERT_OK(otelprof_detach(&tok));
    expect_published(s);
    ASSERT_STR_EQ(published_attr("http.route"), "/span");
    otelprof_span_end(s, 0);
    expect_nothing();
    otelprof_tracer_provider_free(p);
}

static void test_cardinality_guard(void)
{
    static const char *const keys[] = {"user.id"};
    otelprof_wrap_opts wo =
        OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 1, .max_distinct_values = 3);
    otelprof_tracer_provider *p = wrapped(NULL, &wo);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    static const char *const users[] = {"u1", "u2", "u3", "u4", "u1", "u5", "u3"};
    static const bool shown[] = {true, true, true, false, true, false, true};
    for (size_t i = 0; i < 7; i++) {
        otelprof_kv kv = OTELPROF_KV_STR("user.id", users[i]);
        otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = &kv, .n_attrs = 1);
        otelprof_span *s = otelprof_tracer_start_span(t, "op", &so);
        expect_published(s); /* the ids are always published */
        const char *v = published_attr("user.id");
        if (shown[i])
            ASSERT_STR_EQ(v, users[i]);
        else
            ASSERT_NULL(v);
        otelprof_span_end(s, 0);
    }
    otelprof_wrap_stats st;
    ASSERT_OK(otelprof_wrap_get_stats(p, &st));
    ASSERT_EQ(st.values_dropped, 2);
    otelprof_tracer_provider_free(p);
}

/* Cross-thread end: thread A starts a span, thread B ends it. */
static otelprof_span *handoff;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;

static void wait_phase(int p)
{
    pthread_mutex_lock(&mu);
    while (phase < p)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void set_phase(int p)
{
    pthread_mutex_lock(&mu);
    phase = p;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void *ender(void *arg)
{
    otelprof_tracer *t = arg;
    /* B has its own span open: ending A's span must not touch it */
    otelprof_span *own = otelprof_tracer_start_span(t, "b-own", NULL);
    expect_published(own);
    wait_phase(1);
    otelprof_span_end(handoff, 0);
    expect_published(own);
    otelprof_span_end(own, 0);
    expect_nothing();
    set_phase(2);
    return NULL;
}

static void test_cross_thread_end(void)
{
    otelprof_tracer_provider *p = wrapped(NULL, NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    pthread_t b;
    ASSERT_EQ(pthread_create(&b, NULL, ender, t), 0);
    otelprof_span *outer = otelprof_tracer_start_span(t, "a-outer", NULL);
    handoff = child_of(t, "a-handoff", outer);
    otelprof_span_context hc = *otelprof_span_get_context(handoff);
    set_phase(1);
    wait_phase(2);
    ASSERT_EQ(pthread_join(b, NULL), 0);
    /* A still shows the handed-off span (intact) until it syncs... */
    otelprof_context cur;
    ASSERT_OK(otelprof_current(&cur, NULL, 0, NULL));
    ASSERT_MEM_EQ(cur.span_id, hc.span_id, 8);
    otelprof_wrap_thread_sync();
    expect_published(outer);
    /* ...or starts/ends anything through the wrapper: check that path too */
    otelprof_span *again = child_of(t, "a-again", outer);
    expect_published(again);
    otelprof_span_end(again, 0);
    expect_published(outer);
    otelprof_span_end(outer, 0);
    expect_nothing();
    otelprof_wrap_stats st;
    ASSERT_OK(otelprof_wrap_get_stats(p, &st));
    ASSERT_EQ(st.ended_on_other_thread, 1);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 4);
    otelprof_tracer_provider_free(p);
}

static void test_cross_thread_end_then_start(void)
{
    otelprof_tracer_provider *p = wrapped(NULL, NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    pthread_t b;
    phase = 0;
    ASSERT_EQ(pthread_create(&b, NULL, ender, t), 0);
    handoff = otelprof_tracer_start_span(t, "a-handoff", NULL);
    set_phase(1);
    wait_phase(2);
    ASSERT_EQ(pthread_join(b, NULL), 0);
    /* the next span on A first drops the retired one, then publishes itself */
    otelprof_span *next = otelprof_tracer_start_span(t, "a-next", NULL);
    expect_published(next);
    otelprof_span_end(next, 0);
    expect_nothing();
    otelprof_tracer_provider_free(p);
}

/* Counters stay exact with more threads than counter shards (64 of their own, then a
 * shared one), and with shards passed on from exited threads to new ones. */
static otelprof_tracer *stats_tracer;
static pthread_barrier_t stats_barrier;

static void *stats_worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&stats_barrier); /* all alive at once: some share the last shard */
    for (int i = 0; i < 200; i++)
        otelprof_span_end(otelprof_tracer_start_span(stats_tracer, "op", NULL), 0);
    return NULL;
}

static void test_stats_threads(void)
{
    otelprof_tracer_provider *p = wrapped(NULL, NULL);
    stats_tracer = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    enum { N = 70 };
    for (int round = 0; round < 2; round++) {
        pthread_t th[N];
        ASSERT_EQ(pthread_barrier_init(&stats_barrier, NULL, N), 0);
        for (int i = 0; i < N; i++)
            ASSERT_EQ(pthread_create(&th[i], NULL, stats_worker, NULL), 0);
        for (int i = 0; i < N; i++)
            ASSERT_EQ(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&stats_barrier);
    }
    otelprof_wrap_stats st;
    ASSERT_OK(otelprof_wrap_get_stats(p, &st));
    ASSERT_EQ(st.published, 2 * N * 200);
    ASSERT_EQ(st.not_published, 0);
    otelprof_tracer_provider_free(p);
}

static void test_bad_args(void)
{
    otelprof_status err = OTELPROF_OK;
    ASSERT_NULL(otelprof_tracer_provider_wrap(NULL, NULL, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    otelprof_tracer_provider *inner = sdk_provider(NULL);
    struct {
        otelprof_wrap_opts o;
        uint64_t future;
    } newer = {OTELPROF_WRAP_OPTS(), 1};
    newer.o.sz = sizeof newer;
    ASSERT_NULL(otelprof_tracer_provider_wrap(inner, &newer.o, &err));
    ASSERT_STATUS(err, OTELPROF_E_OPTS);
    otelprof_wrap_stats st;
    ASSERT_STATUS(otelprof_wrap_get_stats(inner, &st), OTELPROF_E_INVAL);
    /* a key twice, or the span name under an attribute's key: refused */
    static const char *const twice[] = {"http.route", "tenant.id", "http.route"};
    otelprof_wrap_opts dup = OTELPROF_WRAP_OPTS(.attribute_keys = twice, .n_attribute_keys = 3);
    ASSERT_NULL(otelprof_tracer_provider_wrap(inner, &dup, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    otelprof_wrap_opts clash = OTELPROF_WRAP_OPTS(.attribute_keys = twice, .n_attribute_keys = 2,
                                                  .span_name_key = "tenant.id");
    ASSERT_NULL(otelprof_tracer_provider_wrap(inner, &clash, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    otelprof_tracer_provider_free(inner);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"nested", test_nested},
        {"out_of_order_end", test_out_of_order_end},
        {"unsampled", test_unsampled},
        {"local_roots_only", test_local_roots_only},
        {"attributes", test_attributes},
        {"attribute_updates", test_attribute_updates},
        {"key_matching", test_key_matching},
        {"set_attributes_under_own_context", test_set_attributes_under_own_context},
        {"cardinality_guard", test_cardinality_guard},
        {"cross_thread_end", test_cross_thread_end},
        {"cross_thread_end_then_start", test_cross_thread_end_then_start},
        {"stats_threads", test_stats_threads},
        {"bad_args", test_bad_args},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
