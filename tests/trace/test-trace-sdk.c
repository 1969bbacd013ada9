/* The tracing SDK (sdk.h): spans, samplers, limits, resource, environment, console
 * exporter, ids. Spans are read back through the in-memory exporter. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/trace.h>

#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

/* Allocations counted by interposing malloc (the sanitizers interpose it themselves: there
 * span_memory checks only that span memory is reused). */
#include "sdk_support.h"

/* ---- helpers ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[32768];
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

static bool log_has(const char *s)
{
    pthread_mutex_lock(&log_mu);
    bool r = strstr(log_text, s) != NULL;
    pthread_mutex_unlock(&log_mu);
    return r;
}

static otelprof_span_exporter *mem;
static otelprof_tracer_provider *provider;
static otelprof_tracer *tracer;

static void setup_with(otelprof_sampler *sampler, const otelprof_span_limits *lim,
                       otelprof_span_processor *extra)
{
    mem = otelprof_memory_exporter_new(0);
    ASSERT_TRUE(mem != NULL);
    otelprof_span_processor *procs[2] = {otelprof_simple_processor_new(mem), extra};
    otelprof_sdk_opts o =
        OTELPROF_SDK_OPTS(.resource = otelprof_resource_new(),
                          .sampler = sampler ? sampler : otelprof_sampler_always_on(),
                          .processors = procs, .n_processors = extra ? 2 : 1);
    if (lim)
        o.limits = *lim;
    otelprof_status rc = OTELPROF_E_INVAL;
    provider = otelprof_sdk_provider_new(&o, &rc);
    ASSERT_OK(rc);
    ASSERT_TRUE(provider != NULL);
    tracer = otelprof_tracer_provider_get_tracer(provider, "test", "1.0", NULL);
    ASSERT_TRUE(tracer != NULL);
}

static void setup(otelprof_sampler *sampler, const otelprof_span_limits *lim)
{
    setup_with(sampler, lim, NULL);
}

static void teardown(void)
{
    otelprof_tracer_provider_free(provider);
    provider = NULL;
    tracer = NULL;
    mem = NULL;
}

static const otelprof_span_data *exported(size_t i)
{
    const otelprof_span_data *d = otelprof_memory_exporter_get(mem, i);
    if (!d)
        TEST_FAIL("no exported span %zu (have %zu)", i, otelprof_memory_exporter_count(mem));
    return d;
}

static const otelprof_kv *attr(const otelprof_kv *kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kvs[i].key, key) == 0)
            return &kvs[i];
    return NULL;
}

static otelprof_span_context mkctx(uint8_t seed, bool sampled, bool remote)
{
    otelprof_span_context c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 16; i++)
        c.trace_id[i] = (uint8_t)(seed + i);
    for (int i = 0; i < 8; i++)
        c.span_id[i] = (uint8_t)(seed * 3 + i + 1);
    c.trace_flags = OTELPROF_FLAG_RANDOM_TRACE_ID | (sampled ? OTELPROF_FLAG_SAMPLED : 0);
    c.is_remote = remote;
    return c;
}

static otelprof_span *start(const char *name, const otelprof_span_start_opts *o)
{
    otelprof_span *s = otelprof_tracer_start_span(tracer, name, o);
    ASSERT_TRUE(s != NULL);
    return s;
}

static const char *ts_str(const otelprof_tracestate *ts)
{
    static char buf[OTELPROF_TRACESTATE_MAX_LEN + 1];
    ASSERT_OK(otelprof_tracestate_format(ts, buf, sizeof buf, NULL));
    return buf;
}

static const uint8_t zero8[8];

/* ---- parents ---- */

static void parent_child(void)
{
    setup(NULL, NULL);
    uint64_t t0 = (uint64_t)time(NULL) * 1000000000u;
    otelprof_span *root = start("root", NULL);
    const otelprof_span_context *rc = otelprof_span_get_context(root);
    ASSERT_TRUE(otelprof_span_context_is_valid(rc));
    ASSERT_TRUE(otelprof_span_is_recording(root));
    ASSERT_EQ(rc->trace_flags, OTELPROF_FLAG_SAMPLED | OTELPROF_FLAG_RANDOM_TRACE_ID);
    ASSERT_TRUE(!rc->is_remote);

    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = rc);
    otelprof_span *child = start("child", &o);
    const otelprof_span_context *cc = otelprof_span_get_context(child);
    ASSERT_MEM_EQ(cc->trace_id, rc->trace_id, 16);
    ASSERT_TRUE(memcmp(cc->span_id, rc->span_id, 8) != 0);
    ASSERT_EQ(cc->trace_flags, 0x03);

    otelprof_scope sc;
    ASSERT_OK(otelprof_scope_enter(cc, &sc));
    otelprof_span *grand = start("grand", NULL);
    const otelprof_span_context *gc = otelprof_span_get_context(grand);
    ASSERT_MEM_EQ(gc->trace_id, rc->trace_id, 16);
    ASSERT_OK(otelprof_scope_leave(&sc));

    uint8_t root_id[8], child_id[8], grand_id[8], trace[16];
    memcpy(root_id, rc->span_id, 8);
    memcpy(child_id, cc->span_id, 8);
    memcpy(grand_id, gc->span_id, 8);
    memcpy(trace, rc->trace_id, 16);
    otelprof_span_end(grand, 0);
    otelprof_span_end(child, 0);
    otelprof_span_end(root, 0);

    ASSERT_EQ(otelprof_memory_exporter_count(mem), 3);
    const otelprof_span_data *g = exported(0), *c = exported(1), *r = exported(2);
    ASSERT_STR_EQ(g->name, "grand");
    ASSERT_STR_EQ(c->name, "child");
    ASSERT_STR_EQ(r->name, "root");
    ASSERT_MEM_EQ(g->context.span_id, grand_id, 8);
    ASSERT_MEM_EQ(g->parent_span_id, child_id, 8);
    ASSERT_MEM_EQ(c->parent_span_id, root_id, 8);
    ASSERT_MEM_EQ(r->parent_span_id, zero8, 8);
    ASSERT_MEM_EQ(g->context.trace_id, trace, 16);
    ASSERT_MEM_EQ(c->context.trace_id, trace, 16);
    ASSERT_TRUE(!c->parent_is_remote);
    ASSERT_EQ(r->kind, OTELPROF_SPAN_KIND_INTERNAL);
    ASSERT_TRUE(r->start_time_ns >= t0 && r->end_time_ns >= r->start_time_ns);
    ASSERT_STR_EQ(r->scope->name, "test");
    ASSERT_STR_EQ(r->scope->version, "1.0");
    ASSERT_NULL(r->scope->schema_url);
    size_t nres = 0;
    const otelprof_kv *res = otelprof_resource_attributes(r->resource, &nres);
    ASSERT_TRUE(attr(res, nres, "service.name") != NULL);
    teardown();
}

static void parent_options(void)
{
    setup(NULL, NULL);
    otelprof_span *a = start("a", NULL);
    otelprof_span_context actx = *otelprof_span_get_context(a);
    otelprof_scope sc;
    ASSERT_OK(otelprof_scope_enter(&actx, &sc));

    otelprof_span *s1 = start("current", NULL); /* parent: the current context */
    otelprof_span_context b = mkctx(40, true, false);
    otelprof_span_start_opts ob = OTELPROF_SPAN_START_OPTS(.parent = &b);
    otelprof_span *s2 = start("explicit", &ob); /* explicit wins over current */
    otelprof_span_start_opts oroot = OTELPROF_SPAN_START_OPTS(.root = true);
    otelprof_span *s3 = start("root", &oroot); /* root wins over current */
    otelprof_span_start_opts oboth = OTELPROF_SPAN_START_OPTS(.root = true, .parent = &b);
    otelprof_span *s4 = start("root+parent", &oboth); /* root wins over explicit too */
    ASSERT_OK(otelprof_scope_leave(&sc));
    otelprof_span *s5 = start("after", NULL); /* nothing current: a root */

    ASSERT_MEM_EQ(otelprof_span_get_context(s1)->trace_id, actx.trace_id, 16);
    ASSERT_MEM_EQ(otelprof_span_get_context(s2)->trace_id, b.trace_id, 16);
    ASSERT_TRUE(memcmp(otelprof_span_get_context(s3)->trace_id, actx.trace_id, 16) != 0);
    ASSERT_TRUE(memcmp(otelprof_span_get_context(s4)->trace_id, b.trace_id, 16) != 0);
    ASSERT_TRUE(memcmp(otelprof_span_get_context(s5)->trace_id, actx.trace_id, 16) != 0);
    otelprof_span_end(s1, 0);
    otelprof_span_end(s2, 0);
    otelprof_span_end(s3, 0);
    otelprof_span_end(s4, 0);
    otelprof_span_end(s5, 0);
    otelprof_span_end(a, 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 6);
    ASSERT_MEM_EQ(exported(0)->parent_span_id, actx.span_id, 8);
    ASSERT_MEM_EQ(exported(1)->parent_span_id, b.span_id, 8);
    ASSERT_MEM_EQ(exported(2)->parent_span_id, zero8, 8);
    ASSERT_MEM_EQ(exported(3)->parent_span_id, zero8, 8);
    ASSERT_MEM_EQ(exported(4)->parent_span_id, zero8, 8);
    teardown();
}

static void remote_parent(void)
{
    /* The default sampler: ParentBased(root = AlwaysOn). */
    setup(otelprof_sampler_parentbased(otelprof_sampler_always_on(), NULL, NULL, NULL, NULL), NULL);
    otelprof_span_context rs = mkctx(1, true, true), rn = mkctx(2, false, true),
                          ls = mkctx(3, true, false), ln = mkctx(4, false, false);
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &rs);
    otelprof_span *s = start("remote-sampled", &o);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    ASSERT_EQ(otelprof_span_get_context(s)->trace_flags, 0x03);
    ASSERT_TRUE(!otelprof_span_get_context(s)->is_remote);
    otelprof_span_end(s, 0);

    o.parent = &rn;
    s = start("remote-unsampled", &o);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    const otelprof_span_context *c = otelprof_span_get_context(s);
    ASSERT_TRUE(otelprof_span_context_is_valid(c));
    ASSERT_MEM_EQ(c->trace_id, rn.trace_id, 16);
    ASSERT_TRUE(memcmp(c->span_id, rn.span_id, 8) != 0);
    ASSERT_EQ(c->trace_flags, OTELPROF_FLAG_RANDOM_TRACE_ID);
    otelprof_span_end(s, 0);

    o.parent = &ls;
    s = start("local-sampled", &o);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);
    o.parent = &ln;
    s = start("local-unsampled", &o);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);
    s = start("root", NULL);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);

    ASSERT_EQ(otelprof_memory_exporter_count(mem), 3);
    ASSERT_STR_EQ(exported(0)->name, "remote-sampled");
    ASSERT_TRUE(exported(0)->parent_is_remote);
    ASSERT_MEM_EQ(exported(0)->parent_span_id, rs.span_id, 8);
    ASSERT_STR_EQ(exported(1)->name, "local-sampled");
    ASSERT_TRUE(!exported(1)->parent_is_remote);
    ASSERT_STR_EQ(exported(2)->name, "root");
    teardown();
}

static void parentbased_delegates(void)
{
    /* Each delegate the opposite of its default, so every branch is visible. */
    otelprof_sampler *pb = otelprof_sampler_parentbased(
        otelprof_sampler_always_off(), otelprof_sampler_always_off(), otelprof_sampler_always_on(),
        otelprof_sampler_always_off(), otelprof_sampler_always_on());
    ASSERT_STR_EQ(pb->ops->description(pb),
                  "ParentBased{root:AlwaysOffSampler,remoteParentSampled:AlwaysOffSampler,"
                  "remoteParentNotSampled:AlwaysOnSampler,localParentSampled:AlwaysOffSampler,"
                  "localParentNotSampled:AlwaysOnSampler}");
    setup(pb, NULL);
    otelprof_span_context rs = mkctx(1, true, true), rn = mkctx(2, false, true),
                          ls = mkctx(3, true, false), ln = mkctx(4, false, false);
    struct {
        const otelprof_span_context *parent;
        bool recording;
    } cases[] = {{NULL, false}, {&rs, false}, {&rn, true}, {&ls, false}, {&ln, true}};
    for (size_t i = 0; i < 5; i++) {
        otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = cases[i].parent);
        otelprof_span *s = start("x", &o);
        if (otelprof_span_is_recording(s) != cases[i].recording)
            TEST_FAIL("case %zu: recording %d", i, otelprof_span_is_recording(s));
        otelprof_span_end(s, 0);
    }
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 2);
    teardown();
    ASSERT_NULL(otelprof_sampler_parentbased(NULL, NULL, NULL, NULL, NULL));
}

