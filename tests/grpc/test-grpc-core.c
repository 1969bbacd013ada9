/* C-core helpers (include/otelprof/grpc_core.h): extract from a grpc_metadata_array, inject
 * into grpc_metadata, round trip, hostile input. */
#include <otelprof/grpc_core.h>

#include "test.h"

#include <grpc/grpc.h>
#include <grpc/slice.h>

static grpc_metadata md(const char *k, const char *v)
{
    grpc_metadata m;
    memset(&m, 0, sizeof m);
    m.key = grpc_slice_from_copied_string(k);
    m.value = grpc_slice_from_copied_string(v);
    return m;
}

#define TP  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TP2 "00-11111111111111111111111111111111-2222222222222222-01"

static void extract_one(grpc_metadata *m, size_t n, bool valid)
{
    grpc_metadata_array arr = {.count = n, .capacity = n, .metadata = m};
    otelprof_span_context sc;
    otelprof_propagators props;
    ASSERT_OK(otelprof_propagators_parse(&props, "tracecontext", OTELPROF_NUL_TERMINATED));
    ASSERT_OK(otelprof_grpc_metadata_extract(&props, &arr, &sc, NULL));
    ASSERT_EQ(otelprof_span_context_is_valid(&sc), valid);
    otelprof_grpc_metadata_release(m, n);
}

int main(void)
{
    grpc_init();
    /* extract: one valid traceparent with tracestate, any key case */
    {
        grpc_metadata m[3] = {md("x-other", "1"), md("Traceparent", TP),
                              md("tracestate", "a=1,b=2")};
        grpc_metadata_array arr = {.count = 3, .capacity = 3, .metadata = m};
        otelprof_span_context sc;
        ASSERT_OK(otelprof_grpc_metadata_extract(NULL, &arr, &sc, NULL));
        ASSERT_TRUE(otelprof_span_context_is_valid(&sc));
        ASSERT_TRUE(sc.is_remote);
        ASSERT_EQ(sc.trace_id[0], 0x0a);
        ASSERT_EQ(sc.span_id[7], 0x31);
        ASSERT_EQ(otelprof_tracestate_count(&sc.tracestate), 2);
        otelprof_grpc_metadata_release(m, 3);
    }
    /* hostile: never fails, invalid parent */
    {
        grpc_metadata m[2] = {md("traceparent", TP), md("traceparent", TP2)};
        extract_one(m, 2, false);
    }
    {
        grpc_metadata m[2] = {md("traceparent", TP), md("traceparent", TP)};
        extract_one(m, 2, false);
    }
    {
        grpc_metadata m[1] = {md("traceparent", "00-zz")};
        extract_one(m, 1, false);
    }
    {
        static char big[9000];
        memset(big, 'a', sizeof big - 1);
        memcpy(big, TP, strlen(TP));
        grpc_metadata m[1] = {md("traceparent", big)};
        extract_one(m, 1, false);
    }
    {
        grpc_metadata_array empty = {0};
        otelprof_span_context sc;
        ASSERT_OK(otelprof_grpc_metadata_extract(NULL, &empty, &sc, NULL));
        ASSERT_TRUE(!otelprof_span_context_is_valid(&sc));
        ASSERT_STATUS(otelprof_grpc_metadata_extract(NULL, NULL, &sc, NULL), OTELPROF_E_INVAL);
    }
    /* inject then extract: round trip */
    {
        otelprof_span_context sc;
        ASSERT_OK(otelprof_traceparent_parse(TP, OTELPROF_NUL_TERMINATED, &sc));
        ASSERT_OK(otelprof_tracestate_set(&sc.tracestate, "k", 1, "v", 1));
        grpc_metadata out[4];
        size_t n = 1;
        out[0] = md("x-first", "kept");
        ASSERT_STATUS(otelprof_grpc_metadata_inject(NULL, &sc, NULL, out, 2, &n),
                      OTELPROF_E_TOO_LARGE);
        ASSERT_EQ(n, 1);
        ASSERT_OK(otelprof_grpc_metadata_inject(NULL, &sc, NULL, out, 4, &n));
        ASSERT_EQ(n, 3);
        ASSERT_EQ(GRPC_SLICE_LENGTH(out[1].key), 11);
        ASSERT_TRUE(memcmp(GRPC_SLICE_START_PTR(out[1].value), TP, strlen(TP)) == 0);
        grpc_metadata_array arr = {.count = n, .capacity = 4, .metadata = out};
        otelprof_span_context back;
        ASSERT_OK(otelprof_grpc_metadata_extract(NULL, &arr, &back, NULL));
        ASSERT_MEM_EQ(back.trace_id, sc.trace_id, 16);
        ASSERT_MEM_EQ(back.span_id, sc.span_id, 8);
        ASSERT_EQ(otelprof_tracestate_count(&back.tracestate), 1);
        otelprof_grpc_metadata_release(out, n);
        /* an invalid context writes nothing */
        otelprof_span_context none;
        memset(&none, 0, sizeof none);
        n = 0;
        ASSERT_OK(otelprof_grpc_metadata_inject(NULL, &none, NULL, out, 4, &n));
        ASSERT_EQ(n, 0);
    }
    grpc_shutdown();
    printf("ok\n");
    return 0;
}
