/* Built-in samplers (trace SDK spec, "Built-in samplers") and OTEL_TRACES_SAMPLER.
 *
 * TraceIdRatioBased follows the current spec (consistent probability sampling,
 * tracestate-probability-sampling.md): the randomness R is the trace id's right-most 56
 * bits (or the explicit `rv` in the `ot` tracestate entry), the rejection threshold is
 * T = 2^56 - round(ratio * 2^56), and a span is sampled when R >= T. Sampled spans get
 * `th:T` in the `ot` entry so that consumers can count them. The older "compare the first
 * or last 8 bytes" variants are not used: they are not consistent across SDKs, while the
 * 56-bit rule is what W3C Trace Context Level 2's random flag guarantees. */
#define _GNU_SOURCE
#include "sdk_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TWO56 (UINT64_C(1) << 56)

static const char *sampler_description(const otelprof_sampler *s)
{
    if (OTS_HAS_OP(s, otelprof_sampler_ops, description)) {
        const char *d = s->ops->description(s);
        if (d)
            return d;
    }
    return "UnknownSampler";
}

otelprof_sampling_decision otelprof_sampler_should_sample(otelprof_sampler *s,
                                                          const otelprof_sampling_params *params,
                                                          otelprof_tracestate *tracestate)
{
    static const uint8_t zero_id[16];
    /* Only the fields the caller's sz covers; the rest stay zero (NULL links, ...). */
    otelprof_sampling_params p;
    memset(&p, 0, sizeof p);
    if (params && params->sz >= sizeof(size_t))
        memcpy(&p, params, params->sz < sizeof p ? params->sz : sizeof p);
    p.sz = sizeof p;
    if (!p.trace_id)
        p.trace_id = zero_id;
    if (!p.name)
        p.name = "";
    if (p.parent && !otelprof_span_context_is_valid(p.parent))
        p.parent = NULL;
    if (!p.attrs)
        p.n_attrs = 0;
    if (!p.links)
        p.n_links = 0;
    if (OTS_HAS_OP(s, otelprof_sampler_ops, should_sample_v2))
        return s->ops->should_sample_v2(s, &p, tracestate);
    if (OTS_HAS_OP(s, otelprof_sampler_ops, should_sample))
        return s->ops->should_sample(s, p.parent, p.trace_id, p.name, p.kind, p.attrs, p.n_attrs,
                                     tracestate);
    return OTELPROF_SAMPLING_RECORD_AND_SAMPLE;
}

/* The 0.1 entry point of a built-in sampler: the same decision without links. */
static otelprof_sampling_decision v1_to_v2(otelprof_sampler *s, const otelprof_span_context *parent,
                                           const uint8_t trace_id[16], const char *name,
                                           otelprof_span_kind kind, const otelprof_kv *attrs,
                                           size_t n_attrs, otelprof_tracestate *ts)
{
    otelprof_sampling_params p = {
        .sz = sizeof p,
        .parent = parent,
        .trace_id = trace_id,
        .name = name,
        .kind = kind,
        .attrs = attrs,
        .n_attrs = n_attrs,
    };
    return otelprof_sampler_should_sample(s, &p, ts);
}

void otelprof_sampler_free(otelprof_sampler *s)
{
    if (OTS_HAS_OP(s, otelprof_sampler_ops, free))
        s->ops->free(s);
}

/* ---- AlwaysOn / AlwaysOff: static instances ---- */

/* Built-in samplers ignore the links, as the spec's built-in samplers do. */
static otelprof_sampling_decision on_sample(otelprof_sampler *s, const otelprof_sampling_params *p,
                                            otelprof_tracestate *ts)
{
    (void)s, (void)p, (void)ts;
    return OTELPROF_SAMPLING_RECORD_AND_SAMPLE;
}

static otelprof_sampling_decision off_sample(otelprof_sampler *s, const otelprof_sampling_params *p,
                                             otelprof_tracestate *ts)
{
    (void)s, (void)p, (void)ts;
    return OTELPROF_SAMPLING_DROP;
}

static const char *on_desc(const otelprof_sampler *s)
{
    (void)s;
    return "AlwaysOnSampler";
}

static const char *off_desc(const otelprof_sampler *s)
{
    (void)s;
    return "AlwaysOffSampler";
}

