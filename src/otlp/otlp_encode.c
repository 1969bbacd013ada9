/* Protobuf encoding of ExportTraceServiceRequest, by hand (no protobuf library).
 *
 * Schema (opentelemetry-proto; field numbers checked against trace.proto, common.proto,
 * resource.proto and collector/trace/v1/trace_service.proto):
 *   ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
 *   ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2;
 *                   string schema_url = 3; }
 *   Resource      { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
 *   ScopeSpans    { InstrumentationScope scope = 1; repeated Span spans = 2;
 *                   string schema_url = 3; }
 *   InstrumentationScope { string name = 1; string version = 2; ... }
 *   Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
 *          bytes parent_span_id = 4; string name = 5; SpanKind kind = 6;
 *          fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
 *          repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
 *          repeated Event events = 11; uint32 dropped_events_count = 12;
 *          repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
 *          fixed32 flags = 16; }
 *   Span.Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3;
 *                uint32 dropped_attributes_count = 4; }
 *   Span.Link  { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
 *                repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5;
 *                fixed32 flags = 6; }
 *   Status     { string message = 2; StatusCode code = 3; }
 *   KeyValue   { string key = 1; AnyValue value = 2; }
 *   AnyValue   { oneof value { string string_value = 1; bool bool_value = 2;
 *                int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5;
 *                KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
 *   ArrayValue { repeated AnyValue values = 1; }
 *   SpanFlags: 0xFF trace flags, 0x100 CONTEXT_HAS_IS_REMOTE, 0x200 CONTEXT_IS_REMOTE.
 *   ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
 *   ExportTracePartialSuccess  { int64 rejected_spans = 1; string error_message = 2; }
 *
 * Everything is written backwards (last field first) into one buffer, so a message's
 * length is known when its prefix is written. Fields come out in ascending order. Proto3
 * defaults (0, empty) are left out, except inside the AnyValue oneof, where presence
 * matters.
 */
#include "otlp_internal.h"

#include <stdlib.h>
#include <string.h>

enum {
    SPAN_FLAGS_TRACE_FLAGS_MASK = 0xFF,
    SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK = 0x100,
    SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK = 0x200,
};

/* Upper bound of a length prefix plus its one-byte tag (lengths stay below 2^35). */
#define LEN_OVERHEAD 6u

/* ---------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------- */

void op_pbw_init(op_pbw *w, size_t limit)
{
    memset(w, 0, sizeof *w);
    w->limit = limit;
}

void op_pbw_reset(op_pbw *w)
{
    w->pos = w->cap;
    w->overflow = false;
    w->nomem = false;
}

void op_pbw_rollback(op_pbw *w, size_t len)
{
    w->pos = w->cap - len;
    w->overflow = false;
}

void op_pbw_free(op_pbw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->cap = w->pos = 0;
}

/* Make room for n more bytes in front of pos, within the limit. */
static bool pbw_room(op_pbw *w, size_t n)
{
    if (w->overflow || w->nomem)
        return false;
    size_t used = w->cap - w->pos;
    if (used > w->limit || n > w->limit - used) {
        w->overflow = true;
        return false;
    }
    if (w->pos >= n)
        return true;
    size_t need = used + n;
    size_t ncap = w->cap ? w->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > w->limit)
        ncap = w->limit; /* still >= need */
    uint8_t *nb = malloc(ncap);
    if (!nb) {
        w->nomem = true;
        return false;
    }
    if (used)
        memcpy(nb + ncap - used, w->buf + w->pos, used);
    free(w->buf);
    w->buf = nb;
    w->cap = ncap;
    w->pos = ncap - used;
    return true;
}

void op_pbw_bytes(op_pbw *w, const void *p, size_t n)
{
    if (n == 0 || !pbw_room(w, n))
        return;
    w->pos -= n;
    memcpy(w->buf + w->pos, p, n);
}

