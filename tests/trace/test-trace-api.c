/* The trace.h API layer: NULL-safe dispatch, scopes (the per-thread current span context)
 * and the no-op provider. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/trace.h>

#include "test.h"

#include <pthread.h>

static otelprof_span_context mkctx(uint8_t seed, bool sampled)
{
    otelprof_span_context c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 16; i++)
        c.trace_id[i] = (uint8_t)(seed + i);
    for (int i = 0; i < 8; i++)
        c.span_id[i] = (uint8_t)(seed * 3 + i + 1);
    c.trace_flags = sampled ? OTELPROF_FLAG_SAMPLED : 0;
    return c;
}

static void dispatch_null(void)
{
    ASSERT_NULL(otelprof_tracer_provider_get_tracer(NULL, "x", NULL, NULL));
    ASSERT_STATUS(otelprof_tracer_provider_force_flush(NULL, 10), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracer_provider_shutdown(NULL, 10), OTELPROF_E_INVAL);
    otelprof_tracer_provider_free(NULL);
    ASSERT_NULL(otelprof_tracer_start_span(NULL, "x", NULL));
    const otelprof_span_context *c = otelprof_span_get_context(NULL);
    ASSERT_TRUE(c != NULL);
    ASSERT_TRUE(!otelprof_span_context_is_valid(c));
    ASSERT_TRUE(!otelprof_span_is_recording(NULL));
    otelprof_kv kv = OTELPROF_KV_INT("a", 1);
    otelprof_span_set_attributes(NULL, &kv, 1);
    otelprof_span_add_event(NULL, "e", 0, NULL, 0);
    otelprof_span_add_link(NULL, NULL);
    otelprof_span_set_status(NULL, OTELPROF_SPAN_STATUS_ERROR, "x");
    otelprof_span_update_name(NULL, "x");
    otelprof_span_end(NULL, 0);
    ASSERT_STATUS(otelprof_scope_enter(NULL, NULL), OTELPROF_E_INVAL);
    otelprof_scope sc;
    ASSERT_STATUS(otelprof_scope_enter(NULL, &sc), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_scope_leave(&sc), OTELPROF_OK); /* the null scope */
    ASSERT_STATUS(otelprof_scope_leave(NULL), OTELPROF_E_INVAL);
    ASSERT_NULL(otelprof_current_span_context());
    otelprof_sampler_free(NULL);
    otelprof_span_processor_free(NULL);
    otelprof_span_exporter_free(NULL);
    otelprof_resource_free(NULL);
    ASSERT_EQ(otelprof_memory_exporter_count(NULL), 0);
    ASSERT_NULL(otelprof_memory_exporter_get(NULL, 0));
}

/* An implementation built against an older trace.h: its tables are shorter. The
 * dispatchers must not read past sz, and a tracer returning NULL still gives a span. */
static int old_calls;
static otelprof_span *old_start(otelprof_tracer *t, const char *name,
                                const otelprof_span_start_opts *o)
{
    (void)t, (void)name, (void)o;
    old_calls++;
    return NULL;
}

static void must_not_call_status(otelprof_span *s, otelprof_span_status c, const char *d)
{
    (void)s, (void)c, (void)d;
    TEST_FAIL("set_status read past the table's sz");
}

static void must_not_call_end(otelprof_span *s, uint64_t t)
{
    (void)s, (void)t;
    TEST_FAIL("end read past the table's sz");
}

static void short_ops(void)
{
    otelprof_tracer_ops tops = {.sz = sizeof(size_t), .start_span = old_start};
    otelprof_tracer t = {&tops};
    /* sz does not cover start_span: not called, and the result is still a span. */
    otelprof_span *s = otelprof_tracer_start_span(&t, "x", NULL);
    ASSERT_EQ(old_calls, 0);
    ASSERT_TRUE(s != NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(s));
    ASSERT_TRUE(!otelprof_span_context_is_valid(otelprof_span_get_context(s)));
    otelprof_span_end(s, 0);

    /* Covered but returning NULL: a non-recording span carrying the parent's context. */
    tops.sz = sizeof tops;
    otelprof_span_context parent = mkctx(7, true);
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &parent);
    s = otelprof_tracer_start_span(&t, "x", &o);
    ASSERT_EQ(old_calls, 1);
    ASSERT_MEM_EQ(otelprof_span_get_context(s)->span_id, parent.span_id, 8);
    ASSERT_MEM_EQ(otelprof_span_get_context(s)->trace_id, parent.trace_id, 16);
    otelprof_span_end(s, 0);

    /* A span table whose sz stops before set_status: those entries are not read. */
    otelprof_span_ops sops = {.sz = offsetof(otelprof_span_ops, set_status),
                              .set_status = must_not_call_status,
                              .end = must_not_call_end};
    otelprof_span sp = {&sops};
    otelprof_span_set_status(&sp, OTELPROF_SPAN_STATUS_OK, NULL);
    otelprof_span_end(&sp, 0);
    ASSERT_TRUE(!otelprof_span_is_recording(&sp));
}