/* ---- samplers ---- */

static void expect_desc(otelprof_sampler *s, const char *want)
{
    ASSERT_TRUE(s != NULL);
    ASSERT_STR_EQ(s->ops->description(s), want);
    otelprof_sampler_free(s);
}

#define DEFAULT_PB                                                                                 \
    "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,"                        \
    "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"                  \
    "localParentNotSampled:AlwaysOffSampler}"

static void sampler_descriptions(void)
{
    expect_desc(otelprof_sampler_always_on(), "AlwaysOnSampler");
    expect_desc(otelprof_sampler_always_off(), "AlwaysOffSampler");
    expect_desc(otelprof_sampler_traceidratio(0.25), "TraceIdRatioBased{0.25}");
    expect_desc(otelprof_sampler_traceidratio(1.0), "TraceIdRatioBased{1.0}");
    expect_desc(otelprof_sampler_traceidratio(0.0), "TraceIdRatioBased{0.0}");
    expect_desc(otelprof_sampler_traceidratio(0.0001), "TraceIdRatioBased{0.0001}");
    expect_desc(otelprof_sampler_traceidratio(1.0 / 3), "TraceIdRatioBased{0.3333333333333333}");
    expect_desc(otelprof_sampler_parentbased(otelprof_sampler_always_on(), NULL, NULL, NULL, NULL),
                DEFAULT_PB);
    expect_desc(
        otelprof_sampler_parentbased(otelprof_sampler_traceidratio(0.5), NULL, NULL, NULL, NULL),
        "ParentBased{root:TraceIdRatioBased{0.5},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}");
    ASSERT_NULL(otelprof_sampler_traceidratio(-0.1));
    ASSERT_NULL(otelprof_sampler_traceidratio(1.0000001));
    ASSERT_NULL(otelprof_sampler_traceidratio(NAN));
}

/* A trace id whose byte 8 (outside the 56 random bits) is `b8` and whose last 7 bytes
 * are the big-endian `low`. */
static void mktid(uint8_t out[16], uint8_t b8, uint64_t low)
{
    for (int i = 0; i < 8; i++)
        out[i] = 0x5a;
    out[8] = b8;
    for (int i = 15; i >= 9; i--) {
        out[i] = (uint8_t)low;
        low >>= 8;
    }
}

static otelprof_sampling_decision decide(otelprof_sampler *s, const otelprof_span_context *parent,
                                         uint8_t b8, uint64_t low, otelprof_tracestate *ts)
{
    uint8_t tid[16];
    mktid(tid, b8, low);
    return s->ops->should_sample(s, parent, tid, "x", OTELPROF_SPAN_KIND_INTERNAL, NULL, 0, ts);
}