size_t op_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void op_pbw_varint(op_pbw *w, uint64_t v)
{
    /* Fast path, most of an encoding's calls (tags and lengths): room for the longest
     * varint is there, so write it in place instead of through pbw_room and memcpy. */
    size_t used = w->cap - w->pos;
    if (w->pos >= 10 && !w->overflow && !w->nomem && used <= w->limit && w->limit - used >= 10) {
        size_t n = op_pb_varint_size(v);
        uint8_t *o = w->buf + w->pos - n;
        w->pos -= n;
        while (v >= 0x80) {
            *o++ = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        *o = (uint8_t)v;
        return;
    }
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    op_pbw_bytes(w, tmp, n);
}

void op_pbw_tag(op_pbw *w, uint32_t field, unsigned wire_type)
{
    op_pbw_varint(w, ((uint64_t)field << 3) | wire_type);
}

void op_pbw_close_len(op_pbw *w, uint32_t field, size_t mark)
{
    op_pbw_varint(w, op_pbw_len(w) - mark);
    op_pbw_tag(w, field, OP_PB_LEN);
}

static void pbw_fixed64(op_pbw *w, uint32_t field, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    op_pbw_bytes(w, b, 8);
    op_pbw_tag(w, field, OP_PB_I64);
}

static void pbw_fixed32(op_pbw *w, uint32_t field, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    op_pbw_bytes(w, b, 4);
    op_pbw_tag(w, field, OP_PB_I32);
}

static void pbw_uint(op_pbw *w, uint32_t field, uint64_t v)
{
    op_pbw_varint(w, v);
    op_pbw_tag(w, field, OP_PB_VARINT);
}

/* A uint32 field, left out when 0 (proto3 default). */
static void pbw_count(op_pbw *w, uint32_t field, uint32_t v)
{
    if (v)
        pbw_uint(w, field, v);
}

static void pbw_raw_bytes_field(op_pbw *w, uint32_t field, const uint8_t *p, size_t n)
{
    op_pbw_bytes(w, p, n);
    op_pbw_varint(w, n);
    op_pbw_tag(w, field, OP_PB_LEN);
}

/* A string field, sanitised to UTF-8. `always`: also when empty (oneof members). */
static void pbw_string(op_pbw *w, uint32_t field, const char *s, size_t len, bool always)
{
    if (!s)
        len = 0;
    else if (len == OTELPROF_NUL_TERMINATED)
        len = strlen(s);
    if (len == 0 && !always)
        return;
    size_t out = len ? op_utf8_sanitized_len((const uint8_t *)s, len) : 0;
    if (out == len) {
        op_pbw_bytes(w, s, len);
    } else if (pbw_room(w, out)) {
        w->pos -= out;
        op_utf8_sanitize((const uint8_t *)s, len, w->buf + w->pos);
    }
    op_pbw_varint(w, out);
    op_pbw_tag(w, field, OP_PB_LEN);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------- */

/* Length of the well-formed sequence at s (RFC 3629 table), 0 when there is none. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return (n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c < 0xF5) {
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return (n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                (s[3] & 0xC0) == 0x80)
                   ? 4
                   : 0;
    }
    return 0;
}

size_t op_utf8_sanitized_len(const uint8_t *s, size_t n)
{
    size_t i = 0, out = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            out++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            out += k;
        } else {
            i++;
            out += 3;
        }
    }
    return out;
}

void op_utf8_sanitize(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            memcpy(out, s + i, k);
            out += k;
            i += k;
        } else {
            *out++ = 0xEF; /* U+FFFD */
            *out++ = 0xBF;
            *out++ = 0xBD;
            i++;
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Messages (content only; the caller writes length and tag)
 * ------------------------------------------------------------------------------------- */

static void put_anyvalue(op_pbw *w, const otelprof_value *v);

static void put_array_item(op_pbw *w, otelprof_value_type type, const void *items, size_t i)
{
    otelprof_value item;
    memset(&item, 0, sizeof item);
    switch (type) {
    case OTELPROF_VALUE_STRING_ARRAY:
        item.type = OTELPROF_VALUE_STRING;
        item.u.str.ptr = ((const char *const *)items)[i];
        item.u.str.len = OTELPROF_NUL_TERMINATED;
        break;
    case OTELPROF_VALUE_BOOL_ARRAY:
        item.type = OTELPROF_VALUE_BOOL;
        item.u.b = ((const bool *)items)[i];
        break;
    case OTELPROF_VALUE_INT_ARRAY:
        item.type = OTELPROF_VALUE_INT;
        item.u.i = ((const int64_t *)items)[i];
        break;
    case OTELPROF_VALUE_DOUBLE_ARRAY:
        item.type = OTELPROF_VALUE_DOUBLE;
        item.u.d = ((const double *)items)[i];
        break;
    default:
        return;
    }
    put_anyvalue(w, &item);
}

static void put_anyvalue(op_pbw *w, const otelprof_value *v)
{
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        pbw_string(w, 1, v->u.str.ptr, v->u.str.len, true);
        break;
    case OTELPROF_VALUE_BOOL:
        pbw_uint(w, 2, v->u.b ? 1 : 0);
        break;
    case OTELPROF_VALUE_INT:
        pbw_uint(w, 3, (uint64_t)v->u.i);
        break;
    case OTELPROF_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, sizeof bits);
        pbw_fixed64(w, 4, bits);
        break;
    }
    case OTELPROF_VALUE_STRING_ARRAY:
    case OTELPROF_VALUE_BOOL_ARRAY:
    case OTELPROF_VALUE_INT_ARRAY:
    case OTELPROF_VALUE_DOUBLE_ARRAY: {
        size_t mark = op_pbw_len(w);
        const void *items = v->u.array.items;
        for (size_t i = items ? v->u.array.n : 0; i-- > 0;) {
            size_t m = op_pbw_len(w);
            put_array_item(w, v->type, items, i);
            op_pbw_close_len(w, 1, m); /* ArrayValue.values */
        }
        op_pbw_close_len(w, 5, mark); /* AnyValue.array_value */
        break;
    }
    default:
        break; /* a type this version does not know: an empty AnyValue */
    }
}