static void static_free(otelprof_sampler *s)
{
    (void)s;
}

static const otelprof_sampler_ops on_ops = {.sz = sizeof(otelprof_sampler_ops),
                                            .should_sample = v1_to_v2,
                                            .description = on_desc,
                                            .free = static_free,
                                            .should_sample_v2 = on_sample};
static const otelprof_sampler_ops off_ops = {.sz = sizeof(otelprof_sampler_ops),
                                             .should_sample = v1_to_v2,
                                             .description = off_desc,
                                             .free = static_free,
                                             .should_sample_v2 = off_sample};
static otelprof_sampler always_on = {&on_ops};
static otelprof_sampler always_off = {&off_ops};

otelprof_sampler *otelprof_sampler_always_on(void)
{
    return &always_on;
}

otelprof_sampler *otelprof_sampler_always_off(void)
{
    return &always_off;
}

/* ---- the `ot` tracestate entry: "k1:v1;k2:v2" ---- */

const char *ots_ot_subkey(const otelprof_tracestate *ts, const char *key, size_t *len)
{
    size_t vlen;
    const char *v = otelprof_tracestate_get(ts, "ot", 2, &vlen);
    size_t klen = strlen(key);
    while (v && vlen) {
        const char *semi = memchr(v, ';', vlen);
        size_t mlen = semi ? (size_t)(semi - v) : vlen;
        if (mlen > klen && memcmp(v, key, klen) == 0 && v[klen] == ':') {
            *len = mlen - klen - 1;
            return v + klen + 1;
        }
        if (!semi)
            break;
        vlen -= mlen + 1;
        v = semi + 1;
    }
    return NULL;
}

/* Replace (or, with th == NULL, remove) the th sub-key, keeping the others in order. */
static void ot_set_th(otelprof_tracestate *ts, const char *th)
{
    size_t vlen = 0;
    const char *v = otelprof_tracestate_get(ts, "ot", 2, &vlen);
    if (!v && !th)
        return;
    char out[OTELPROF_TRACESTATE_VALUE_MAX + 1];
    size_t o = 0;
    if (th)
        o = (size_t)snprintf(out, sizeof out, "th:%s", th);
    while (v && vlen) {
        const char *semi = memchr(v, ';', vlen);
        size_t mlen = semi ? (size_t)(semi - v) : vlen;
        bool is_th = mlen >= 3 && memcmp(v, "th:", 3) == 0;
        if (!is_th && mlen && o + 1 + mlen < sizeof out) {
            if (o)
                out[o++] = ';';
            memcpy(out + o, v, mlen);
            o += mlen;
        }
        if (!semi)
            break;
        vlen -= mlen + 1;
        v = semi + 1;
    }
    if (o)
        (void)otelprof_tracestate_set(ts, "ot", 2, out, o);
    else
        (void)otelprof_tracestate_remove(ts, "ot", 2);
}

/* ---- TraceIdRatioBased ---- */

struct ratio_sampler {
    otelprof_sampler base;
    double ratio;
    uint64_t threshold; /* 2^56: never sample */
    char th[15];        /* threshold as the `th` sub-key writes it */
    char desc[96];
    atomic_bool warned_not_random;
};