static void traceidratio_boundary(void)
{
    log_capture();
    otelprof_tracestate ts;
    otelprof_sampler *q = otelprof_sampler_traceidratio(0.25); /* T = 0xc0000000000000 */
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(q, NULL, 0xff, 0xc0000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_STR_EQ(ts_str(&ts), "ot=th:c");
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(q, NULL, 0x00, 0xc0000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(q, NULL, 0xff, 0xbfffffffffffffu, &ts), OTELPROF_SAMPLING_DROP);
    ASSERT_STR_EQ(ts_str(&ts), "");
    ASSERT_EQ(decide(q, NULL, 0x00, 0xbfffffffffffffu, &ts), OTELPROF_SAMPLING_DROP);
    ASSERT_EQ(decide(q, NULL, 0x00, 0xffffffffffffffu, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);

    /* Other members are kept, and the changed ot entry moves to the front. */
    ASSERT_OK(otelprof_tracestate_parse(&ts, "a=1,ot=th:8;x:y", OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(decide(q, NULL, 0, 0xd0000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_STR_EQ(ts_str(&ts), "ot=th:c;x:y,a=1");
    /* Dropped: a th that no longer holds is removed (the sampled flag wins). */
    ASSERT_OK(otelprof_tracestate_parse(&ts, "a=1,ot=th:8", OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(decide(q, NULL, 0, 0x10000000000000u, &ts), OTELPROF_SAMPLING_DROP);
    ASSERT_STR_EQ(ts_str(&ts), "a=1");
    /* An explicit randomness value wins over the trace id. */
    ASSERT_OK(otelprof_tracestate_parse(&ts, "ot=rv:ffffffffffffff", OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(decide(q, NULL, 0, 0, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_STR_EQ(ts_str(&ts), "ot=th:c;rv:ffffffffffffff");
    ASSERT_OK(otelprof_tracestate_parse(&ts, "ot=rv:00000000000000", OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(decide(q, NULL, 0, 0xffffffffffffffu, &ts), OTELPROF_SAMPLING_DROP);
    ASSERT_EQ(log_warns, 0);

    /* A parent without the random flag: decided anyway, with one compatibility warning. */
    otelprof_span_context p = mkctx(1, true, true);
    p.trace_flags = OTELPROF_FLAG_SAMPLED;
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(q, &p, 0, 0xc0000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_EQ(decide(q, &p, 0, 0xc0000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_EQ(log_warns, 1);
    ASSERT_TRUE(log_has("Trace random flag"));
    otelprof_sampler_free(q);

    otelprof_sampler *half = otelprof_sampler_traceidratio(0.5); /* T = 0x80000000000000 */
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(half, NULL, 0, 0x80000000000000u, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_STR_EQ(ts_str(&ts), "ot=th:8");
    ASSERT_EQ(decide(half, NULL, 0, 0x7fffffffffffffu, &ts), OTELPROF_SAMPLING_DROP);
    otelprof_sampler_free(half);

    otelprof_sampler *none = otelprof_sampler_traceidratio(0.0);
    ASSERT_EQ(decide(none, NULL, 0xff, 0xffffffffffffffu, NULL), OTELPROF_SAMPLING_DROP);
    otelprof_sampler_free(none);
    otelprof_sampler *all = otelprof_sampler_traceidratio(1.0);
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(decide(all, NULL, 0xff, 0, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_STR_EQ(ts_str(&ts), "ot=th:0");
    otelprof_sampler_free(all);
    /* The smallest ratio the spec allows: only R = 2^56 - 1 passes. */
    otelprof_sampler *tiny = otelprof_sampler_traceidratio(1.0 / 72057594037927936.0);
    ASSERT_EQ(decide(tiny, NULL, 0, 0xffffffffffffffu, NULL), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_EQ(decide(tiny, NULL, 0, 0xfffffffffffffeu, NULL), OTELPROF_SAMPLING_DROP);
    otelprof_sampler_free(tiny);
}

static void traceidratio_spans(void)
{
    setup(otelprof_sampler_traceidratio(0.25), NULL);
    otelprof_span_context in = mkctx(1, false, true), out = mkctx(1, true, true);
    mktid(in.trace_id, 0, 0xc0000000000001u);
    mktid(out.trace_id, 0, 0xbfffffffffffffu);
    /* TraceIdRatioBased ignores the parent's sampled flag. */
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &in);
    otelprof_span *s = start("in", &o);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    ASSERT_EQ(otelprof_span_get_context(s)->trace_flags, 0x03);
    ASSERT_STR_EQ(ts_str(&otelprof_span_get_context(s)->tracestate), "ot=th:c");
    otelprof_span_end(s, 0);
    o.parent = &out;
    s = start("out", &o);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    ASSERT_MEM_EQ(otelprof_span_get_context(s)->trace_id, out.trace_id, 16);
    ASSERT_EQ(otelprof_span_get_context(s)->trace_flags, OTELPROF_FLAG_RANDOM_TRACE_ID);
    otelprof_span_end(s, 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 1);
    ASSERT_STR_EQ(ts_str(&exported(0)->context.tracestate), "ot=th:c");
    teardown();

    /* Ratio 0 and 1 on root spans with random ids. */
    setup(otelprof_sampler_traceidratio(0.0), NULL);
    for (int i = 0; i < 200; i++)
        otelprof_span_end(start("r", NULL), 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 0);
    teardown();
    setup(otelprof_sampler_traceidratio(1.0), NULL);
    for (int i = 0; i < 200; i++)
        otelprof_span_end(start("r", NULL), 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 200);
    teardown();
    /* Ratio 0.5 over many random ids: roughly half. */
    setup(otelprof_sampler_traceidratio(0.5), NULL);
    for (int i = 0; i < 4000; i++)
        otelprof_span_end(start("r", NULL), 0);
    size_t n = otelprof_memory_exporter_count(mem);
    ASSERT_TRUE(n > 1840 && n < 2160); /* 5 sigma */
    teardown();
}

static void sampler_env_case(const char *name, const char *arg, const char *want, int warns)
{
    if (name)
        setenv("OTEL_TRACES_SAMPLER", name, 1);
    else
        unsetenv("OTEL_TRACES_SAMPLER");
    if (arg)
        setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
    else
        unsetenv("OTEL_TRACES_SAMPLER_ARG");
    log_capture();
    otelprof_sampler *s = otelprof_sampler_from_env();
    ASSERT_TRUE(s != NULL);
    if (strcmp(s->ops->description(s), want) != 0)
        TEST_FAIL("OTEL_TRACES_SAMPLER=%s ARG=%s: got %s, want %s", name ? name : "(unset)",
                  arg ? arg : "(unset)", s->ops->description(s), want);
    if (log_warns != warns)
        TEST_FAIL("OTEL_TRACES_SAMPLER=%s ARG=%s: %d warnings, want %d", name ? name : "(unset)",
                  arg ? arg : "(unset)", log_warns, warns);
    otelprof_sampler_free(s);
}

static void sampler_env(void)
{
    sampler_env_case(NULL, NULL, DEFAULT_PB, 0);
    sampler_env_case("", NULL, DEFAULT_PB, 0);
    sampler_env_case("always_on", NULL, "AlwaysOnSampler", 0);
    sampler_env_case("ALWAYS_OFF", "0.5", "AlwaysOffSampler", 0); /* ARG ignored */
    sampler_env_case(" traceidratio ", "0.5", "TraceIdRatioBased{0.5}", 0);
    sampler_env_case("traceidratio", NULL, "TraceIdRatioBased{1.0}", 0);
    sampler_env_case("traceidratio", "0", "TraceIdRatioBased{0.0}", 0);
    sampler_env_case("traceidratio", "abc", "TraceIdRatioBased{1.0}", 1);
    sampler_env_case("traceidratio", "1.5", "TraceIdRatioBased{1.0}", 1);
    sampler_env_case("traceidratio", "-0.1", "TraceIdRatioBased{1.0}", 1);
    sampler_env_case("traceidratio", "0.5x", "TraceIdRatioBased{1.0}", 1);
    sampler_env_case("parentbased_always_on", NULL, DEFAULT_PB, 0);
    sampler_env_case("parentbased_always_off", NULL,
                     "ParentBased{root:AlwaysOffSampler,remoteParentSampled:AlwaysOnSampler,"
                     "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
                     "localParentNotSampled:AlwaysOffSampler}",
                     0);
    sampler_env_case(
        "parentbased_traceidratio", "0.125",
        "ParentBased{root:TraceIdRatioBased{0.125},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}",
        0);
    sampler_env_case("jaeger_remote", NULL, DEFAULT_PB, 1);
    sampler_env_case("bogus", NULL, DEFAULT_PB, 1);
    ASSERT_TRUE(log_has("bogus"));
}

static void tracestate_children(void)
{
    setup(otelprof_sampler_parentbased(otelprof_sampler_always_on(), NULL, NULL, NULL, NULL), NULL);
    otelprof_span_context p = mkctx(9, true, true);
    ASSERT_OK(
        otelprof_tracestate_parse(&p.tracestate, "vendor=abc,other=1", OTELPROF_NUL_TERMINATED));
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &p);
    otelprof_span *child = start("child", &o);
    ASSERT_STR_EQ(ts_str(&otelprof_span_get_context(child)->tracestate), "vendor=abc,other=1");
    otelprof_scope sc;
    ASSERT_OK(otelprof_scope_enter(otelprof_span_get_context(child), &sc));
    otelprof_span *grand = start("grand", NULL);
    ASSERT_STR_EQ(ts_str(&otelprof_span_get_context(grand)->tracestate), "vendor=abc,other=1");
    ASSERT_OK(otelprof_scope_leave(&sc));
    otelprof_span_end(grand, 0);
    otelprof_span_end(child, 0);
    /* A dropped child carries it too. */
    otelprof_span_context pn = p;
    pn.trace_flags = OTELPROF_FLAG_RANDOM_TRACE_ID;
    o.parent = &pn;
    otelprof_span *dropped = start("dropped", &o);
    ASSERT_TRUE(!otelprof_span_is_recording(dropped));
    ASSERT_STR_EQ(ts_str(&otelprof_span_get_context(dropped)->tracestate), "vendor=abc,other=1");
    otelprof_span_end(dropped, 0);
    /* Root spans start with an empty one. */
    otelprof_span *root = start("root", NULL);
    ASSERT_EQ(otelprof_tracestate_count(&otelprof_span_get_context(root)->tracestate), 0);
    otelprof_span_end(root, 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 3);
    ASSERT_STR_EQ(ts_str(&exported(0)->context.tracestate), "vendor=abc,other=1");
    ASSERT_STR_EQ(ts_str(&exported(1)->context.tracestate), "vendor=abc,other=1");
    teardown();
}

/* ---- attributes and limits ---- */

static void attribute_types(void)
{
    setup(NULL, NULL);
    otelprof_kv initial[] = {OTELPROF_KV_STR("s", "text"), OTELPROF_KV_BOOL("b", true),
                             OTELPROF_KV_INT("i", INT64_MIN), OTELPROF_KV_DOUBLE("d", -2.5)};
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.attrs = initial, .n_attrs = 4);
    otelprof_span *s = start("attrs", &o);
    const char *strs[] = {"x", "yy", NULL};
    bool bools[] = {true, false, true};
    int64_t ints[] = {-1, INT64_MAX};
    double dbls[] = {1.5, -0.25};
    otelprof_kv more[] = {
        {"sa", {.type = OTELPROF_VALUE_STRING_ARRAY, .u.array = {strs, 3}}},
        {"ba", {.type = OTELPROF_VALUE_BOOL_ARRAY, .u.array = {bools, 3}}},
        {"ia", {.type = OTELPROF_VALUE_INT_ARRAY, .u.array = {ints, 2}}},
        {"da", {.type = OTELPROF_VALUE_DOUBLE_ARRAY, .u.array = {dbls, 2}}},
        {"sl", {.type = OTELPROF_VALUE_STRING, .u.str = {"hello world", 5}}},
        {"ea", {.type = OTELPROF_VALUE_INT_ARRAY, .u.array = {NULL, 0}}},
        /* invalid: ignored, not counted as dropped */
        {NULL, {.type = OTELPROF_VALUE_INT, .u.i = 1}},
        {"", {.type = OTELPROF_VALUE_INT, .u.i = 1}},
        {"bad", {.type = OTELPROF_VALUE_STRING, .u.str = {NULL, 3}}},
        {"badtype", {.type = (otelprof_value_type)99}},
    };
    otelprof_span_set_attributes(s, more, sizeof more / sizeof more[0]);
    /* The span copied everything: change the sources. */
    strs[0] = "changed";
    bools[0] = false;
    ints[0] = 7;
    dbls[0] = 9.0;
    otelprof_kv repl = OTELPROF_KV_STR("i", "now a string");
    otelprof_span_set_attributes(s, &repl, 1);
    otelprof_span_end(s, 0);

    const otelprof_span_data *d = exported(0);
    ASSERT_EQ(d->n_attrs, 10);
    ASSERT_EQ(d->dropped_attrs, 0);
    const char *order[] = {"s", "b", "i", "d", "sa", "ba", "ia", "da", "sl", "ea"};
    for (int i = 0; i < 10; i++)
        ASSERT_STR_EQ(d->attrs[i].key, order[i]);
    ASSERT_EQ(d->attrs[0].value.type, OTELPROF_VALUE_STRING);
    ASSERT_EQ(d->attrs[0].value.u.str.len, 4);
    ASSERT_MEM_EQ(d->attrs[0].value.u.str.ptr, "text", 4);
    ASSERT_TRUE(d->attrs[1].value.u.b);
    ASSERT_EQ(d->attrs[2].value.type, OTELPROF_VALUE_STRING); /* replaced in place */
    ASSERT_STR_EQ(d->attrs[2].value.u.str.ptr, "now a string");
    ASSERT_TRUE(d->attrs[3].value.u.d == -2.5);
    const char *const *sa = d->attrs[4].value.u.array.items;
    ASSERT_EQ(d->attrs[4].value.u.array.n, 3);
    ASSERT_STR_EQ(sa[0], "x");
    ASSERT_STR_EQ(sa[1], "yy");
    ASSERT_STR_EQ(sa[2], ""); /* a NULL element is kept as "" */
    const bool *ba = d->attrs[5].value.u.array.items;
    ASSERT_TRUE(ba[0] && !ba[1] && ba[2]);
    const int64_t *ia = d->attrs[6].value.u.array.items;
    ASSERT_EQ(ia[0], -1);
    ASSERT_TRUE(ia[1] == INT64_MAX);
    const double *da = d->attrs[7].value.u.array.items;
    ASSERT_TRUE(da[0] == 1.5 && da[1] == -0.25);
    ASSERT_EQ(d->attrs[8].value.u.str.len, 5);
    ASSERT_STR_EQ(d->attrs[8].value.u.str.ptr, "hello");
    ASSERT_EQ(d->attrs[9].value.u.array.n, 0);
    teardown();
}

/* A span's first attributes live inside the span (8 slots, 384 bytes of copies); more
 * spill to the heap, and replacing a value frees only heap copies. Many attributes, long
 * values and 1000 replacements of inline and spilled keys: everything exported exactly
 * (and ASan checks the frees). */
static void many_attrs(void)
{
    setup(NULL, NULL);
    enum { N = 40 };
    char keys[N][8], vals[N][40];
    otelprof_kv kv[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i);
        snprintf(vals[i], sizeof vals[i], "value-%02d-%s", i, "abcdefghijklmnopqrstuvw");
        kv[i] = OTELPROF_KV_STR(keys[i], vals[i]);
    }
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.attrs = kv, .n_attrs = 4);
    otelprof_span *s = start("many", &o);
    otelprof_span_set_attributes(s, kv + 4, N - 4);
    char buf[32];
    for (int r = 0; r < 1000; r++) {
        snprintf(buf, sizeof buf, "r%d", r);
        otelprof_kv a = OTELPROF_KV_STR(keys[r % 2 ? 1 : N - 1], buf); /* inline, spilled */
        otelprof_span_set_attributes(s, &a, 1);
    }
    otelprof_span_end(s, 0);
    const otelprof_span_data *d = exported(0);
    ASSERT_EQ(d->n_attrs, N);
    for (int i = 0; i < N; i++) {
        ASSERT_STR_EQ(d->attrs[i].key, keys[i]);
        const char *want = i == 1 ? "r999" : i == N - 1 ? "r998" : vals[i];
        ASSERT_STR_EQ(d->attrs[i].value.u.str.ptr, want);
    }
    teardown();
}

static void limits(void)
{
    log_capture();
    otelprof_span_limits lim = {.attribute_count = 3,
                                .attribute_value_length = 5,
                                .event_count = 2,
                                .link_count = 1,
                                .attributes_per_event = 1,
                                .attributes_per_link = 2};
    setup(NULL, &lim);
    otelprof_kv five[] = {OTELPROF_KV_STR("a", "1"), OTELPROF_KV_STR("b", "2"),
                          OTELPROF_KV_STR("c", "3"), OTELPROF_KV_STR("d", "4"),
                          OTELPROF_KV_STR("e", "5")};
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.attrs = five, .n_attrs = 5);
    otelprof_span *s = start("limited", &o);
    otelprof_kv upd = OTELPROF_KV_STR("a", "abcdefgh"); /* existing key: replaced, truncated */
    otelprof_span_set_attributes(s, &upd, 1);
    otelprof_kv extra = OTELPROF_KV_INT("f", 1); /* new key at the limit: dropped */
    otelprof_span_set_attributes(s, &extra, 1);
    otelprof_kv ev_attrs[] = {OTELPROF_KV_INT("k1", 1), OTELPROF_KV_INT("k2", 2),
                              OTELPROF_KV_INT("k3", 3)};
    otelprof_span_add_event(s, "e1", 0, ev_attrs, 3);
    otelprof_span_add_event(s, "e2", 0, NULL, 0);
    otelprof_span_add_event(s, "e3", 0, NULL, 0);
    otelprof_span_context l1 = mkctx(5, true, false), l2 = mkctx(6, true, false);
    otelprof_link link1 = {&l1, ev_attrs, 3}, link2 = {&l2, NULL, 0};
    otelprof_span_add_link(s, &link1);
    otelprof_span_add_link(s, &link2);
    otelprof_span_end(s, 0);
    ASSERT_EQ(log_warns, 1); /* at most one message per span */
    ASSERT_TRUE(log_has("limited"));

    const otelprof_span_data *d = exported(0);
    ASSERT_EQ(d->n_attrs, 3);
    ASSERT_EQ(d->dropped_attrs, 3);
    ASSERT_STR_EQ(d->attrs[0].key, "a");
    ASSERT_STR_EQ(d->attrs[0].value.u.str.ptr, "abcde");
    ASSERT_EQ(d->attrs[0].value.u.str.len, 5);
    ASSERT_EQ(d->n_events, 2);
    ASSERT_EQ(d->dropped_events, 1);
    ASSERT_STR_EQ(d->events[0].name, "e1");
    ASSERT_EQ(d->events[0].n_attrs, 1);
    ASSERT_EQ(d->events[0].dropped_attrs, 2);
    ASSERT_STR_EQ(d->events[0].attrs[0].key, "k1");
    ASSERT_EQ(d->n_links, 1);
    ASSERT_EQ(d->dropped_links, 1);
    ASSERT_EQ(d->links[0].n_attrs, 2);
    ASSERT_EQ(d->links[0].dropped_attrs, 1);
    ASSERT_MEM_EQ(d->links[0].context.span_id, l1.span_id, 8);

    /* Truncation never splits a UTF-8 character. "aé€" is 1 + 2 + 3 bytes. */
    const char *arr[] = {"abcdefg", "\xc3\xa9\xc3\xa9\xc3\xa9", "ab"};
    otelprof_kv t[] = {OTELPROF_KV_STR("t1", "a\xc3\xa9\xe2\x82\xac"),
                       {"t2", {.type = OTELPROF_VALUE_STRING_ARRAY, .u.array = {arr, 3}}},
                       OTELPROF_KV_STR("t3", "\xff\xfe\xfd\xfc\xfb\xfa")};
    o = OTELPROF_SPAN_START_OPTS(.attrs = t, .n_attrs = 3);
    log_capture();
    s = start("utf8", &o);
    otelprof_span_end(s, 0);
    ASSERT_EQ(log_warns, 0); /* truncation is not a drop */
    d = exported(1);
    ASSERT_EQ(d->dropped_attrs, 0);
    ASSERT_STR_EQ(d->attrs[0].value.u.str.ptr, "a\xc3\xa9");
    ASSERT_EQ(d->attrs[0].value.u.str.len, 3);
    const char *const *ta = d->attrs[1].value.u.array.items;
    ASSERT_STR_EQ(ta[0], "abcde");
    ASSERT_STR_EQ(ta[1], "\xc3\xa9\xc3\xa9");
    ASSERT_STR_EQ(ta[2], "ab");
    ASSERT_EQ(d->attrs[2].value.u.str.len, 5); /* invalid bytes count as one character */
    teardown();
}

static void limits_env(void)
{
    setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2", 1);
    setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "1", 1); /* general: used where no specific one */
    setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3", 1);
    setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "many", 1); /* bad: warned, default 128 */
    setenv("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "4", 1);
    log_capture();
    setup(NULL, NULL);
    ASSERT_EQ(log_warns, 1);
    ASSERT_TRUE(log_has("OTEL_SPAN_EVENT_COUNT_LIMIT"));
    otelprof_kv a[] = {OTELPROF_KV_STR("a", "abcdef"), OTELPROF_KV_STR("b", "x"),
                       OTELPROF_KV_STR("c", "y"), OTELPROF_KV_STR("d", "z"),
                       OTELPROF_KV_STR("e", "w")};
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.attrs = a, .n_attrs = 3);
    otelprof_span *s = start("env", &o);
    for (int i = 0; i < 130; i++)
        otelprof_span_add_event(s, "e", 0, a, 2);
    otelprof_span_context l = mkctx(1, true, false);
    otelprof_link link = {&l, a, 5};
    otelprof_span_add_link(s, &link);
    otelprof_span_end(s, 0);
    const otelprof_span_data *d = exported(0);
    ASSERT_EQ(d->n_attrs, 2);
    ASSERT_EQ(d->dropped_attrs, 1);
    ASSERT_STR_EQ(d->attrs[0].value.u.str.ptr, "abc");
    ASSERT_EQ(d->n_events, 128);
    ASSERT_EQ(d->dropped_events, 2);
    ASSERT_EQ(d->events[0].n_attrs, 1);
    ASSERT_EQ(d->events[0].dropped_attrs, 1);
    ASSERT_EQ(d->links[0].n_attrs, 4);
    ASSERT_EQ(d->links[0].dropped_attrs, 1);
    teardown();
    /* Explicit limits win over the environment. */
    otelprof_span_limits lim = {.attribute_count = 4};
    setup(NULL, &lim);
    o.n_attrs = 5;
    otelprof_span_end(start("explicit", &o), 0);
    ASSERT_EQ(exported(0)->n_attrs, 4);
    teardown();
}

/* ---- events, links, status, name ---- */

static void events_links(void)
{
    setup(NULL, NULL);
    otelprof_span_context l1 = mkctx(1, true, true), l5 = mkctx(5, false, false), none;
    memset(&none, 0, sizeof none);
    ASSERT_OK(otelprof_tracestate_set(&l1.tracestate, "x", 1, "y", 1));
    otelprof_kv la = OTELPROF_KV_STR("why", "batch");
    otelprof_link links[] = {{&l1, &la, 1}, {&none, NULL, 0}, {&none, &la, 1}};
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.links = links, .n_links = 3);
    /* The precise clock: time() reads the coarse one, up to a tick behind it. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t0 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    otelprof_span *s = start("ev", &o);
    otelprof_kv ea[] = {OTELPROF_KV_INT("n", 1), OTELPROF_KV_INT("n", 2)};
    otelprof_span_add_event(s, "e1", 1234, ea, 2);
    otelprof_span_add_event(s, "e2", 0, NULL, 0);
    otelprof_span_add_event(s, NULL, 5, NULL, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t1 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    otelprof_link nullctx = {NULL, &la, 1}, plain = {&l5, NULL, 0};
    otelprof_span_add_link(s, &nullctx);
    otelprof_span_add_link(s, &plain);
    otelprof_span_end(s, 0);

    const otelprof_span_data *d = exported(0);
    ASSERT_EQ(d->n_events, 3);
    ASSERT_STR_EQ(d->events[0].name, "e1");
    ASSERT_EQ(d->events[0].time_ns, 1234);
    ASSERT_EQ(d->events[0].n_attrs, 1); /* one key: the last value wins */
    ASSERT_EQ(d->events[0].attrs[0].value.u.i, 2);
    ASSERT_TRUE(d->events[1].time_ns >= t0 && d->events[1].time_ns <= t1);
    ASSERT_STR_EQ(d->events[2].name, "");
    /* The link to an invalid context without attributes is not kept. */
    ASSERT_EQ(d->n_links, 4);
    ASSERT_EQ(d->dropped_links, 0);
    ASSERT_MEM_EQ(d->links[0].context.span_id, l1.span_id, 8);
    ASSERT_TRUE(d->links[0].context.is_remote);
    ASSERT_STR_EQ(ts_str(&d->links[0].context.tracestate), "x=y");
    ASSERT_STR_EQ(d->links[0].attrs[0].value.u.str.ptr, "batch");
    ASSERT_TRUE(!otelprof_span_context_is_valid(&d->links[1].context));
    ASSERT_EQ(d->links[1].n_attrs, 1);
    ASSERT_TRUE(!otelprof_span_context_is_valid(&d->links[2].context));
    ASSERT_MEM_EQ(d->links[3].context.span_id, l5.span_id, 8);
    ASSERT_EQ(d->links[3].n_attrs, 0);
    teardown();
}

static void status(void)
{
    setup(NULL, NULL);
    otelprof_span *a = start("a", NULL); /* ERROR, then UNSET ignored */
    otelprof_span_set_status(a, OTELPROF_SPAN_STATUS_ERROR, "boom");
    otelprof_span_set_status(a, OTELPROF_SPAN_STATUS_UNSET, "ignored");
    otelprof_span_end(a, 0);
    otelprof_span *b = start("b", NULL); /* OK wins over ERROR and is final */
    otelprof_span_set_status(b, OTELPROF_SPAN_STATUS_ERROR, "boom");
    otelprof_span_set_status(b, OTELPROF_SPAN_STATUS_OK, "not kept");
    otelprof_span_set_status(b, OTELPROF_SPAN_STATUS_ERROR, "late");
    otelprof_span_set_status(b, OTELPROF_SPAN_STATUS_UNSET, NULL);
    otelprof_span_end(b, 0);
    otelprof_span *c = start("c", NULL); /* the last ERROR description wins */
    otelprof_span_set_status(c, OTELPROF_SPAN_STATUS_ERROR, "first");
    otelprof_span_set_status(c, OTELPROF_SPAN_STATUS_ERROR, "second");
    otelprof_span_end(c, 0);
    otelprof_span *d = start("d", NULL); /* untouched */
    otelprof_span_end(d, 0);
    ASSERT_EQ(exported(0)->status, OTELPROF_SPAN_STATUS_ERROR);
    ASSERT_STR_EQ(exported(0)->status_description, "boom");
    ASSERT_EQ(exported(1)->status, OTELPROF_SPAN_STATUS_OK);
    ASSERT_NULL(exported(1)->status_description);
    ASSERT_EQ(exported(2)->status, OTELPROF_SPAN_STATUS_ERROR);
    ASSERT_STR_EQ(exported(2)->status_description, "second");
    ASSERT_EQ(exported(3)->status, OTELPROF_SPAN_STATUS_UNSET);
    ASSERT_NULL(exported(3)->status_description);
    teardown();
}

/* A span's name, short or long, through updates in both directions and to itself. */
static void long_names(void)
{
    setup(NULL, NULL);
    char long1[100], long2[200];
    memset(long1, 'a', sizeof long1 - 1);
    long1[sizeof long1 - 1] = 0;
    memset(long2, 'b', sizeof long2 - 1);
    long2[sizeof long2 - 1] = 0;
    otelprof_span *s = start(long1, NULL);
    otelprof_span_update_name(s, "short");
    otelprof_span_update_name(s, long2);
    otelprof_span_end(s, 0);
    ASSERT_STR_EQ(exported(0)->name, long2);
    s = start("short", NULL);
    otelprof_span_update_name(s, long1);
    otelprof_span_update_name(s, "x");
    otelprof_span_end(s, 0);
    ASSERT_STR_EQ(exported(1)->name, "x");
    char exact[64]; /* one byte too long for the span's own space */
    memset(exact, 'c', sizeof exact - 1);
    exact[sizeof exact - 1] = 0;
    otelprof_span_end(start(exact, NULL), 0);
    ASSERT_STR_EQ(exported(2)->name, exact);
    exact[62] = 0;
    otelprof_span_end(start(exact, NULL), 0);
    ASSERT_STR_EQ(exported(3)->name, exact);
    teardown();
}

/* Span memory is reused from one span to the next on a thread, and a span with a short
 * name and the attributes of an HTTP server span allocates nothing through a simple
 * processor; a long name costs one allocation (so the count is really counting). */
static void span_memory(void)
{
    otelprof_span_processor *procs[] = {otelprof_simple_processor_new(discard_exporter())};
    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                            .processors = procs, .n_processors = 1);
    otelprof_status err;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&o, &err);
    ASSERT_OK(err);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "test", NULL, NULL);
    otelprof_kv kv[] = {OTELPROF_KV_STR("http.route", "/users/{id}"), OTELPROF_KV_INT("n", 7)};
    otelprof_span_start_opts so = OTELPROF_SPAN_START_OPTS(.attrs = kv, .n_attrs = 2);
    otelprof_span_end(otelprof_tracer_start_span(t, "warm up", &so), 0);
    otelprof_span *s = otelprof_tracer_start_span(t, "GET /users/{id}", &so);
    const void *where = otelprof_span_get_context(s); /* inside the span */
    otelprof_span_end(s, 0);
    s = otelprof_tracer_start_span(t, "GET /users/{id}", &so);
    ASSERT_TRUE(otelprof_span_get_context(s) == where);
    otelprof_span_end(s, 0);
#if COUNT_ALLOCS
    unsigned long a0 = atomic_load(&n_alloc);
    for (int i = 0; i < 1000; i++) {
        otelprof_span *sp = otelprof_tracer_start_span(t, "GET /users/{id}", &so);
        otelprof_span_set_attributes(sp, kv, 1);
        otelprof_span_end(sp, 0);
    }
    ASSERT_EQ(atomic_load(&n_alloc) - a0, 0);
    /* An HTTP server span's attributes (semantic conventions), set at start and later,
     * one of them twice: still nothing. */
    otelprof_kv http[] = {
        OTELPROF_KV_STR("http.request.method", "GET"),
        OTELPROF_KV_STR("http.route", "/users/{id}"),
        OTELPROF_KV_STR("url.path", "/users/12345"),
        OTELPROF_KV_STR("url.scheme", "http"),
        OTELPROF_KV_STR("url.query", "page=2&sort=name"),
        OTELPROF_KV_STR("server.address", "api.example.com"),
        OTELPROF_KV_INT("server.port", 8080),
        OTELPROF_KV_STR("client.address", "192.0.2.17"),
        OTELPROF_KV_INT("client.port", 51234),
        OTELPROF_KV_STR("network.protocol.version", "1.1"),
        OTELPROF_KV_STR("user_agent.original", "curl/7.88.1"),
        OTELPROF_KV_STR("network.peer.address", "192.0.2.17"),
    };
    otelprof_kv after[] = {OTELPROF_KV_INT("http.response.status_code", 200),
                           OTELPROF_KV_STR("http.route", "/users/{id}/")};
    so = OTELPROF_SPAN_START_OPTS(.attrs = http, .n_attrs = 12, .kind = OTELPROF_SPAN_KIND_SERVER);
    otelprof_span_end(otelprof_tracer_start_span(t, "GET /users/{id}", &so), 0);
    a0 = atomic_load(&n_alloc);
    for (int i = 0; i < 1000; i++) {
        otelprof_span *sp = otelprof_tracer_start_span(t, "GET /users/{id}", &so);
        otelprof_span_set_attributes(sp, after, 2);
        otelprof_span_end(sp, 0);
    }
    ASSERT_EQ(atomic_load(&n_alloc) - a0, 0);
    char name[80];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    a0 = atomic_load(&n_alloc);
    for (int i = 0; i < 10; i++)
        otelprof_span_end(otelprof_tracer_start_span(t, name, &so), 0);
    ASSERT_EQ(atomic_load(&n_alloc) - a0, 10);
#endif
    otelprof_tracer_provider_free(p);
}

static void update_name(void)
{
    setup(NULL, NULL);
    otelprof_span_start_opts o =
        OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_CLIENT, .start_time_ns = 1000);
    otelprof_span *s = start("first", &o);
    otelprof_span_update_name(s, "second");
    otelprof_span_update_name(s, NULL); /* ignored */
    otelprof_span_update_name(s, "third");
    otelprof_span_end(s, 5000);
    ASSERT_STR_EQ(exported(0)->name, "third");
    ASSERT_EQ(exported(0)->kind, OTELPROF_SPAN_KIND_CLIENT);
    ASSERT_EQ(exported(0)->start_time_ns, 1000);
    ASSERT_EQ(exported(0)->end_time_ns, 5000);
    o = OTELPROF_SPAN_START_OPTS(.kind = (otelprof_span_kind)42);
    otelprof_span_end(start(NULL, &o), 0); /* bad kind: INTERNAL; NULL name: "" */
    ASSERT_EQ(exported(1)->kind, OTELPROF_SPAN_KIND_INTERNAL);
    ASSERT_STR_EQ(exported(1)->name, "");
    teardown();
}

/* ---- sampling decisions seen by processors ---- */

static otelprof_sampling_decision next_decision;
static otelprof_span_context last_parent;
static bool last_parent_null;

static otelprof_sampling_decision fixed_sample(otelprof_sampler *s,
                                               const otelprof_span_context *parent,
                                               const uint8_t trace_id[16], const char *name,
                                               otelprof_span_kind kind, const otelprof_kv *attrs,
                                               size_t n_attrs, otelprof_tracestate *ts)
{
    (void)s, (void)trace_id, (void)name, (void)kind, (void)attrs, (void)n_attrs;
    last_parent_null = parent == NULL;
    if (parent)
        last_parent = *parent;
    (void)otelprof_tracestate_set(ts, "s", 1, "1", 1);
    return next_decision;
}

static const char *fixed_desc(const otelprof_sampler *s)
{
    (void)s;
    return "Fixed";
}

static void fixed_free(otelprof_sampler *s)
{
    free(s);
}

/* A table as a sampler built against the 0.1 headers has it: shorter, without
 * should_sample_v2. The SDK must still call its should_sample. */
static const otelprof_sampler_ops fixed_ops = {
    .sz = offsetof(otelprof_sampler_ops, should_sample_v2),
    .should_sample = fixed_sample,
    .description = fixed_desc,
    .free = fixed_free,
};

struct counting {
    otelprof_span_processor base;
    int starts, ends, flushes, shutdowns, unsampled_ends;
};

static void cp_start(otelprof_span_processor *p, otelprof_span *span,
                     const otelprof_span_context *parent)
{
    (void)parent;
    if (!otelprof_span_is_recording(span))
        TEST_FAIL("on_start with a non-recording span");
    ((struct counting *)p)->starts++;
}

static void cp_end(otelprof_span_processor *p, const otelprof_span_data *d)
{
    struct counting *c = (struct counting *)p;
    c->ends++;
    if (!(d->context.trace_flags & OTELPROF_FLAG_SAMPLED))
        c->unsampled_ends++;
}

static otelprof_status cp_flush(otelprof_span_processor *p, uint32_t t)
{
    (void)t;
    ((struct counting *)p)->flushes++;
    return OTELPROF_OK;
}

static otelprof_status cp_shutdown(otelprof_span_processor *p, uint32_t t)
{
    (void)t;
    ((struct counting *)p)->shutdowns++;
    return OTELPROF_OK;
}

static struct counting counter;
static void cp_free(otelprof_span_processor *p)
{
    (void)p; /* static */
}

static const otelprof_span_processor_ops counting_ops = {
    sizeof(otelprof_span_processor_ops), cp_start, cp_end, cp_flush, cp_shutdown, cp_free};

static void record_only_and_drop(void)
{
    otelprof_sampler *fixed = malloc(sizeof *fixed);
    fixed->ops = &fixed_ops;
    memset(&counter, 0, sizeof counter);
    counter.base.ops = &counting_ops;
    setup_with(fixed, NULL, &counter.base);

    next_decision = OTELPROF_SAMPLING_RECORD_ONLY;
    otelprof_span *s = start("record-only", NULL);
    ASSERT_TRUE(last_parent_null);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    ASSERT_EQ(otelprof_span_get_context(s)->trace_flags, OTELPROF_FLAG_RANDOM_TRACE_ID);
    ASSERT_STR_EQ(ts_str(&otelprof_span_get_context(s)->tracestate), "s=1");
    otelprof_span_end(s, 0);
    ASSERT_EQ(counter.starts, 1);
    ASSERT_EQ(counter.ends, 1);
    ASSERT_EQ(counter.unsampled_ends, 1);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 0); /* recorded, not exported */

    next_decision = OTELPROF_SAMPLING_DROP;
    otelprof_span_context p = mkctx(3, true, false);
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &p);
    s = start("drop", &o);
    ASSERT_TRUE(!last_parent_null);
    ASSERT_MEM_EQ(last_parent.span_id, p.span_id, 8);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    const otelprof_span_context *c = otelprof_span_get_context(s);
    ASSERT_TRUE(otelprof_span_context_is_valid(c));
    ASSERT_MEM_EQ(c->trace_id, p.trace_id, 16);
    ASSERT_TRUE(memcmp(c->span_id, p.span_id, 8) != 0);
    ASSERT_EQ(c->trace_flags, OTELPROF_FLAG_RANDOM_TRACE_ID);
    ASSERT_STR_EQ(ts_str(&c->tracestate), "s=1");
    otelprof_kv kv = OTELPROF_KV_INT("ignored", 1);
    otelprof_span_set_attributes(s, &kv, 1);
    otelprof_span_add_event(s, "ignored", 0, NULL, 0);
    otelprof_span_set_status(s, OTELPROF_SPAN_STATUS_ERROR, "x");
    otelprof_span_end(s, 0);
    ASSERT_EQ(counter.starts, 1);
    ASSERT_EQ(counter.ends, 1);

    next_decision = OTELPROF_SAMPLING_RECORD_AND_SAMPLE;
    s = start("sampled", NULL);
    ASSERT_EQ(otelprof_span_get_context(s)->trace_flags, 0x03);
    otelprof_span_end(s, 0);
    ASSERT_EQ(counter.starts, 2);
    ASSERT_EQ(counter.ends, 2);
    ASSERT_EQ(counter.unsampled_ends, 1);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 1);
    ASSERT_STR_EQ(exported(0)->name, "sampled");
    teardown();
}

/* ---- links as sampler input ---- */

static int cmp_u64(const void *a, const void *b);
static uint64_t load64(const uint8_t *p);

/* Samples iff one of the links given at start is sampled, and records what it saw. */
#define SEEN_MAX 8
static struct {
    int calls;
    const otelprof_link *links;
    size_t n_links;
    otelprof_span_context ctx[SEEN_MAX];
    size_t n_attrs[SEEN_MAX];
    bool v1_called;
} lseen;

static otelprof_sampling_decision
link_sample(otelprof_sampler *s, const otelprof_sampling_params *p, otelprof_tracestate *ts)
{
    (void)s, (void)ts;
    ASSERT_GE(p->sz, sizeof *p);
    ASSERT_TRUE(p->trace_id != NULL && p->name != NULL);
    lseen.calls++;
    lseen.links = p->links;
    lseen.n_links = p->n_links;
    bool any = false;
    for (size_t i = 0; i < p->n_links; i++) {
        static const otelprof_span_context none;
        const otelprof_span_context *c = p->links[i].context ? p->links[i].context : &none;
        if (i < SEEN_MAX) {
            lseen.ctx[i] = *c;
            lseen.n_attrs[i] = p->links[i].n_attrs;
        }
        any = any || otelprof_span_context_is_sampled(c);
    }
    return any ? OTELPROF_SAMPLING_RECORD_AND_SAMPLE : OTELPROF_SAMPLING_DROP;
}

static otelprof_sampling_decision link_sample_v1(otelprof_sampler *s,
                                                 const otelprof_span_context *parent,
                                                 const uint8_t trace_id[16], const char *name,
                                                 otelprof_span_kind kind, const otelprof_kv *attrs,
                                                 size_t n_attrs, otelprof_tracestate *ts)
{
    (void)s, (void)parent, (void)trace_id, (void)name, (void)kind, (void)attrs, (void)n_attrs;
    (void)ts;
    lseen.v1_called = true; /* the SDK must prefer v2 */
    return OTELPROF_SAMPLING_DROP;
}

static const char *link_desc(const otelprof_sampler *s)
{
    (void)s;
    return "LinkSampled";
}

static void static_sampler_free(otelprof_sampler *s)
{
    (void)s;
}

static const otelprof_sampler_ops link_ops = {
    .sz = sizeof(otelprof_sampler_ops),
    .should_sample = link_sample_v1,
    .description = link_desc,
    .free = static_sampler_free,
    .should_sample_v2 = link_sample,
};
static otelprof_sampler link_sampler = {&link_ops};

static void sampler_links(void)
{
    setup(&link_sampler, NULL);
    otelprof_span_context sampled = mkctx(7, true, true), unsampled = mkctx(9, false, false), none;
    memset(&none, 0, sizeof none);
    otelprof_kv la = OTELPROF_KV_STR("k", "v");
    /* The invalid link without attributes is not kept by the span, yet the sampler sees it. */
    otelprof_link links[] = {{&unsampled, &la, 1}, {&none, NULL, 0}, {&sampled, NULL, 0}};

    memset(&lseen, 0, sizeof lseen);
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.links = links, .n_links = 3);
    otelprof_span *s = start("linked", &o);
    ASSERT_EQ(lseen.calls, 1);
    ASSERT_TRUE(!lseen.v1_called);
    ASSERT_TRUE(lseen.links == links);
    ASSERT_EQ(lseen.n_links, 3);
    ASSERT_MEM_EQ(lseen.ctx[0].span_id, unsampled.span_id, 8);
    ASSERT_EQ(lseen.n_attrs[0], 1);
    ASSERT_TRUE(!otelprof_span_context_is_valid(&lseen.ctx[1]));
    ASSERT_MEM_EQ(lseen.ctx[2].span_id, sampled.span_id, 8);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    ASSERT_TRUE(otelprof_span_context_is_sampled(otelprof_span_get_context(s)));
    otelprof_span_end(s, 0);
    ASSERT_EQ(exported(0)->n_links, 2);

    /* Only unsampled links: dropped. */
    memset(&lseen, 0, sizeof lseen);
    o = OTELPROF_SPAN_START_OPTS(.links = links, .n_links = 2);
    s = start("unsampled-links", &o);
    ASSERT_EQ(lseen.n_links, 2);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);

    /* No links: NULL and 0, also when n_links is set without an array. */
    memset(&lseen, 0, sizeof lseen);
    o = OTELPROF_SPAN_START_OPTS(.n_links = 5);
    s = start("no-links", &o);
    ASSERT_EQ(lseen.calls, 1);
    ASSERT_TRUE(lseen.links == NULL);
    ASSERT_EQ(lseen.n_links, 0);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);

    /* Links added after start are not sampler input (the decision is made at start). */
    memset(&lseen, 0, sizeof lseen);
    s = start("late-link", NULL);
    otelprof_span_add_link(s, &links[2]);
    ASSERT_EQ(lseen.calls, 1);
    ASSERT_EQ(lseen.n_links, 0);
    otelprof_span_end(s, 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 1);
    teardown();

    /* Inside ParentBased the user's root sampler still gets the links. */
    setup(otelprof_sampler_parentbased(&link_sampler, NULL, NULL, NULL, NULL), NULL);
    memset(&lseen, 0, sizeof lseen);
    o = OTELPROF_SPAN_START_OPTS(.links = &links[2], .n_links = 1);
    s = start("pb-root", &o);
    ASSERT_EQ(lseen.calls, 1);
    ASSERT_TRUE(lseen.links == &links[2]);
    ASSERT_EQ(lseen.n_links, 1);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);
    teardown();

    /* Built-in samplers ignore links: a sampled link does not make AlwaysOff or
     * TraceIdRatioBased{0} sample, nor an unsampled one make AlwaysOn drop. */
    otelprof_sampler *builtins[] = {otelprof_sampler_always_off(),
                                    otelprof_sampler_traceidratio(0.0),
                                    otelprof_sampler_always_on()};
    for (size_t i = 0; i < 3; i++) {
        setup(builtins[i], NULL);
        o = OTELPROF_SPAN_START_OPTS(.links = i < 2 ? &links[2] : &links[0], .n_links = 1);
        s = start("builtin", &o);
        ASSERT_EQ(otelprof_span_is_recording(s), i == 2);
        otelprof_span_end(s, 0);
        teardown();
    }

    /* The dispatch function: a params struct from an older caller (shorter sz) has no
     * links; v2 is preferred, and a 0.1 table gets its should_sample. */
    uint8_t tid[16];
    mktid(tid, 0, 1);
    otelprof_sampling_params prm = {.sz = offsetof(otelprof_sampling_params, links),
                                    .trace_id = tid,
                                    .name = "p",
                                    .links = links,
                                    .n_links = 3};
    otelprof_tracestate ts;
    memset(&ts, 0, sizeof ts);
    memset(&lseen, 0, sizeof lseen);
    ASSERT_EQ(otelprof_sampler_should_sample(&link_sampler, &prm, &ts), OTELPROF_SAMPLING_DROP);
    ASSERT_EQ(lseen.calls, 1);
    ASSERT_EQ(lseen.n_links, 0);
    prm.sz = sizeof prm;
    ASSERT_EQ(otelprof_sampler_should_sample(&link_sampler, &prm, &ts),
              OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_EQ(lseen.n_links, 3);
    otelprof_sampler *fixed = malloc(sizeof *fixed);
    fixed->ops = &fixed_ops;
    next_decision = OTELPROF_SAMPLING_RECORD_ONLY;
    ASSERT_EQ(otelprof_sampler_should_sample(fixed, &prm, &ts), OTELPROF_SAMPLING_RECORD_ONLY);
    ASSERT_TRUE(last_parent_null);
    otelprof_sampler_free(fixed);
    ASSERT_EQ(otelprof_sampler_should_sample(NULL, &prm, &ts), OTELPROF_SAMPLING_RECORD_AND_SAMPLE);
    ASSERT_TRUE(!lseen.v1_called);
}

/* ---- custom id generator ---- */

static struct {
    _Atomic uint64_t next; /* ids are this counter, so tests can predict them */
    bool zero_trace, zero_span;
    int frees;
} idg;

static void put64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static void gen_trace(void *arg, uint8_t out[16])
{
    ASSERT_TRUE(arg == &idg);
    if (idg.zero_trace)
        return; /* leaves it all zero: invalid */
    uint64_t v = atomic_fetch_add(&idg.next, 1);
    put64(out, 0xabcd);
    put64(out + 8, v);
}

static void gen_span(void *arg, uint8_t out[8])
{
    ASSERT_TRUE(arg == &idg);
    if (idg.zero_span) {
        memset(out, 0, 8);
        return;
    }
    put64(out, atomic_fetch_add(&idg.next, 1));
}

static void gen_free(void *arg)
{
    ASSERT_TRUE(arg == &idg);
    idg.frees++;
}

static void setup_gen(const otelprof_id_generator *g, otelprof_sampler *sampler)
{
    mem = otelprof_memory_exporter_new(0);
    otelprof_span_processor *proc = otelprof_simple_processor_new(mem);
    otelprof_sdk_opts o =
        OTELPROF_SDK_OPTS(.resource = otelprof_resource_new(),
                          .sampler = sampler ? sampler : otelprof_sampler_always_on(),
                          .processors = &proc, .n_processors = 1, .id_generator = g);
    otelprof_status rc = OTELPROF_E_INVAL;
    provider = otelprof_sdk_provider_new(&o, &rc);
    ASSERT_OK(rc);
    tracer = otelprof_tracer_provider_get_tracer(provider, "test", "1.0", NULL);
}

static void id_generator(void)
{
    log_capture();
    memset(&idg, 0, sizeof idg);
    atomic_store(&idg.next, 100);
    otelprof_id_generator g =
        OTELPROF_ID_GENERATOR(.generate_trace_id = gen_trace, .generate_span_id = gen_span,
                              .arg = &idg, .free = gen_free);
    setup_gen(&g, NULL);
    memset(&g, 0xff, sizeof g); /* the provider keeps a copy */

    /* Trace id, then the sampler, then the span id (spec order). Not declared random: no
     * random flag. */
    otelprof_span *root = start("root", NULL);
    const otelprof_span_context *rc = otelprof_span_get_context(root);
    ASSERT_EQ(load64(rc->trace_id), 0xabcd);
    ASSERT_EQ(load64(rc->trace_id + 8), 100);
    ASSERT_EQ(load64(rc->span_id), 101);
    ASSERT_EQ(rc->trace_flags, OTELPROF_FLAG_SAMPLED);
    /* A child: the parent's trace id and flags; a span id from the generator. */
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = rc);
    otelprof_span *child = start("child", &o);
    const otelprof_span_context *cc = otelprof_span_get_context(child);
    ASSERT_MEM_EQ(cc->trace_id, rc->trace_id, 16);
    ASSERT_EQ(load64(cc->span_id), 102);
    ASSERT_EQ(cc->trace_flags, OTELPROF_FLAG_SAMPLED);
    otelprof_span_end(child, 0);
    otelprof_span_end(root, 0);
    ASSERT_EQ(exported(0)->parent_span_id[7], 101); /* the child ended first */

    /* All-zero ids from the generator: the built-in one fills in (random, so the flag is
     * set), with one warning per provider however many spans hit it. */
    idg.zero_trace = idg.zero_span = true;
    for (int i = 0; i < 3; i++) {
        otelprof_span *s = start("fallback", NULL);
        const otelprof_span_context *c = otelprof_span_get_context(s);
        ASSERT_TRUE(otelprof_span_context_is_valid(c));
        ASSERT_TRUE(load64(c->trace_id) != 0xabcd);
        ASSERT_EQ(c->trace_flags, OTELPROF_FLAG_SAMPLED | OTELPROF_FLAG_RANDOM_TRACE_ID);
        otelprof_span_end(s, 0);
    }
    ASSERT_EQ(log_warns, 1);
    ASSERT_TRUE(log_has("all-zero"));
    ASSERT_EQ(idg.frees, 0);
    teardown();
    ASSERT_EQ(idg.frees, 1);

    /* Declared random: roots get the flag. Only a trace id callback: span ids built in. */
    memset(&idg, 0, sizeof idg);
    atomic_store(&idg.next, 7);
    g = OTELPROF_ID_GENERATOR(.generate_trace_id = gen_trace, .arg = &idg,
                              .random_trace_ids = true);
    setup_gen(&g, otelprof_sampler_always_off());
    otelprof_span *s = start("random", NULL); /* dropped spans get generated ids too */
    const otelprof_span_context *c = otelprof_span_get_context(s);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    ASSERT_EQ(load64(c->trace_id + 8), 7);
    ASSERT_EQ(c->trace_flags, OTELPROF_FLAG_RANDOM_TRACE_ID);
    ASSERT_TRUE(load64(c->span_id) != 0 && load64(c->span_id) != 8);
    ASSERT_EQ(atomic_load(&idg.next), 8);
    otelprof_span_end(s, 0);
    teardown();
    ASSERT_EQ(idg.frees, 0); /* no free callback given */

    /* Ownership on failure: the generator's free runs as the other objects' do. */
    memset(&idg, 0, sizeof idg);
    g = OTELPROF_ID_GENERATOR(.generate_trace_id = gen_trace, .arg = &idg, .free = gen_free);
    otelprof_sdk_opts bad = OTELPROF_SDK_OPTS(.n_processors = 1, .id_generator = &g);
    otelprof_status st = OTELPROF_OK;
    ASSERT_NULL(otelprof_sdk_provider_new(&bad, &st));
    ASSERT_STATUS(st, OTELPROF_E_INVAL);
    ASSERT_EQ(idg.frees, 1);
    /* A generator struct from a newer caller with fields we do not know: refused. */
    struct {
        otelprof_id_generator g;
        uint64_t future;
    } big;
    memset(&big, 0, sizeof big);
    big.g = g;
    big.g.sz = sizeof big;
    big.future = 1;
    otelprof_sdk_opts o2 = OTELPROF_SDK_OPTS(.id_generator = &big.g);
    ASSERT_NULL(otelprof_sdk_provider_new(&o2, &st));
    ASSERT_STATUS(st, OTELPROF_E_OPTS);
    ASSERT_EQ(idg.frees, 2);
    /* An sdk_opts from a 0.1 caller (no id_generator field): the built-in generator. */
    otelprof_sdk_opts old = OTELPROF_SDK_OPTS(.id_generator = &g);
    old.sz = offsetof(otelprof_sdk_opts, id_generator);
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&old, &st);
    ASSERT_OK(st);
    s = otelprof_tracer_start_span(otelprof_tracer_provider_get_tracer(p, "x", NULL, NULL), "s",
                                   NULL);
    ASSERT_TRUE(load64(otelprof_span_get_context(s)->trace_id) != 0xabcd);
    otelprof_span_end(s, 0);
    otelprof_tracer_provider_free(p);
    ASSERT_EQ(idg.frees, 2);
}