/* repeated KeyValue <field> */
static void put_attrs(op_pbw *w, uint32_t field, const otelprof_kv *attrs, size_t n)
{
    if (!attrs)
        return;
    for (size_t i = n; i-- > 0;) {
        size_t mark = op_pbw_len(w);
        size_t m = op_pbw_len(w);
        put_anyvalue(w, &attrs[i].value);
        op_pbw_close_len(w, 2, m); /* KeyValue.value */
        pbw_string(w, 1, attrs[i].key, OTELPROF_NUL_TERMINATED, false);
        op_pbw_close_len(w, field, mark);
    }
}

static void put_tracestate(op_pbw *w, uint32_t field, const otelprof_tracestate *ts)
{
    if (otelprof_tracestate_count(ts) == 0)
        return;
    char buf[OTELPROF_TRACESTATE_MAX_LEN + 1];
    size_t len = 0;
    if (otelprof_tracestate_format(ts, buf, sizeof buf, &len) != OTELPROF_OK)
        return;
    pbw_string(w, field, buf, len, false);
}

static void put_event(op_pbw *w, const otelprof_event_data *ev)
{
    pbw_count(w, 4, ev->dropped_attrs);
    put_attrs(w, 3, ev->attrs, ev->n_attrs);
    pbw_string(w, 2, ev->name, OTELPROF_NUL_TERMINATED, false);
    if (ev->time_ns)
        pbw_fixed64(w, 1, ev->time_ns);
}

static void put_link(op_pbw *w, const otelprof_link_data *l)
{
    uint32_t flags = (l->context.trace_flags & SPAN_FLAGS_TRACE_FLAGS_MASK) |
                     SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK |
                     (l->context.is_remote ? SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK : 0);
    pbw_fixed32(w, 6, flags);
    pbw_count(w, 5, l->dropped_attrs);
    put_attrs(w, 4, l->attrs, l->n_attrs);
    put_tracestate(w, 3, &l->context.tracestate);
    pbw_raw_bytes_field(w, 2, l->context.span_id, sizeof l->context.span_id);
    pbw_raw_bytes_field(w, 1, l->context.trace_id, sizeof l->context.trace_id);
}

static void put_span(op_pbw *w, const otelprof_span_data *s)
{
    uint32_t flags = (s->context.trace_flags & SPAN_FLAGS_TRACE_FLAGS_MASK) |
                     SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK |
                     (s->parent_is_remote ? SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK : 0);
    pbw_fixed32(w, 16, flags);

    bool has_msg = s->status_description && s->status_description[0];
    if (s->status != OTELPROF_SPAN_STATUS_UNSET || has_msg) {
        size_t mark = op_pbw_len(w);
        if (s->status != OTELPROF_SPAN_STATUS_UNSET)
            pbw_uint(w, 3, (uint32_t)s->status); /* Status.code */
        if (has_msg)
            pbw_string(w, 2, s->status_description, OTELPROF_NUL_TERMINATED, false);
        op_pbw_close_len(w, 15, mark);
    }

    pbw_count(w, 14, s->dropped_links);
    for (size_t i = s->links ? s->n_links : 0; i-- > 0;) {
        size_t mark = op_pbw_len(w);
        put_link(w, &s->links[i]);
        op_pbw_close_len(w, 13, mark);
    }
    pbw_count(w, 12, s->dropped_events);
    for (size_t i = s->events ? s->n_events : 0; i-- > 0;) {
        size_t mark = op_pbw_len(w);
        put_event(w, &s->events[i]);
        op_pbw_close_len(w, 11, mark);
    }
    pbw_count(w, 10, s->dropped_attrs);
    put_attrs(w, 9, s->attrs, s->n_attrs);
    if (s->end_time_ns)
        pbw_fixed64(w, 8, s->end_time_ns);
    if (s->start_time_ns)
        pbw_fixed64(w, 7, s->start_time_ns);
    if (s->kind)
        pbw_uint(w, 6, (uint32_t)s->kind);
    pbw_string(w, 5, s->name, OTELPROF_NUL_TERMINATED, false);
    if (!all_zero(s->parent_span_id, sizeof s->parent_span_id))
        pbw_raw_bytes_field(w, 4, s->parent_span_id, sizeof s->parent_span_id);
    put_tracestate(w, 3, &s->context.tracestate);
    pbw_raw_bytes_field(w, 2, s->context.span_id, sizeof s->context.span_id);
    pbw_raw_bytes_field(w, 1, s->context.trace_id, sizeof s->context.trace_id);
}