static bool parse_rv(const char *s, size_t n, uint64_t *out)
{
    if (n != 14)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

static otelprof_sampling_decision
ratio_sample(otelprof_sampler *s, const otelprof_sampling_params *params, otelprof_tracestate *ts)
{
    const otelprof_span_context *parent = params->parent;
    const uint8_t *trace_id = params->trace_id;
    struct ratio_sampler *r = (struct ratio_sampler *)s;
    uint64_t rv = 0;
    size_t rvlen;
    const char *rvs = ts ? ots_ot_subkey(ts, "rv", &rvlen) : NULL;
    if (!rvs || !parse_rv(rvs, rvlen, &rv)) {
        for (int i = 9; i < 16; i++)
            rv = rv << 8 | trace_id[i];
        if (parent && otelprof_span_context_is_valid(parent) &&
            !(parent->trace_flags & OTELPROF_FLAG_RANDOM_TRACE_ID) &&
            !atomic_exchange_explicit(&r->warned_not_random, true, memory_order_relaxed))
            ots_log(OTELPROF_LOG_WARN,
                    "The TraceIdRatioBased sampler is presuming TraceIDs are random and expects "
                    "the Trace random flag to be set in confirmation. Please upgrade your "
                    "caller(s) to use W3C Trace Context Level 2.");
    }
    bool sampled = rv >= r->threshold;
    if (ts)
        ot_set_th(ts, sampled ? r->th : NULL);
    return sampled ? OTELPROF_SAMPLING_RECORD_AND_SAMPLE : OTELPROF_SAMPLING_DROP;
}

static const char *ratio_desc(const otelprof_sampler *s)
{
    return ((const struct ratio_sampler *)s)->desc;
}

static void heap_free(otelprof_sampler *s)
{
    free(s);
}

static const otelprof_sampler_ops ratio_ops = {.sz = sizeof(otelprof_sampler_ops),
                                               .should_sample = v1_to_v2,
                                               .description = ratio_desc,
                                               .free = heap_free,
                                               .should_sample_v2 = ratio_sample};

/* The shortest fixed-point rendering that reads back as the same double, at least one
 * decimal: "0.25", "1.0", "0.0001". */
static void format_ratio(char *out, size_t size, double ratio)
{
    for (int prec = 1; prec <= 60; prec++) {
        snprintf(out, size, "%.*f", prec, ratio);
        if (strtod(out, NULL) == ratio)
            return;
    }
}

otelprof_sampler *otelprof_sampler_traceidratio(double ratio)
{
    if (!(ratio >= 0.0 && ratio <= 1.0)) /* also rejects NaN */
        return NULL;
    struct ratio_sampler *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base.ops = &ratio_ops;
    r->ratio = ratio;
    /* ratio * 2^56 is exact in binary floating point; only the rounding loses anything
     * (done by hand: libm is not a dependency). */
    uint64_t keep = (uint64_t)(ratio * 72057594037927936.0 + 0.5);
    r->threshold = TWO56 - keep;
    /* th: 14 hex digits, trailing zeros dropped ("0" for T = 0). */
    snprintf(r->th, sizeof r->th, "%014llx", (unsigned long long)(r->threshold & (TWO56 - 1)));
    size_t n = strlen(r->th);
    while (n > 1 && r->th[n - 1] == '0')
        r->th[--n] = '\0';
    char num[72];
    format_ratio(num, sizeof num, ratio);
    snprintf(r->desc, sizeof r->desc, "TraceIdRatioBased{%s}", num);
    atomic_init(&r->warned_not_random, false);
    return &r->base;
}

/* ---- ParentBased ---- */

struct pb_sampler {
    otelprof_sampler base;
    otelprof_sampler *root, *remote_sampled, *remote_not_sampled, *local_sampled,
        *local_not_sampled;
    char *desc;
};

static otelprof_sampling_decision
pb_sample(otelprof_sampler *s, const otelprof_sampling_params *params, otelprof_tracestate *ts)
{
    const otelprof_span_context *parent = params->parent;
    struct pb_sampler *pb = (struct pb_sampler *)s;
    otelprof_sampler *d;
    if (!parent || !otelprof_span_context_is_valid(parent))
        d = pb->root;
    else if (parent->is_remote)
        d = otelprof_span_context_is_sampled(parent) ? pb->remote_sampled : pb->remote_not_sampled;
    else
        d = otelprof_span_context_is_sampled(parent) ? pb->local_sampled : pb->local_not_sampled;
    /* The delegate gets everything, links included: a user sampler inside ParentBased
     * may decide on them even though ParentBased itself does not. */
    return otelprof_sampler_should_sample(d, params, ts);
}

static const char *pb_desc(const otelprof_sampler *s)
{
    return ((const struct pb_sampler *)s)->desc;
}

static void pb_free(otelprof_sampler *s)
{
    struct pb_sampler *pb = (struct pb_sampler *)s;
    otelprof_sampler_free(pb->root);
    otelprof_sampler_free(pb->remote_sampled);
    otelprof_sampler_free(pb->remote_not_sampled);
    otelprof_sampler_free(pb->local_sampled);
    otelprof_sampler_free(pb->local_not_sampled);
    free(pb->desc);
    free(pb);
}

static const otelprof_sampler_ops pb_ops = {.sz = sizeof(otelprof_sampler_ops),
                                            .should_sample = v1_to_v2,
                                            .description = pb_desc,
                                            .free = pb_free,
                                            .should_sample_v2 = pb_sample};

otelprof_sampler *otelprof_sampler_parentbased(otelprof_sampler *root,
                                               otelprof_sampler *remote_sampled,
                                               otelprof_sampler *remote_not_sampled,
                                               otelprof_sampler *local_sampled,
                                               otelprof_sampler *local_not_sampled)
{
    struct pb_sampler *pb = root ? calloc(1, sizeof *pb) : NULL;
    if (pb) {
        pb->base.ops = &pb_ops;
        pb->root = root;
        pb->remote_sampled = remote_sampled ? remote_sampled : &always_on;
        pb->remote_not_sampled = remote_not_sampled ? remote_not_sampled : &always_off;
        pb->local_sampled = local_sampled ? local_sampled : &always_on;
        pb->local_not_sampled = local_not_sampled ? local_not_sampled : &always_off;
        const char *fmt = "ParentBased{root:%s,remoteParentSampled:%s,remoteParentNotSampled:%s,"
                          "localParentSampled:%s,localParentNotSampled:%s}";
        const char *a = sampler_description(pb->root), *b = sampler_description(pb->remote_sampled),
                   *c = sampler_description(pb->remote_not_sampled),
                   *d = sampler_description(pb->local_sampled),
                   *e = sampler_description(pb->local_not_sampled);
        int n = snprintf(NULL, 0, fmt, a, b, c, d, e);
        pb->desc = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (pb->desc) {
            snprintf(pb->desc, (size_t)n + 1, fmt, a, b, c, d, e);
            return &pb->base;
        }
        free(pb);
    }
    /* Ownership was passed in: release the delegates on failure too. */
    otelprof_sampler_free(root);
    otelprof_sampler_free(remote_sampled);
    otelprof_sampler_free(remote_not_sampled);
    otelprof_sampler_free(local_sampled);
    otelprof_sampler_free(local_not_sampled);
    return NULL;
}

/* ---- OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG ---- */

static double env_ratio(void)
{
    const char *arg = ots_env("OTEL_TRACES_SAMPLER_ARG");
    if (!arg)
        return 1.0;
    char *end;
    double r = strtod(arg, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == arg || *end || !(r >= 0.0 && r <= 1.0)) {
        ots_log(OTELPROF_LOG_WARN,
                "OTEL_TRACES_SAMPLER_ARG=\"%s\" is not a ratio in [0, 1]; using 1.0", arg);
        return 1.0;
    }
    return r;
}

otelprof_sampler *otelprof_sampler_from_env(void)
{
    const char *v = ots_env("OTEL_TRACES_SAMPLER");
    size_t n = 0;
    if (v) {
        while (*v == ' ' || *v == '\t')
            v++;
        n = strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
    }
    if (!v || ots_word_eq(v, n, "parentbased_always_on"))
        return otelprof_sampler_parentbased(&always_on, NULL, NULL, NULL, NULL);
    if (ots_word_eq(v, n, "always_on"))
        return &always_on;
    if (ots_word_eq(v, n, "always_off"))
        return &always_off;
    if (ots_word_eq(v, n, "traceidratio"))
        return otelprof_sampler_traceidratio(env_ratio());
    if (ots_word_eq(v, n, "parentbased_always_off"))
        return otelprof_sampler_parentbased(&always_off, NULL, NULL, NULL, NULL);
    if (ots_word_eq(v, n, "parentbased_traceidratio")) {
        otelprof_sampler *r = otelprof_sampler_traceidratio(env_ratio());
        return r ? otelprof_sampler_parentbased(r, NULL, NULL, NULL, NULL) : NULL;
    }
    ots_log(OTELPROF_LOG_WARN,
            "OTEL_TRACES_SAMPLER=\"%.*s\" is not supported (always_on, always_off, traceidratio, "
            "parentbased_always_on, parentbased_always_off, parentbased_traceidratio); using "
            "parentbased_always_on",
            (int)n, v);
    return otelprof_sampler_parentbased(&always_on, NULL, NULL, NULL, NULL);
}
