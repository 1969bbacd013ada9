/* W3C Trace Context Level 2: the traceparent header and the span context helpers. */
#include "prop_internal.h"

/* Lowercase hex only: the spec forbids uppercase, so 'A'..'F' are not digits here. Tables
 * rather than comparisons: every traced gRPC/HTTP request decodes 26 bytes. */
static const uint8_t hex_val[256] = {
    ['0'] = 0, ['1'] = 1, ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,  ['6'] = 6,  ['7'] = 7,
    ['8'] = 8, ['9'] = 9, ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};
/* hex_val is 0 for non-digits too: digit_ok tells them from '0'. */
static const uint8_t digit_ok[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
};

static bool hex_decode(const char *s, size_t nbytes, uint8_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned ok = 1;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned char h = u[2 * i], l = u[2 * i + 1];
        ok &= digit_ok[h] & digit_ok[l];
        out[i] = (uint8_t)(hex_val[h] << 4 | hex_val[l]);
    }
    return ok != 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

bool otelprof_span_context_is_valid(const otelprof_span_context *ctx)
{
    return ctx && !all_zero(ctx->trace_id, sizeof ctx->trace_id) &&
           !all_zero(ctx->span_id, sizeof ctx->span_id);
}

bool otelprof_span_context_is_sampled(const otelprof_span_context *ctx)
{
    return ctx && (ctx->trace_flags & OTELPROF_FLAG_SAMPLED) != 0;
}

/* Field positions of version 00, which every later version keeps. */
enum {
    TP_VERSION = 0,
    TP_TRACE_ID = 3,
    TP_PARENT_ID = 36,
    TP_FLAGS = 53,
};

otelprof_status otelprof_traceparent_parse(const char *s, size_t len, otelprof_span_context *out)
{
    if (!out)
        return OTELPROF_E_INVAL;
    /* Zeroed first so that every failure leaves "no parent" behind. */
    memset(out, 0, sizeof *out);
    if (!s)
        return len == 0 || len == OTELPROF_NUL_TERMINATED ? OTELPROF_E_PARSE : OTELPROF_E_INVAL;
    size_t b = 0, e = prop_len(s, len);
    prop_trim(s, &b, &e);
    const char *p = s + b;
    size_t n = e - b;
    if (n < OTELPROF_TRACEPARENT_LEN)
        return OTELPROF_E_PARSE;

    uint8_t version, flags;
    uint8_t trace_id[16], span_id[8];
    if (!hex_decode(p + TP_VERSION, 1, &version) || version == 0xff)
        return OTELPROF_E_PARSE;
    if (p[TP_TRACE_ID - 1] != '-' || p[TP_PARENT_ID - 1] != '-' || p[TP_FLAGS - 1] != '-')
        return OTELPROF_E_PARSE;
    if (!hex_decode(p + TP_TRACE_ID, 16, trace_id) || !hex_decode(p + TP_PARENT_ID, 8, span_id) ||
        !hex_decode(p + TP_FLAGS, 1, &flags))
        return OTELPROF_E_PARSE;
    if (version == 0) {
        /* Version 00 has nothing after the flags. */
        if (n != OTELPROF_TRACEPARENT_LEN)
            return OTELPROF_E_PARSE;
    } else if (n > OTELPROF_TRACEPARENT_LEN && p[OTELPROF_TRACEPARENT_LEN] != '-') {
        /* A later version may append fields, but only after a '-'. */
        return OTELPROF_E_PARSE;
    }
    if (all_zero(trace_id, sizeof trace_id) || all_zero(span_id, sizeof span_id))
        return OTELPROF_E_INVALID_ID;

    memcpy(out->trace_id, trace_id, sizeof trace_id);
    memcpy(out->span_id, span_id, sizeof span_id);
    /* The byte is kept whole (unknown bits are propagated); readers test bits by mask. */
    out->trace_flags = flags;
    out->is_remote = true;
    return OTELPROF_OK;
}

static char *hex_encode(char *o, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *o++ = digits[b[i] >> 4];
        *o++ = digits[b[i] & 0xf];
    }
    return o;
}

otelprof_status otelprof_traceparent_format(const otelprof_span_context *ctx,
                                            char out[OTELPROF_TRACEPARENT_SIZE])
{
    if (!out)
        return OTELPROF_E_INVAL;
    out[0] = '\0';
    if (!ctx)
        return OTELPROF_E_INVAL;
    if (!otelprof_span_context_is_valid(ctx))
        return OTELPROF_E_INVALID_ID;
    static const uint8_t version = 0;
    char *o = hex_encode(out, &version, 1);
    *o++ = '-';
    o = hex_encode(o, ctx->trace_id, sizeof ctx->trace_id);
    *o++ = '-';
    o = hex_encode(o, ctx->span_id, sizeof ctx->span_id);
    *o++ = '-';
    o = hex_encode(o, &ctx->trace_flags, 1);
    *o = '\0';
    return OTELPROF_OK;
}