/* ---------------------------------------------------------------------------------------
 * Batch: grouping and cutting into requests
 * ------------------------------------------------------------------------------------- */

typedef struct batch_res {
    const otelprof_resource *res;
    uint8_t *bytes; /* Resource message content; NULL when res is NULL */
    size_t len;
    size_t cost; /* bytes still to write when a ResourceSpans is closed */
} batch_res;

typedef struct batch_group {
    const otelprof_scope_info *scope;
    uint32_t res_idx;
    uint8_t *bytes; /* InstrumentationScope message content; NULL when scope is NULL */
    size_t len;
    size_t cost; /* bytes still to write when a ScopeSpans is closed */
} batch_group;

struct op_otlp_batch {
    const otelprof_span_data *const *spans;
    size_t n;
    size_t *order;   /* position -> span index, grouped by resource then scope */
    uint32_t *grp;   /* position -> group */
    size_t next_end; /* positions [0, next_end) are not handed out yet */
    batch_res *res;
    size_t n_res;
    batch_group *groups;
    size_t n_groups;
};

static bool str_eq0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool scope_eq(const otelprof_scope_info *a, const otelprof_scope_info *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    return str_eq0(a->name, b->name) && str_eq0(a->version, b->version) &&
           str_eq0(a->schema_url, b->schema_url);
}

/* Encode one small message into a fresh heap copy of its content. */
static uint8_t *encode_copy(op_pbw *tmp, size_t *len)
{
    if (tmp->nomem || tmp->overflow)
        return NULL;
    *len = op_pbw_len(tmp);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p && *len)
        memcpy(p, tmp->buf + tmp->pos, *len);
    return p;
}

