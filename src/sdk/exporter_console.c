/* Console span exporter: one JSON object per span and line, with the field names and
 * value encodings of OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
 * ids as lowercase hex, 64-bit integers and timestamps as strings, enums as numbers.
 * Each line also carries the span's resource and instrumentation scope, so it stands alone.
 * Strings are escaped per RFC 8259; bytes that are not well-formed UTF-8 become U+FFFD. */
#include "sdk_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void jb_lit(struct jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void jb_fmt(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(struct jbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void jb_str(struct jbuf *b, const char *s, size_t n)
{
    jb_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = ots_utf8_seq(s + i, n - i);
            if (k) {
                jb_put(b, s + i, k);
                i += k;
            } else {
                jb_lit(b, "\\ufffd");
                i++;
            }
            continue;
        }
        switch (c) {
        case '"':
            jb_lit(b, "\\\"");
            break;
        case '\\':
            jb_lit(b, "\\\\");
            break;
        case '\n':
            jb_lit(b, "\\n");
            break;
        case '\r':
            jb_lit(b, "\\r");
            break;
        case '\t':
            jb_lit(b, "\\t");
            break;
        case '\b':
            jb_lit(b, "\\b");
            break;
        case '\f':
            jb_lit(b, "\\f");
            break;
        default:
            if (c < 0x20)
                jb_fmt(b, "\\u%04x", c);
            else
                jb_put(b, (const char *)&c, 1);
        }
        i++;
    }
    jb_put(b, "\"", 1);
}