static void scope_nesting(void)
{
    otelprof_span_context a = mkctx(1, true), b = mkctx(2, false);
    otelprof_scope sa, sb;
    ASSERT_NULL(otelprof_current_span_context());
    ASSERT_OK(otelprof_scope_enter(&a, &sa));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    ASSERT_OK(otelprof_scope_enter(&b, &sb));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, b.span_id, 8);
    ASSERT_EQ(otelprof_current_span_context()->trace_flags, 0);
    ASSERT_OK(otelprof_scope_leave(&sb));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    ASSERT_OK(otelprof_scope_leave(&sa));
    ASSERT_NULL(otelprof_current_span_context());
    /* A scope left twice: the second time its token is the null token. */
    ASSERT_OK(otelprof_scope_leave(&sa));
}

static void scope_unwind(void)
{
    otelprof_span_context a = mkctx(1, true), b = mkctx(2, true), c = mkctx(3, true);
    otelprof_scope sa, sb, sc;
    ASSERT_OK(otelprof_scope_enter(&a, &sa));
    ASSERT_OK(otelprof_scope_enter(&b, &sb));
    otelprof_scope sb_copy = sb;
    ASSERT_OK(otelprof_scope_enter(&c, &sc));
    /* Leaving the middle one unwinds the inner one too. */
    ASSERT_OK(otelprof_scope_leave(&sb));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    ASSERT_STATUS(otelprof_scope_leave(&sc), OTELPROF_E_STALE_TOKEN);
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    /* A copy of an already-left token is stale as well, even once the depth is reused. */
    otelprof_scope sd;
    ASSERT_OK(otelprof_scope_enter(&c, &sd));
    ASSERT_STATUS(otelprof_scope_leave(&sb_copy), OTELPROF_E_STALE_TOKEN);
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, c.span_id, 8);
    ASSERT_OK(otelprof_scope_leave(&sd));
    ASSERT_OK(otelprof_scope_leave(&sa));
    ASSERT_NULL(otelprof_current_span_context());
}

static void scope_depth(void)
{
    otelprof_scope s[OTELPROF_SCOPE_MAX_DEPTH + 1];
    otelprof_span_context c[OTELPROF_SCOPE_MAX_DEPTH];
    for (int i = 0; i < OTELPROF_SCOPE_MAX_DEPTH; i++) {
        c[i] = mkctx((uint8_t)(i + 1), true);
        ASSERT_OK(otelprof_scope_enter(&c[i], &s[i]));
    }
    ASSERT_STATUS(otelprof_scope_enter(&c[0], &s[OTELPROF_SCOPE_MAX_DEPTH]), OTELPROF_E_DEPTH);
    /* The failed enter gave a null scope; leaving it changes nothing. */
    ASSERT_OK(otelprof_scope_leave(&s[OTELPROF_SCOPE_MAX_DEPTH]));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, c[OTELPROF_SCOPE_MAX_DEPTH - 1].span_id,
                  8);
    for (int i = OTELPROF_SCOPE_MAX_DEPTH - 1; i >= 0; i--) {
        ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, c[i].span_id, 8);
        ASSERT_OK(otelprof_scope_leave(&s[i]));
    }
    ASSERT_NULL(otelprof_current_span_context());
}

static void scope_copy(void)
{
    /* The scope keeps a copy: changing or freeing the caller's context does not matter. */
    otelprof_span_context *a = malloc(sizeof *a);
    *a = mkctx(9, true);
    ASSERT_OK(otelprof_tracestate_set(&a->tracestate, "k", 1, "v", 1));
    otelprof_scope s;
    ASSERT_OK(otelprof_scope_enter(a, &s));
    uint8_t want[8];
    memcpy(want, a->span_id, 8);
    memset(a, 0xee, sizeof *a);
    free(a);
    const otelprof_span_context *cur = otelprof_current_span_context();
    ASSERT_MEM_EQ(cur->span_id, want, 8);
    size_t vlen = 0;
    const char *v = otelprof_tracestate_get(&cur->tracestate, "k", 1, &vlen);
    ASSERT_TRUE(v && vlen == 1 && v[0] == 'v');
    ASSERT_OK(otelprof_scope_leave(&s));
}

static void scope_invalid_hides(void)
{
    otelprof_span_context a = mkctx(1, true), none;
    memset(&none, 0, sizeof none);
    otelprof_scope sa, sn;
    ASSERT_OK(otelprof_scope_enter(&a, &sa));
    ASSERT_OK(otelprof_scope_enter(&none, &sn));
    ASSERT_NULL(otelprof_current_span_context());
    ASSERT_OK(otelprof_scope_leave(&sn));
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    ASSERT_OK(otelprof_scope_leave(&sa));
}