#define GEN_THREADS 4
#define GEN_PER     2000
static uint64_t gen_seen[GEN_THREADS * GEN_PER * 2];

static void *gen_worker(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * GEN_PER * 2;
    for (size_t i = 0; i < GEN_PER; i++) {
        otelprof_span *s = otelprof_tracer_start_span(tracer, "g", NULL);
        const otelprof_span_context *c = otelprof_span_get_context(s);
        gen_seen[base + 2 * i] = load64(c->trace_id + 8);
        gen_seen[base + 2 * i + 1] = load64(c->span_id);
        otelprof_span_end(s, 0);
    }
    return NULL;
}

/* The generator is called concurrently from every thread starting spans (TSan runs this). */
static void id_generator_threads(void)
{
    memset(&idg, 0, sizeof idg);
    atomic_store(&idg.next, 1);
    otelprof_id_generator g = OTELPROF_ID_GENERATOR(.generate_trace_id = gen_trace,
                                                    .generate_span_id = gen_span, .arg = &idg);
    setup_gen(&g, otelprof_sampler_always_off());
    pthread_t th[GEN_THREADS];
    for (uintptr_t i = 0; i < GEN_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, gen_worker, (void *)i), 0);
    for (int i = 0; i < GEN_THREADS; i++)
        pthread_join(th[i], NULL);
    size_t n = sizeof gen_seen / sizeof gen_seen[0];
    qsort(gen_seen, n, sizeof gen_seen[0], cmp_u64);
    /* Every id came from the counter: exactly 1..n, none twice. */
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(gen_seen[i], i + 1);
    teardown();
}