static void jb_cstr(struct jbuf *b, const char *s)
{
    jb_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void jb_hex(struct jbuf *b, const uint8_t *id, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char out[40];
    out[0] = '"';
    for (size_t i = 0; i < n; i++) {
        out[1 + 2 * i] = digits[id[i] >> 4];
        out[2 + 2 * i] = digits[id[i] & 15];
    }
    out[1 + 2 * n] = '"';
    jb_put(b, out, 2 + 2 * n);
}

static void jb_double(struct jbuf *b, double d)
{
    /* proto3 JSON spells the non-finite values as strings. */
    if (isnan(d))
        jb_lit(b, "\"NaN\"");
    else if (isinf(d))
        jb_lit(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        jb_fmt(b, "%.17g", d);
}

static void jb_anyvalue_scalar(struct jbuf *b, otelprof_value_type t, const void *item)
{
    switch (t) {
    case OTELPROF_VALUE_STRING_ARRAY:
        jb_lit(b, "{\"stringValue\":");
        jb_cstr(b, *(const char *const *)item);
        break;
    case OTELPROF_VALUE_BOOL_ARRAY:
        jb_lit(b, *(const bool *)item ? "{\"boolValue\":true" : "{\"boolValue\":false");
        break;
    case OTELPROF_VALUE_INT_ARRAY:
        jb_fmt(b, "{\"intValue\":\"%lld\"", (long long)*(const int64_t *)item);
        break;
    default:
        jb_lit(b, "{\"doubleValue\":");
        jb_double(b, *(const double *)item);
        break;
    }
    jb_lit(b, "}");
}

static void jb_value(struct jbuf *b, const otelprof_value *v)
{
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        jb_lit(b, "{\"stringValue\":");
        jb_str(b, v->u.str.ptr ? v->u.str.ptr : "", ots_value_str_len(v));
        jb_lit(b, "}");
        return;
    case OTELPROF_VALUE_BOOL:
        jb_lit(b, v->u.b ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
        return;
    case OTELPROF_VALUE_INT:
        jb_fmt(b, "{\"intValue\":\"%lld\"}", (long long)v->u.i);
        return;
    case OTELPROF_VALUE_DOUBLE:
        jb_lit(b, "{\"doubleValue\":");
        jb_double(b, v->u.d);
        jb_lit(b, "}");
        return;
    case OTELPROF_VALUE_STRING_ARRAY:
    case OTELPROF_VALUE_BOOL_ARRAY:
    case OTELPROF_VALUE_INT_ARRAY:
    case OTELPROF_VALUE_DOUBLE_ARRAY: {
        size_t el = v->type == OTELPROF_VALUE_STRING_ARRAY ? sizeof(const char *)
                    : v->type == OTELPROF_VALUE_BOOL_ARRAY ? sizeof(bool)
                    : v->type == OTELPROF_VALUE_INT_ARRAY  ? sizeof(int64_t)
                                                           : sizeof(double);
        jb_lit(b, "{\"arrayValue\":{\"values\":[");
        const char *items = v->u.array.items;
        for (size_t i = 0; items && i < v->u.array.n; i++) {
            if (i)
                jb_lit(b, ",");
            jb_anyvalue_scalar(b, v->type, items + i * el);
        }
        jb_lit(b, "]}}");
        return;
    }
    }
    jb_lit(b, "{}");
}

static void jb_attrs(struct jbuf *b, const otelprof_kv *kvs, size_t n)
{
    jb_lit(b, "[");
    for (size_t i = 0; kvs && i < n; i++) {
        if (i)
            jb_lit(b, ",");
        jb_lit(b, "{\"key\":");
        jb_cstr(b, kvs[i].key);
        jb_lit(b, ",\"value\":");
        jb_value(b, &kvs[i].value);
        jb_lit(b, "}");
    }
    jb_lit(b, "]");
}

static void jb_tracestate(struct jbuf *b, const otelprof_tracestate *ts)
{
    char buf[OTELPROF_TRACESTATE_MAX_LEN + 1];
    size_t n = 0;
    if (otelprof_tracestate_format(ts, buf, sizeof buf, &n) != OTELPROF_OK)
        n = 0;
    jb_str(b, buf, n);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void jb_span(struct jbuf *b, const otelprof_span_data *s)
{
    jb_lit(b, "{\"traceId\":");
    jb_hex(b, s->context.trace_id, 16);
    jb_lit(b, ",\"spanId\":");
    jb_hex(b, s->context.span_id, 8);
    jb_lit(b, ",\"parentSpanId\":");
    if (all_zero(s->parent_span_id, 8))
        jb_lit(b, "\"\"");
    else
        jb_hex(b, s->parent_span_id, 8);
    jb_lit(b, ",\"traceState\":");
    jb_tracestate(b, &s->context.tracestate);
    /* OTLP Span.flags: W3C trace flags, plus whether the parent is known to be remote. */
    uint32_t flags = s->context.trace_flags | 0x100u | (s->parent_is_remote ? 0x200u : 0);
    jb_fmt(b, ",\"flags\":%u", flags);
    jb_lit(b, ",\"name\":");
    jb_cstr(b, s->name);
    jb_fmt(b, ",\"kind\":%d", (int)s->kind);
    jb_fmt(b, ",\"startTimeUnixNano\":\"%llu\"", (unsigned long long)s->start_time_ns);
    jb_fmt(b, ",\"endTimeUnixNano\":\"%llu\"", (unsigned long long)s->end_time_ns);
    jb_lit(b, ",\"attributes\":");
    jb_attrs(b, s->attrs, s->n_attrs);
    jb_fmt(b, ",\"droppedAttributesCount\":%u", s->dropped_attrs);
    jb_lit(b, ",\"events\":[");
    for (size_t i = 0; s->events && i < s->n_events; i++) {
        const otelprof_event_data *e = &s->events[i];
        if (i)
            jb_lit(b, ",");
        jb_fmt(b, "{\"timeUnixNano\":\"%llu\",\"name\":", (unsigned long long)e->time_ns);
        jb_cstr(b, e->name);
        jb_lit(b, ",\"attributes\":");
        jb_attrs(b, e->attrs, e->n_attrs);
        jb_fmt(b, ",\"droppedAttributesCount\":%u}", e->dropped_attrs);
    }
    jb_fmt(b, "],\"droppedEventsCount\":%u", s->dropped_events);
    jb_lit(b, ",\"links\":[");
    for (size_t i = 0; s->links && i < s->n_links; i++) {
        const otelprof_link_data *l = &s->links[i];
        if (i)
            jb_lit(b, ",");
        jb_lit(b, "{\"traceId\":");
        jb_hex(b, l->context.trace_id, 16);
        jb_lit(b, ",\"spanId\":");
        jb_hex(b, l->context.span_id, 8);
        jb_lit(b, ",\"traceState\":");
        jb_tracestate(b, &l->context.tracestate);
        jb_lit(b, ",\"attributes\":");
        jb_attrs(b, l->attrs, l->n_attrs);
        jb_fmt(b, ",\"droppedAttributesCount\":%u", l->dropped_attrs);
        jb_fmt(b, ",\"flags\":%u}",
               l->context.trace_flags | 0x100u | (l->context.is_remote ? 0x200u : 0));
    }
    jb_fmt(b, "],\"droppedLinksCount\":%u", s->dropped_links);
    jb_fmt(b, ",\"status\":{\"code\":%d,\"message\":", (int)s->status);
    jb_cstr(b, s->status_description);
    jb_lit(b, "}");
    size_t nres = 0;
    const otelprof_kv *res = otelprof_resource_attributes(s->resource, &nres);
    jb_lit(b, ",\"resource\":{\"attributes\":");
    jb_attrs(b, res, nres);
    jb_lit(b, "},\"scope\":{\"name\":");
    jb_cstr(b, s->scope ? s->scope->name : "");
    if (s->scope && s->scope->version) {
        jb_lit(b, ",\"version\":");
        jb_cstr(b, s->scope->version);
    }
    jb_lit(b, "}");
    if (s->scope && s->scope->schema_url) {
        jb_lit(b, ",\"schemaUrl\":");
        jb_cstr(b, s->scope->schema_url);
    }
    jb_lit(b, "}\n");
}

struct console {
    otelprof_span_exporter base;
    FILE *out;
    bool shut;
};

static otelprof_export_result ce_export(otelprof_span_exporter *e,
                                        const otelprof_span_data *const *spans, size_t n)
{
    struct console *c = (struct console *)e;
    if (c->shut)
        return OTELPROF_EXPORT_FAILURE;
    struct jbuf b = {0};
    for (size_t i = 0; i < n; i++)
        jb_span(&b, spans[i]);
    bool ok = !b.oom && (b.n == 0 || fwrite(b.p, 1, b.n, c->out) == b.n);
    ok = fflush(c->out) == 0 && ok;
    free(b.p);
    return ok ? OTELPROF_EXPORT_SUCCESS : OTELPROF_EXPORT_FAILURE;
}

static otelprof_status ce_flush(otelprof_span_exporter *e, uint32_t timeout_ms)
{
    (void)timeout_ms;
    return fflush(((struct console *)e)->out) == 0 ? OTELPROF_OK : OTELPROF_E_SYSTEM;
}

static otelprof_status ce_shutdown(otelprof_span_exporter *e, uint32_t timeout_ms)
{
    otelprof_status rc = ce_flush(e, timeout_ms);
    ((struct console *)e)->shut = true;
    return rc;
}

static void ce_free(otelprof_span_exporter *e)
{
    free(e); /* the stream belongs to the caller */
}

static const otelprof_span_exporter_ops console_ops = {
    .sz = sizeof(otelprof_span_exporter_ops),
    .export_spans = ce_export,
    .force_flush = ce_flush,
    .shutdown = ce_shutdown,
    .free = ce_free,
};

otelprof_span_exporter *otelprof_console_exporter_new(FILE *out)
{
    struct console *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.ops = &console_ops;
    c->out = out ? out : stdout;
    return &c->base;
}