static void noop_provider(void)
{
    otelprof_tracer_provider *p = otelprof_noop_provider_new();
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "lib", "1.0", NULL);
    ASSERT_TRUE(t != NULL);
    otelprof_span *root = otelprof_tracer_start_span(t, "root", NULL);
    ASSERT_TRUE(!otelprof_span_is_recording(root));
    ASSERT_TRUE(!otelprof_span_context_is_valid(otelprof_span_get_context(root)));
    otelprof_span_end(root, 0);

    otelprof_span_context parent = mkctx(4, true);
    parent.is_remote = true;
    ASSERT_OK(otelprof_tracestate_set(&parent.tracestate, "v", 1, "1", 1));
    otelprof_span_start_opts o = OTELPROF_SPAN_START_OPTS(.parent = &parent);
    otelprof_span *s = otelprof_tracer_start_span(t, "child", &o);
    const otelprof_span_context *c = otelprof_span_get_context(s);
    ASSERT_MEM_EQ(c->trace_id, parent.trace_id, 16);
    ASSERT_MEM_EQ(c->span_id, parent.span_id, 8);
    ASSERT_EQ(c->trace_flags, OTELPROF_FLAG_SAMPLED);
    ASSERT_EQ(otelprof_tracestate_count(&c->tracestate), 1);
    otelprof_kv kv = OTELPROF_KV_STR("a", "b");
    otelprof_span_set_attributes(s, &kv, 1);
    otelprof_span_end(s, 0);

    /* The current context propagates too. */
    otelprof_scope sc;
    ASSERT_OK(otelprof_scope_enter(&parent, &sc));
    s = otelprof_tracer_start_span(t, "cur", NULL);
    ASSERT_MEM_EQ(otelprof_span_get_context(s)->span_id, parent.span_id, 8);
    otelprof_span_end(s, 0);
    otelprof_span_start_opts ro = OTELPROF_SPAN_START_OPTS(.root = true);
    s = otelprof_tracer_start_span(t, "root2", &ro);
    ASSERT_TRUE(!otelprof_span_context_is_valid(otelprof_span_get_context(s)));
    otelprof_span_end(s, 0);
    ASSERT_OK(otelprof_scope_leave(&sc));

    ASSERT_OK(otelprof_tracer_provider_force_flush(p, 10));
    ASSERT_OK(otelprof_tracer_provider_shutdown(p, 10));
    otelprof_tracer_provider_free(p);
}

/* ---- threads ---- */

static void *scope_worker(void *arg)
{
    uint8_t seed = (uint8_t)(uintptr_t)arg;
    for (int round = 0; round < 2000; round++) {
        otelprof_span_context a = mkctx(seed, true), b = mkctx((uint8_t)(seed + 100), true);
        otelprof_scope sa, sb;
        if (otelprof_scope_enter(&a, &sa) != OTELPROF_OK ||
            otelprof_scope_enter(&b, &sb) != OTELPROF_OK)
            TEST_FAIL("enter failed");
        if (memcmp(otelprof_current_span_context()->span_id, b.span_id, 8) != 0)
            TEST_FAIL("thread %u sees another thread's context", seed);
        if (otelprof_scope_leave(&sb) != OTELPROF_OK)
            TEST_FAIL("leave failed");
        if (memcmp(otelprof_current_span_context()->span_id, a.span_id, 8) != 0)
            TEST_FAIL("thread %u sees another thread's context", seed);
        if (otelprof_scope_leave(&sa) != OTELPROF_OK || otelprof_current_span_context())
            TEST_FAIL("leave failed");
    }
    return NULL;
}

static void scope_threads(void)
{
    pthread_t th[8];
    for (uintptr_t i = 0; i < 8; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, scope_worker, (void *)(i + 1)), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
}

static otelprof_scope other_scope;
static otelprof_status other_leave_rc;

static void *leave_other(void *arg)
{
    (void)arg;
    other_leave_rc = otelprof_scope_leave(&other_scope);
    return NULL;
}

static void scope_wrong_thread(void)
{
    otelprof_span_context a = mkctx(1, true);
    ASSERT_OK(otelprof_scope_enter(&a, &other_scope));
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, leave_other, NULL), 0);
    pthread_join(th, NULL);
    ASSERT_STATUS(other_leave_rc, OTELPROF_E_WRONG_THREAD);
    /* Nothing changed: the owner can still leave it. */
    ASSERT_MEM_EQ(otelprof_current_span_context()->span_id, a.span_id, 8);
    ASSERT_OK(otelprof_scope_leave(&other_scope));
    ASSERT_NULL(otelprof_current_span_context());
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"dispatch_null", dispatch_null},
        {"short_ops", short_ops},
        {"scope_nesting", scope_nesting},
        {"scope_unwind", scope_unwind},
        {"scope_depth", scope_depth},
        {"scope_copy", scope_copy},
        {"scope_invalid_hides", scope_invalid_hides},
        {"noop_provider", noop_provider},
        {"scope_threads", scope_threads},
        {"scope_wrong_thread", scope_wrong_thread},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
