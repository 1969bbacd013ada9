/* Propagator selection (OTEL_PROPAGATORS) and extract/inject through a carrier. */
#include "prop_internal.h"

#include "../core/internal.h"

#include <stddef.h>
#include <stdlib.h>

#define DEFAULT_MASK (OTELPROF_PROPAGATOR_TRACECONTEXT | OTELPROF_PROPAGATOR_BAGGAGE)

/* Callbacks past the caller's sz belong to a newer struct than the caller was built with;
 * treat them as absent. */
#define CARRIER_HAS(c, field)                                                                      \
    ((c)->sz >= offsetof(otelprof_carrier, field) + sizeof((c)->field) && (c)->field)

/* Names OpenTelemetry defines that otelprof does not implement: warned about by name so
 * the message says "not supported" rather than "unknown". */
static const char *const unsupported[] = {"b3", "b3multi", "jaeger", "xray", "ottrace"};

static bool name_is(const char *s, size_t n, const char *lit)
{
    return prop_name_eq(s, n, lit, strlen(lit));
}

otelprof_status otelprof_propagators_parse(otelprof_propagators *out, const char *list, size_t len)
{
    if (!out)
        return OTELPROF_E_INVAL;
    size_t n = prop_len(list, len);
    uint32_t mask = 0;
    bool none = false, any = false;
    for (size_t pos = 0; list && pos <= n;) {
        size_t end = pos;
        while (end < n && list[end] != ',')
            end++;
        size_t b = pos, e = end;
        pos = end + 1;
        prop_trim(list, &b, &e);
        if (b == e)
            continue;
        any = true;
        const char *p = list + b;
        size_t pn = e - b;
        /* Keep log lines bounded whatever the variable holds. */
        int shown = pn > 64 ? 64 : (int)pn;
        if (name_is(p, pn, "tracecontext")) {
            mask |= OTELPROF_PROPAGATOR_TRACECONTEXT;
        } else if (name_is(p, pn, "baggage")) {
            mask |= OTELPROF_PROPAGATOR_BAGGAGE;
        } else if (name_is(p, pn, "none")) {
            none = true;
        } else {
            bool known = false;
            for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
                known |= name_is(p, pn, unsupported[i]);
            op_log(OTELPROF_LOG_WARN, "OTEL_PROPAGATORS: %s propagator \"%.*s\" ignored",
                   known ? "unsupported" : "unknown", shown, p);
        }
    }
    if (none && mask)
        op_log(OTELPROF_LOG_WARN, "OTEL_PROPAGATORS: \"none\" given with other propagators; "
                                  "none is used");
    out->mask = !any ? DEFAULT_MASK : none ? 0 : mask;
    return OTELPROF_OK;
}

otelprof_status otelprof_propagators_from_env(otelprof_propagators *out)
{
    return otelprof_propagators_parse(out, getenv("OTEL_PROPAGATORS"), OTELPROF_NUL_TERMINATED);
}

otelprof_status otelprof_propagation_extract(const otelprof_propagators *props,
                                             const otelprof_carrier *carrier,
                                             otelprof_span_context *out, otelprof_baggage *bag_out)
{
    if (!props || !carrier)
        return OTELPROF_E_INVAL;
    bool tc = (props->mask & OTELPROF_PROPAGATOR_TRACECONTEXT) && out;
    bool bg = (props->mask & OTELPROF_PROPAGATOR_BAGGAGE) && bag_out;
    if ((tc || bg) && !(CARRIER_HAS(carrier, count) && CARRIER_HAS(carrier, get)))
        return OTELPROF_E_INVAL;
    void *u = carrier->user;

    if (out)
        memset(out, 0, sizeof *out);
    /* Exactly one traceparent field: two are ambiguous, and the spec says restart. */
    if (tc && carrier->count(u, "traceparent", 11) == 1) {
        size_t vlen = 0;
        const char *v = carrier->get(u, "traceparent", 11, 0, &vlen);
        if (v && otelprof_traceparent_parse(v, vlen, out) == OTELPROF_OK) {
            size_t nts = carrier->count(u, "tracestate", 10);
            /* A bad tracestate only empties the tracestate; the parent stays valid. None
             * (the usual case): the parse left it empty already. */
            if (nts)
                (void)prop_tracestate_from_carrier(&out->tracestate, carrier, nts);
        }
    }

    if (bag_out)
        otelprof_baggage_clear(bag_out);
    if (bg) {
        size_t nb = carrier->count(u, "baggage", 7);
        for (size_t i = 0; i < nb; i++) {
            size_t vlen = 0;
            const char *v = carrier->get(u, "baggage", 7, i, &vlen);
            /* Malformed or excess members are dropped inside; nothing to report here. */
            if (v)
                (void)otelprof_baggage_parse(bag_out, v, vlen);
        }
    }
    return OTELPROF_OK;
}

otelprof_status otelprof_propagation_inject(const otelprof_propagators *props,
                                            const otelprof_span_context *ctx,
                                            const otelprof_baggage *bag,
                                            const otelprof_carrier *carrier)
{
    if (!props || !carrier || !CARRIER_HAS(carrier, set))
        return OTELPROF_E_INVAL;
    void *u = carrier->user;
    otelprof_status first = OTELPROF_OK, st;

    if ((props->mask & OTELPROF_PROPAGATOR_TRACECONTEXT) && otelprof_span_context_is_valid(ctx)) {
        char tp[OTELPROF_TRACEPARENT_SIZE];
        otelprof_traceparent_format(ctx, tp);
        st = carrier->set(u, "traceparent", 11, tp, OTELPROF_TRACEPARENT_LEN);
        if (first == OTELPROF_OK)
            first = st;
        if (ctx->tracestate.count) {
            char ts[OTELPROF_TRACESTATE_MAX_LEN + 1];
            size_t n = 0;
            st = otelprof_tracestate_format(&ctx->tracestate, ts, sizeof ts, &n);
            if (st == OTELPROF_OK)
                st = carrier->set(u, "tracestate", 10, ts, n);
            if (first == OTELPROF_OK)
                first = st;
        }
    }
    if ((props->mask & OTELPROF_PROPAGATOR_BAGGAGE) && bag && bag->count) {
        char b[OTELPROF_BAGGAGE_MAX_LEN + 1];
        size_t n = 0;
        st = otelprof_baggage_format(bag, b, sizeof b, &n);
        if (st == OTELPROF_OK)
            st = carrier->set(u, "baggage", 7, b, n);
        if (first == OTELPROF_OK)
            first = st;
    }
    return first;
}