/* ---- provider ---- */

static void provider_tracers(void)
{
    log_capture();
    setup(NULL, NULL);
    otelprof_tracer *a1 = otelprof_tracer_provider_get_tracer(provider, "a", "1", NULL);
    ASSERT_TRUE(a1 == otelprof_tracer_provider_get_tracer(provider, "a", "1", NULL));
    ASSERT_TRUE(a1 != otelprof_tracer_provider_get_tracer(provider, "a", "2", NULL));
    otelprof_tracer *anov = otelprof_tracer_provider_get_tracer(provider, "a", NULL, NULL);
    ASSERT_TRUE(anov != a1);
    ASSERT_TRUE(anov == otelprof_tracer_provider_get_tracer(provider, "a", NULL, NULL));
    otelprof_tracer *schema =
        otelprof_tracer_provider_get_tracer(provider, "a", "1", "https://example.com/s");
    ASSERT_TRUE(schema != a1);
    ASSERT_TRUE(tracer == otelprof_tracer_provider_get_tracer(provider, "test", "1.0", NULL));
    otelprof_tracer *noname = otelprof_tracer_provider_get_tracer(provider, NULL, NULL, NULL);
    ASSERT_TRUE(noname != NULL);
    ASSERT_EQ(log_warns, 1);
    otelprof_span_end(otelprof_tracer_start_span(schema, "s", NULL), 0);
    otelprof_span_end(otelprof_tracer_start_span(noname, "n", NULL), 0);
    ASSERT_STR_EQ(exported(0)->scope->name, "a");
    ASSERT_STR_EQ(exported(0)->scope->version, "1");
    ASSERT_STR_EQ(exported(0)->scope->schema_url, "https://example.com/s");
    ASSERT_STR_EQ(exported(1)->scope->name, "");
    teardown();
}