static bool batch_prepare(op_otlp_batch *b)
{
    size_t n = b->n;
    uint32_t *gidx = malloc(n * sizeof *gidx);
    b->order = malloc(n * sizeof *b->order);
    b->grp = malloc(n * sizeof *b->grp);
    b->res = calloc(n, sizeof *b->res);
    b->groups = calloc(n, sizeof *b->groups);
    if (!gidx || !b->order || !b->grp || !b->res || !b->groups) {
        free(gidx);
        return false;
    }
    /* groups in order of first appearance */
    uint32_t last = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        const otelprof_span_data *s = b->spans[i];
        if (last != UINT32_MAX && b->res[b->groups[last].res_idx].res == s->resource &&
            scope_eq(b->groups[last].scope, s->scope)) {
            gidx[i] = last;
            continue;
        }
        uint32_t r = 0;
        while (r < b->n_res && b->res[r].res != s->resource)
            r++;
        if (r == b->n_res)
            b->res[b->n_res++].res = s->resource;
        uint32_t g = 0;
        while (g < b->n_groups &&
               !(b->groups[g].res_idx == r && scope_eq(b->groups[g].scope, s->scope)))
            g++;
        if (g == b->n_groups) {
            b->groups[g].scope = s->scope;
            b->groups[g].res_idx = r;
            b->n_groups++;
        }
        gidx[i] = last = g;
    }
    /* rank groups by resource first (stable), then count-sort the spans by rank */
    size_t *start = calloc(b->n_groups + 1, sizeof *start);
    uint32_t *rank = malloc(b->n_groups * sizeof *rank);
    if (!start || !rank) {
        free(start);
        free(rank);
        free(gidx);
        return false;
    }
    uint32_t k = 0;
    for (uint32_t r = 0; r < b->n_res; r++)
        for (uint32_t g = 0; g < b->n_groups; g++)
            if (b->groups[g].res_idx == r)
                rank[g] = k++;
    for (size_t i = 0; i < n; i++)
        start[rank[gidx[i]] + 1]++;
    for (size_t g = 0; g < b->n_groups; g++)
        start[g + 1] += start[g];
    for (size_t i = 0; i < n; i++) {
        size_t p = start[rank[gidx[i]]]++;
        b->order[p] = i;
        b->grp[p] = gidx[i];
    }
    free(start);
    free(rank);
    free(gidx);

    /* encode every resource and scope once */
    op_pbw tmp;
    op_pbw_init(&tmp, OTELPROF_OTLP_MAX_REQUEST_BYTES);
    bool ok = true;
    for (size_t r = 0; r < b->n_res && ok; r++) {
        batch_res *br = &b->res[r];
        br->cost = LEN_OVERHEAD;
        if (!br->res)
            continue;
        size_t na = 0;
        const otelprof_kv *attrs = otelprof_resource_attributes(br->res, &na);
        op_pbw_reset(&tmp);
        put_attrs(&tmp, 1, attrs, na); /* Resource.attributes */
        br->bytes = encode_copy(&tmp, &br->len);
        ok = br->bytes != NULL;
        br->cost += 1 + op_pb_varint_size(br->len) + br->len;
    }
    for (size_t g = 0; g < b->n_groups && ok; g++) {
        batch_group *bg = &b->groups[g];
        bg->cost = LEN_OVERHEAD;
        if (!bg->scope)
            continue;
        op_pbw_reset(&tmp);
        pbw_string(&tmp, 2, bg->scope->version, OTELPROF_NUL_TERMINATED, false);
        pbw_string(&tmp, 1, bg->scope->name, OTELPROF_NUL_TERMINATED, false);
        bg->bytes = encode_copy(&tmp, &bg->len);
        ok = bg->bytes != NULL;
        bg->cost += 1 + op_pb_varint_size(bg->len) + bg->len;
    }
    op_pbw_free(&tmp);
    b->next_end = n;
    return ok;
}

op_otlp_batch *op_otlp_batch_new(const otelprof_span_data *const *spans, size_t n)
{
    op_otlp_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->spans = spans;
    b->n = n;
    if (n && !batch_prepare(b)) {
        op_otlp_batch_free(b);
        return NULL;
    }
    return b;
}

void op_otlp_batch_free(op_otlp_batch *b)
{
    if (!b)
        return;
    if (b->res)
        for (size_t r = 0; r < b->n_res; r++)
            free(b->res[r].bytes);
    if (b->groups)
        for (size_t g = 0; g < b->n_groups; g++)
            free(b->groups[g].bytes);
    free(b->res);
    free(b->groups);
    free(b->order);
    free(b->grp);
    free(b);
}

size_t op_otlp_batch_remaining(const op_otlp_batch *b)
{
    return b ? b->next_end : 0;
}

/* ScopeSpans.scope, then the ScopeSpans entry (ResourceSpans.scope_spans = 2). */
static void close_scope(op_pbw *w, const batch_group *g, size_t mark)
{
    if (g->bytes)
        pbw_raw_bytes_field(w, 1, g->bytes, g->len);
    op_pbw_close_len(w, 2, mark);
}

/* ResourceSpans.resource, then the entry (ExportTraceServiceRequest.resource_spans = 1). */
static void close_res(op_pbw *w, const batch_res *r, size_t mark)
{
    if (r->bytes)
        pbw_raw_bytes_field(w, 1, r->bytes, r->len);
    op_pbw_close_len(w, 1, mark);
}

