/* libFuzzer target: otelprof_traceparent_parse / _format.
 * Invariants: a failed parse leaves a zeroed context; a successful one gives a valid
 * context whose version-00 rendering repeats the input's id and flag characters, and
 * parse(format(x)) == x. */
#include "fuzz_common.h"

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    otelprof_span_context a, b;
    otelprof_status st = otelprof_traceparent_parse(s, size, &a);
    if (st != OTELPROF_OK) {
        static const otelprof_span_context zero;
        CHECK(st == OTELPROF_E_PARSE || st == OTELPROF_E_INVALID_ID);
        CHECK(memcmp(&a, &zero, sizeof a) == 0);
        return 0;
    }
    CHECK(otelprof_span_context_is_valid(&a));
    CHECK(a.is_remote);
    CHECK(otelprof_tracestate_count(&a.tracestate) == 0);

    /* What the parser accepted, without the surrounding whitespace. */
    size_t bgn = 0, end = size;
    while (bgn < end && ows(s[bgn]))
        bgn++;
    while (end > bgn && ows(s[end - 1]))
        end--;
    const char *t = s + bgn;
    size_t n = end - bgn;
    CHECK(n >= OTELPROF_TRACEPARENT_LEN);
    CHECK(!(t[0] == 'f' && t[1] == 'f'));
    if (t[0] == '0' && t[1] == '0')
        CHECK(n == OTELPROF_TRACEPARENT_LEN);
    else
        CHECK(n == OTELPROF_TRACEPARENT_LEN || t[OTELPROF_TRACEPARENT_LEN] == '-');

    char out[OTELPROF_TRACEPARENT_SIZE];
    CHECK(otelprof_traceparent_format(&a, out) == OTELPROF_OK);
    CHECK(strlen(out) == OTELPROF_TRACEPARENT_LEN);
    CHECK(out[0] == '0' && out[1] == '0');
    /* Strict lowercase hex in, the same text out. */
    CHECK(memcmp(out + 2, t + 2, OTELPROF_TRACEPARENT_LEN - 2) == 0);
    CHECK(otelprof_span_context_is_sampled(&a) == ((a.trace_flags & 1) != 0));

    CHECK(otelprof_traceparent_parse(out, OTELPROF_TRACEPARENT_LEN, &b) == OTELPROF_OK);
    CHECK(memcmp(a.trace_id, b.trace_id, sizeof a.trace_id) == 0);
    CHECK(memcmp(a.span_id, b.span_id, sizeof a.span_id) == 0);
    CHECK(a.trace_flags == b.trace_flags);
    return 0;
}