static void provider_shutdown(void)
{
    memset(&counter, 0, sizeof counter);
    counter.base.ops = &counting_ops;
    setup_with(NULL, NULL, &counter.base);
    otelprof_span *before = start("before", NULL);
    ASSERT_OK(otelprof_tracer_provider_force_flush(provider, 100));
    ASSERT_EQ(counter.flushes, 1);
    ASSERT_OK(otelprof_tracer_provider_shutdown(provider, 100));
    ASSERT_EQ(counter.shutdowns, 1);
    ASSERT_OK(otelprof_tracer_provider_shutdown(provider, 100)); /* ignored */
    ASSERT_EQ(counter.shutdowns, 1);
    /* Spans after shutdown: non-recording, propagating the parent. */
    otelprof_span *after = start("after", NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(after));
    ASSERT_TRUE(!otelprof_span_context_is_valid(otelprof_span_get_context(after)));
    otelprof_span_end(after, 0);
    otelprof_span_context p = mkctx(8, true, true);
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &p);
    after = start("after-child", &o);
    ASSERT_MEM_EQ(otelprof_span_get_context(after)->span_id, p.span_id, 8);
    otelprof_span_end(after, 0);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(provider, "late", NULL, NULL);
    ASSERT_TRUE(t != NULL);
    otelprof_span *late = otelprof_tracer_start_span(t, "late", NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(late));
    otelprof_span_end(late, 0);
    /* A span started before shutdown and ended after reaches no processor. */
    otelprof_span_end(before, 0);
    ASSERT_EQ(counter.starts, 1);
    ASSERT_EQ(counter.ends, 0);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 0);
    teardown();
    ASSERT_EQ(counter.shutdowns, 1); /* free does not shut down twice */
}