otelprof_status op_otlp_batch_next(op_otlp_batch *b, op_pbw *w, size_t *n_spans,
                                   size_t *n_too_large)
{
    *n_spans = 0;
    op_pbw_reset(w);
    if (!b || b->next_end == 0)
        return OTELPROF_OK;
    bool open_s = false, open_r = false;
    uint32_t cur_g = 0, cur_r = 0;
    size_t s_mark = 0, r_mark = 0;
    size_t i = b->next_end;
    /* Backwards from the end: the last span of the last group is written first. */
    while (i > 0) {
        uint32_t g = b->grp[i - 1];
        uint32_t r = b->groups[g].res_idx;
        if (open_s && cur_g != g) {
            close_scope(w, &b->groups[cur_g], s_mark);
            open_s = false;
        }
        if (open_r && cur_r != r) {
            close_res(w, &b->res[cur_r], r_mark);
            open_r = false;
        }
        size_t mark = op_pbw_len(w);
        if (!open_s && b->groups[g].scope)
            pbw_string(w, 3, b->groups[g].scope->schema_url, OTELPROF_NUL_TERMINATED, false);
        size_t sm = op_pbw_len(w);
        put_span(w, b->spans[b->order[i - 1]]);
        op_pbw_close_len(w, 2, sm); /* ScopeSpans.spans */
        if (w->nomem) {
            *n_spans = 0; /* nothing handed out: every span left is still remaining */
            return OTELPROF_E_NOMEM;
        }
        size_t reserve = b->groups[g].cost + b->res[r].cost;
        if (w->overflow || reserve > w->limit || op_pbw_len(w) > w->limit - reserve) {
            op_pbw_rollback(w, mark);
            if (*n_spans > 0)
                break;        /* the request is full; this span starts the next one */
            (*n_too_large)++; /* does not fit even alone */
            i--;
            continue;
        }
        if (!open_r) {
            open_r = true;
            cur_r = r;
            r_mark = mark;
        }
        if (!open_s) {
            open_s = true;
            cur_g = g;
            s_mark = mark;
        }
        (*n_spans)++;
        i--;
    }
    if (open_s)
        close_scope(w, &b->groups[cur_g], s_mark);
    if (open_r)
        close_res(w, &b->res[cur_r], r_mark);
    if (w->nomem) {
        *n_spans = 0;
        return OTELPROF_E_NOMEM;
    }
    if (w->overflow) { /* cannot happen: the closing bytes were reserved */
        op_otlp_log(OTELPROF_LOG_ERROR, "otlp: internal error: request over its reserved size");
        *n_spans = 0;
        return OTELPROF_E_NOMEM;
    }
    b->next_end = i;
    return OTELPROF_OK;
}

/* ---------------------------------------------------------------------------------------
 * Response decoding
 * ------------------------------------------------------------------------------------- */

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

static bool rd_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Next field: its number, wire type, and for LEN fields the content. */
static bool rd_field(pb_reader *r, uint32_t *field, unsigned *wt, uint64_t *val,
                     const uint8_t **data, size_t *len)
{
    uint64_t key;
    if (!rd_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return false;
    *field = (uint32_t)(key >> 3);
    *wt = (unsigned)(key & 7);
    *val = 0;
    *data = NULL;
    *len = 0;
    switch (*wt) {
    case OP_PB_VARINT:
        return rd_varint(r, val);
    case OP_PB_I64:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case OP_PB_I32:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    case OP_PB_LEN: {
        uint64_t n;
        if (!rd_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return false;
        *data = r->p;
        *len = (size_t)n;
        r->p += n;
        return true;
    }
    default:
        return false;
    }
}

bool op_otlp_decode_response(const uint8_t *buf, size_t len, int64_t *rejected, const char **msg,
                             size_t *msg_len)
{
    *rejected = 0;
    *msg = NULL;
    *msg_len = 0;
    pb_reader r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        unsigned wt;
        uint64_t v;
        const uint8_t *d;
        size_t n;
        if (!rd_field(&r, &f, &wt, &v, &d, &n))
            return false;
        if (f != 1 || wt != OP_PB_LEN)
            continue;
        pb_reader ps = {d, d + n};
        while (ps.p < ps.end) {
            if (!rd_field(&ps, &f, &wt, &v, &d, &n))
                return false;
            if (f == 1 && wt == OP_PB_VARINT)
                *rejected = (int64_t)v;
            else if (f == 2 && wt == OP_PB_LEN) {
                *msg = (const char *)d;
                *msg_len = n;
            }
        }
    }
    return true;
}

bool op_otlp_decode_status_message(const uint8_t *buf, size_t len, const char **msg,
                                   size_t *msg_len)
{
    *msg = NULL;
    *msg_len = 0;
    pb_reader r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        unsigned wt;
        uint64_t v;
        const uint8_t *d;
        size_t n;
        if (!rd_field(&r, &f, &wt, &v, &d, &n))
            return false;
        if (f == 2 && wt == OP_PB_LEN) {
            *msg = (const char *)d;
            *msg_len = n;
        }
    }
    return *msg != NULL;
}