/* ---- resource ---- */

static const otelprof_kv *res_get(const otelprof_resource *r, const char *key)
{
    size_t n = 0;
    const otelprof_kv *kv = otelprof_resource_attributes(r, &n);
    return attr(kv, n, key);
}

static void expect_res_str(const otelprof_resource *r, const char *key, const char *want)
{
    const otelprof_kv *kv = res_get(r, key);
    if (!kv)
        TEST_FAIL("resource has no %s", key);
    ASSERT_EQ(kv->value.type, OTELPROF_VALUE_STRING);
    ASSERT_STR_EQ(kv->value.u.str.ptr, want);
    ASSERT_EQ(kv->value.u.str.len, strlen(want));
}

static void resource_defaults(void)
{
    otelprof_resource *r = otelprof_resource_new();
    size_t n = 0;
    otelprof_resource_attributes(r, &n);
    ASSERT_EQ(n, 4);
    char want[300];
    snprintf(want, sizeof want, "unknown_service:%s", program_invocation_short_name);
    expect_res_str(r, "service.name", want);
    expect_res_str(r, "telemetry.sdk.name", "otelprof");
    expect_res_str(r, "telemetry.sdk.language", "c");
    expect_res_str(r, "telemetry.sdk.version", "0.1.0");
    otelprof_kv x = OTELPROF_KV_INT("x", 5);
    ASSERT_OK(otelprof_resource_put(r, &x));
    otelprof_kv xb = OTELPROF_KV_BOOL("x", true);
    ASSERT_OK(otelprof_resource_put(r, &xb));
    const double ds[] = {1.0, 2.0};
    otelprof_kv arr = {"arr", {.type = OTELPROF_VALUE_DOUBLE_ARRAY, .u.array = {ds, 2}}};
    ASSERT_OK(otelprof_resource_put(r, &arr));
    otelprof_resource_attributes(r, &n);
    ASSERT_EQ(n, 6);
    ASSERT_EQ(res_get(r, "x")->value.type, OTELPROF_VALUE_BOOL);
    ASSERT_EQ(res_get(r, "arr")->value.u.array.n, 2);
    ASSERT_STATUS(otelprof_resource_put(r, NULL), OTELPROF_E_INVAL);
    otelprof_kv empty = OTELPROF_KV_INT("", 1);
    ASSERT_STATUS(otelprof_resource_put(r, &empty), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_resource_put(NULL, &x), OTELPROF_E_INVAL);
    otelprof_resource_free(r);
}

static void resource_env(void)
{
    setenv("OTEL_RESOURCE_ATTRIBUTES",
           "deployment.environment=prod, host.role = web%20front ,empty=,service.name=from-attrs,"
           "telemetry.sdk.name=mine,utf=%C3%A9,",
           1);
    unsetenv("OTEL_SERVICE_NAME");
    otelprof_resource *r = otelprof_resource_new_from_env();
    expect_res_str(r, "deployment.environment", "prod");
    expect_res_str(r, "host.role", "web front");
    expect_res_str(r, "empty", "");
    expect_res_str(r, "service.name", "from-attrs");
    expect_res_str(r, "telemetry.sdk.name", "mine");
    expect_res_str(r, "utf", "\xc3\xa9");
    otelprof_resource_free(r);
    setenv("OTEL_SERVICE_NAME", "svc", 1); /* wins over service.name in the list */
    r = otelprof_resource_new_from_env();
    expect_res_str(r, "service.name", "svc");
    expect_res_str(r, "deployment.environment", "prod");
    otelprof_resource_free(r);
}

static void resource_env_malformed(void)
{
    const char *bad[] = {"a=1,b",    "a=1,=x",  "a=%zz", "a=%4",     "a=1,b=%e2%82",
                         "noequals", "a=1, =2", "a=%",   "a=1,k=v%2"};
    unsetenv("OTEL_SERVICE_NAME");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("OTEL_RESOURCE_ATTRIBUTES", bad[i], 1);
        log_capture();
        otelprof_resource *r = otelprof_resource_new_from_env();
        size_t n = 0;
        otelprof_resource_attributes(r, &n);
        if (n != 4)
            TEST_FAIL("\"%s\": %zu attributes kept, want the 4 defaults", bad[i], n);
        ASSERT_NULL(res_get(r, "a"));
        ASSERT_EQ(log_warns, 1);
        ASSERT_TRUE(log_has("OTEL_RESOURCE_ATTRIBUTES"));
        otelprof_resource_free(r);
    }
    /* The service name still applies when the list is discarded. */
    setenv("OTEL_SERVICE_NAME", "svc", 1);
    otelprof_resource *r = otelprof_resource_new_from_env();
    expect_res_str(r, "service.name", "svc");
    otelprof_resource_free(r);
}

/* ---- console exporter ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", id[i]);
}

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        TEST_FAIL("missing %s\nin: %s", needle, text);
}

static void console_json(void)
{
    char path[] = "/tmp/otelprof-console-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    otelprof_span_exporter *e = otelprof_console_exporter_new(f);
    otelprof_span_processor *p = otelprof_simple_processor_new(e);
    otelprof_resource *res = otelprof_resource_new();
    otelprof_kv rk = OTELPROF_KV_STR("service.name", "json-test");
    ASSERT_OK(otelprof_resource_put(res, &rk));
    otelprof_sdk_opts o =
        OTELPROF_SDK_OPTS(.resource = res, .sampler = otelprof_sampler_always_on(),
                          .processors = &p, .n_processors = 1);
    otelprof_tracer_provider *prov = otelprof_sdk_provider_new(&o, NULL);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(prov, "lib", "2.0", NULL);

    const char *strs[] = {"a", "b\"c"};
    const int64_t ints[] = {1, -2};
    const bool bools[] = {false, true};
    const double dbls[] = {0.5, INFINITY};
    otelprof_kv attrs[] = {
        OTELPROF_KV_STR("s", "tab\there"),
        OTELPROF_KV_BOOL("b", true),
        OTELPROF_KV_INT("i", -42),
        OTELPROF_KV_DOUBLE("d", 1.5),
        OTELPROF_KV_DOUBLE("nan", NAN),
        {"sa", {.type = OTELPROF_VALUE_STRING_ARRAY, .u.array = {strs, 2}}},
        {"ia", {.type = OTELPROF_VALUE_INT_ARRAY, .u.array = {ints, 2}}},
        {"ba", {.type = OTELPROF_VALUE_BOOL_ARRAY, .u.array = {bools, 2}}},
        {"da", {.type = OTELPROF_VALUE_DOUBLE_ARRAY, .u.array = {dbls, 2}}},
        OTELPROF_KV_STR("utf", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
    };
    otelprof_span_start_opts so =
        OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER, .start_time_ns = 1000000000,
                                 .attrs = attrs, .n_attrs = sizeof attrs / sizeof attrs[0]);
    otelprof_span *root = otelprof_tracer_start_span(t, "na\"me\\\n\x01\xff", &so);
    otelprof_span_context rc = *otelprof_span_get_context(root);
    otelprof_span_context lk = mkctx(3, true, true);
    ASSERT_OK(otelprof_tracestate_set(&lk.tracestate, "k", 1, "v", 1));
    otelprof_link link = {&lk, NULL, 0};
    otelprof_span_start_opts co =
        OTELPROF_SPAN_START_OPTS(.parent = &rc, .links = &link, .n_links = 1);
    otelprof_span *child = otelprof_tracer_start_span(t, "child", &co);
    otelprof_kv ea = OTELPROF_KV_INT("n", 7);
    otelprof_span_add_event(child, "ev", 1500000000, &ea, 1);
    otelprof_span_set_status(child, OTELPROF_SPAN_STATUS_ERROR, "bad \"x\"");
    otelprof_span_context cc = *otelprof_span_get_context(child);
    otelprof_span_end(child, 1900000000);
    otelprof_span_end(root, 2000000000);
    otelprof_tracer_provider_free(prov);
    fclose(f);

    char *text = read_file(path);
    /* One line per span, the child first. */
    char *nl = strchr(text, '\n');
    ASSERT_TRUE(nl && strchr(nl + 1, '\n') && !*(strchr(nl + 1, '\n') + 1));
    char tid[33], rid[17], cid[17], lid[17], ltid[33], want[256];
    hex(rc.trace_id, 16, tid);
    hex(rc.span_id, 8, rid);
    hex(cc.span_id, 8, cid);
    hex(lk.span_id, 8, lid);
    hex(lk.trace_id, 16, ltid);
    snprintf(want, sizeof want, "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\"",
             tid, cid, rid);
    ASSERT_TRUE(strncmp(text, want, strlen(want)) == 0);
    snprintf(want, sizeof want, "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"\"", tid,
             rid);
    ASSERT_TRUE(strncmp(nl + 1, want, strlen(want)) == 0);
    expect_in(text, "\"name\":\"na\\\"me\\\\\\n\\u0001\\ufffd\"");
    expect_in(text, "\"kind\":2,\"startTimeUnixNano\":\"1000000000\","
                    "\"endTimeUnixNano\":\"2000000000\"");
    expect_in(text, "{\"key\":\"s\",\"value\":{\"stringValue\":\"tab\\there\"}}");
    expect_in(text, "{\"key\":\"b\",\"value\":{\"boolValue\":true}}");
    expect_in(text, "{\"key\":\"i\",\"value\":{\"intValue\":\"-42\"}}");
    expect_in(text, "{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}}");
    expect_in(text, "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}}");
    expect_in(text, "{\"key\":\"sa\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
                    "\"a\"},{\"stringValue\":\"b\\\"c\"}]}}}");
    expect_in(text, "{\"key\":\"ia\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},"
                    "{\"intValue\":\"-2\"}]}}}");
    expect_in(text, "{\"key\":\"ba\",\"value\":{\"arrayValue\":{\"values\":[{\"boolValue\":false},"
                    "{\"boolValue\":true}]}}}");
    expect_in(text, "{\"key\":\"da\",\"value\":{\"arrayValue\":{\"values\":[{\"doubleValue\":0.5},"
                    "{\"doubleValue\":\"Infinity\"}]}}}");
    expect_in(
        text,
        "{\"key\":\"utf\",\"value\":{\"stringValue\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}}");
    expect_in(text,
              "\"events\":[{\"timeUnixNano\":\"1500000000\",\"name\":\"ev\",\"attributes\":"
              "[{\"key\":\"n\",\"value\":{\"intValue\":\"7\"}}],\"droppedAttributesCount\":0}]");
    snprintf(want, sizeof want,
             "\"links\":[{\"traceId\":\"%s\",\"spanId\":\"%s\",\"traceState\":"
             "\"k=v\",\"attributes\":[],\"droppedAttributesCount\":0,\"flags\":%u}]",
             ltid, lid, 0x303u);
    expect_in(text, want);
    expect_in(text, "\"status\":{\"code\":2,\"message\":\"bad \\\"x\\\"\"}");
    expect_in(text, "\"status\":{\"code\":0,\"message\":\"\"}");
    expect_in(text, "\"flags\":259"); /* sampled | random | has-is-remote */
    expect_in(text, "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"json-test\"}}");
    expect_in(text, "\"scope\":{\"name\":\"lib\",\"version\":\"2.0\"}");

#ifdef TEST_PYTHON
    /* An independent parser reads every line back. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import json,sys\n"
             "ls=[json.loads(l) for l in sys.stdin]\n"
             "assert len(ls)==2, len(ls)\n"
             "c,r=ls\n"
             "assert r[\"name\"]==\"na\\\"me\\\\\\n\\x01\\ufffd\", repr(r[\"name\"])\n"
             "assert c[\"parentSpanId\"]==r[\"spanId\"]\n"
             "a={x[\"key\"]:x[\"value\"] for x in r[\"attributes\"]}\n"
             "assert a[\"utf\"][\"stringValue\"]==\"\\u00e9\\u20ac\\U0001F600\"\n"
             "assert a[\"sa\"][\"arrayValue\"][\"values\"][1][\"stringValue\"]==\"b\\\"c\"\n"
             "assert a[\"i\"][\"intValue\"]==\"-42\"\n"
             "assert c[\"status\"]==dict(code=2,message=\"bad \\\"x\\\"\")\n"
             "assert c[\"events\"][0][\"timeUnixNano\"]==\"1500000000\"\n"
             "' < %s",
             TEST_PYTHON, path);
    int rc_py = system(cmd);
    ASSERT_EQ(rc_py, 0);
#else
    printf("note: python3 not found at configure time; JSON checked by substrings only\n");
#endif
    unlink(path);
}

/* ---- the provider from the environment ---- */

static void sdk_env_disabled(void)
{
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    otelprof_status rc = OTELPROF_E_INVAL;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new_from_env(&rc);
    ASSERT_OK(rc);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "x", NULL, NULL);
    otelprof_span *s = otelprof_tracer_start_span(t, "s", NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    ASSERT_TRUE(!otelprof_span_context_is_valid(otelprof_span_get_context(s)));
    otelprof_span_end(s, 0);
    otelprof_tracer_provider_free(p);

    setenv("OTEL_SDK_DISABLED", "maybe", 1); /* not "true": enabled, with a warning */
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    log_capture();
    p = otelprof_sdk_provider_new_from_env(&rc);
    ASSERT_OK(rc);
    ASSERT_EQ(log_warns, 1);
    ASSERT_TRUE(log_has("OTEL_SDK_DISABLED"));
    t = otelprof_tracer_provider_get_tracer(p, "x", NULL, NULL);
    s = otelprof_tracer_start_span(t, "s", NULL);
    ASSERT_TRUE(otelprof_span_is_recording(s));
    otelprof_span_end(s, 0);
    otelprof_tracer_provider_free(p);
    setenv("OTEL_SDK_DISABLED", "false", 1);
    log_capture();
    p = otelprof_sdk_provider_new_from_env(&rc);
    ASSERT_EQ(log_warns, 0);
    otelprof_tracer_provider_free(p);
}

/* Run one span through a provider from the environment with stdout captured. */
static char *env_provider_output(int *warns)
{
    char path[] = "/tmp/otelprof-stdout-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    ASSERT_TRUE(dup2(fd, 1) == 1);
    log_capture();
    otelprof_status rc = OTELPROF_E_INVAL;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new_from_env(&rc);
    ASSERT_OK(rc);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "env", NULL, NULL);
    otelprof_span_end(otelprof_tracer_start_span(t, "env-span", NULL), 0);
    otelprof_tracer_provider_free(p);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    *warns = log_warns;
    char *text = read_file(path);
    unlink(path);
    return text;
}

static void sdk_env_exporters(void)
{
    unsetenv("OTEL_SDK_DISABLED");
    setenv("OTEL_SERVICE_NAME", "svc-env", 1);
    int warns;
    setenv("OTEL_TRACES_EXPORTER", "CONSOLE", 1);
    char *out = env_provider_output(&warns);
    ASSERT_EQ(warns, 0);
    expect_in(out, "\"name\":\"env-span\"");
    expect_in(out, "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc-env\"}}");

    setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
    out = env_provider_output(&warns);
    ASSERT_STR_EQ(out, "");
    unsetenv("OTEL_TRACES_SAMPLER");

    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    out = env_provider_output(&warns);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(warns, 0);

    setenv("OTEL_TRACES_EXPORTER", "console,zipkin", 1);
    out = env_provider_output(&warns);
    ASSERT_EQ(warns, 1);
    ASSERT_TRUE(log_has("zipkin"));
    expect_in(out, "\"name\":\"env-span\"");

    setenv("OTEL_TRACES_EXPORTER", "none,console", 1);
    out = env_provider_output(&warns);
    ASSERT_EQ(warns, 1);
    ASSERT_STR_EQ(out, "");

    /* otlp (the default): a batch processor with the OTLP exporter when built with it; a
     * warning otherwise. Point it at a port nothing listens on and keep it quick. */
    unsetenv("OTEL_TRACES_EXPORTER");
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "50", 1);
    out = env_provider_output(&warns);
    ASSERT_STR_EQ(out, "");
}

static void sdk_opts_errors(void)
{
    struct {
        otelprof_sdk_opts o;
        uint64_t future;
    } big;
    memset(&big, 0, sizeof big);
    big.o.sz = sizeof big;
    big.future = 1;
    /* Ownership passes even on failure: these are freed (ASan/LSan would see a leak). */
    big.o.resource = otelprof_resource_new();
    big.o.sampler = otelprof_sampler_traceidratio(0.5);
    otelprof_status rc = OTELPROF_OK;
    ASSERT_NULL(otelprof_sdk_provider_new(&big.o, &rc));
    ASSERT_STATUS(rc, OTELPROF_E_OPTS);
    big.future = 0; /* zero bytes beyond ours are fine */
    big.o.resource = NULL;
    big.o.sampler = NULL;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&big.o, &rc);
    ASSERT_OK(rc);
    otelprof_tracer_provider_free(p);

    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.n_processors = 1);
    ASSERT_NULL(otelprof_sdk_provider_new(&o, &rc));
    ASSERT_STATUS(rc, OTELPROF_E_INVAL);
    o.sz = 0;
    o.n_processors = 0;
    ASSERT_NULL(otelprof_sdk_provider_new(&o, &rc));
    ASSERT_STATUS(rc, OTELPROF_E_INVAL);
    /* NULL options: everything from the environment, no processors. */
    p = otelprof_sdk_provider_new(NULL, &rc);
    ASSERT_OK(rc);
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "x", NULL, NULL);
    otelprof_span *s = otelprof_tracer_start_span(t, "s", NULL);
    ASSERT_TRUE(otelprof_span_is_recording(s)); /* default sampler: ParentBased(AlwaysOn) */
    otelprof_span_end(s, 0);
    otelprof_tracer_provider_free(p);
}

/* ---- ids ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#define FORK_IDS 64

static void gen_ids(uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        otelprof_span *s = start("id", NULL);
        const otelprof_span_context *c = otelprof_span_get_context(s);
        out[i] = load64(c->trace_id + 8) ^ load64(c->span_id);
        otelprof_span_end(s, 0);
    }
}

static void id_fork(void)
{
    setup(otelprof_sampler_always_off(), NULL); /* ids are made for dropped spans too */
    uint64_t before[4];
    gen_ids(before, 4); /* the parent's generator is seeded before the fork */
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        uint64_t ids[FORK_IDS];
        gen_ids(ids, FORK_IDS);
        ssize_t w = write(fds[1], ids, sizeof ids);
        _exit(w == (ssize_t)sizeof ids ? 0 : 1);
    }
    close(fds[1]);
    uint64_t child[FORK_IDS], parent[FORK_IDS];
    size_t got = 0;
    while (got < sizeof child) {
        ssize_t r = read(fds[0], (char *)child + got, sizeof child - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_EQ(got, sizeof child);
    gen_ids(parent, FORK_IDS);
    /* Without reseeding, the child would repeat exactly the parent's sequence. */
    for (int i = 0; i < FORK_IDS; i++)
        for (int j = 0; j < FORK_IDS; j++)
            if (child[i] == parent[j])
                TEST_FAIL("child id %d equals parent id %d after fork", i, j);
    teardown();
}

#define ID_THREADS 8
#define ID_PER     5000
static uint64_t thread_ids[ID_THREADS * ID_PER * 2];

static void *id_worker(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * ID_PER * 2;
    for (size_t i = 0; i < ID_PER; i++) {
        otelprof_span *s = otelprof_tracer_start_span(tracer, "id", NULL);
        const otelprof_span_context *c = otelprof_span_get_context(s);
        if (!otelprof_span_context_is_valid(c) || !(c->trace_flags & OTELPROF_FLAG_RANDOM_TRACE_ID))
            TEST_FAIL("bad id or flags");
        thread_ids[base + 2 * i] = load64(c->trace_id) ^ load64(c->trace_id + 8);
        thread_ids[base + 2 * i + 1] = load64(c->span_id);
        otelprof_span_end(s, 0);
    }
    return NULL;
}

static void id_threads(void)
{
    setup(otelprof_sampler_always_off(), NULL);
    pthread_t th[ID_THREADS];
    for (uintptr_t i = 0; i < ID_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, id_worker, (void *)i), 0);
    for (int i = 0; i < ID_THREADS; i++)
        pthread_join(th[i], NULL);
    size_t n = sizeof thread_ids / sizeof thread_ids[0];
    qsort(thread_ids, n, sizeof thread_ids[0], cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (thread_ids[i] == thread_ids[i - 1])
            TEST_FAIL("duplicate id %016llx", (unsigned long long)thread_ids[i]);
    teardown();
}

#define SIMPLE_THREADS 4
#define SIMPLE_PER     500

static void *simple_worker(void *arg)
{
    char name[32];
    for (int i = 0; i < SIMPLE_PER; i++) {
        snprintf(name, sizeof name, "t%u-%d", (unsigned)(uintptr_t)arg, i);
        otelprof_span *s = otelprof_tracer_start_span(tracer, name, NULL);
        otelprof_kv kv = OTELPROF_KV_INT("i", i);
        otelprof_span_set_attributes(s, &kv, 1);
        otelprof_span_end(s, 0);
    }
    return NULL;
}

static void simple_threads(void)
{
    setup(NULL, NULL);
    pthread_t th[SIMPLE_THREADS];
    for (uintptr_t i = 0; i < SIMPLE_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, simple_worker, (void *)i), 0);
    for (int i = 0; i < SIMPLE_THREADS; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(otelprof_memory_exporter_count(mem), SIMPLE_THREADS * SIMPLE_PER);
    int seen[SIMPLE_THREADS] = {0};
    for (size_t i = 0; i < SIMPLE_THREADS * SIMPLE_PER; i++) {
        unsigned th_i;
        int k;
        ASSERT_EQ(sscanf(exported(i)->name, "t%u-%d", &th_i, &k), 2);
        ASSERT_EQ(k, seen[th_i]); /* each thread's spans in its own order */
        seen[th_i]++;
    }
    teardown();
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"parent_child", parent_child},
        {"parent_options", parent_options},
        {"remote_parent", remote_parent},
        {"parentbased_delegates", parentbased_delegates},
        {"sampler_descriptions", sampler_descriptions},
        {"traceidratio_boundary", traceidratio_boundary},
        {"traceidratio_spans", traceidratio_spans},
        {"sampler_env", sampler_env},
        {"tracestate_children", tracestate_children},
        {"attribute_types", attribute_types},
        {"limits", limits},
        {"many_attrs", many_attrs},
        {"limits_env", limits_env},
        {"events_links", events_links},
        {"status", status},
        {"update_name", update_name},
        {"long_names", long_names},
        {"span_memory", span_memory},
        {"record_only_and_drop", record_only_and_drop},
        {"provider_tracers", provider_tracers},
        {"provider_shutdown", provider_shutdown},
        {"resource_defaults", resource_defaults},
        {"resource_env", resource_env},
        {"resource_env_malformed", resource_env_malformed},
        {"console_json", console_json},
        {"sdk_env_disabled", sdk_env_disabled},
        {"sdk_env_exporters", sdk_env_exporters},
        {"sdk_opts_errors", sdk_opts_errors},
        {"id_fork", id_fork},
        {"id_threads", id_threads},
        {"sampler_links", sampler_links},
        {"id_generator", id_generator},
        {"id_generator_threads", id_generator_threads},
        {"simple_threads", simple_threads},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
