/* W3C Trace Context Level 2: the tracestate header, kept in a fixed-size list. */
#include "prop_internal.h"

/* Members longer than this are the first to go when a header must be truncated. */
#define TS_LONG_MEMBER 128

/* A member while it is being parsed or rebuilt: key and value point into the input (or
 * into a tracestate; ts_store copies through a temporary, so aliasing is fine). */
typedef struct ts_span {
    const char *k, *v;
    size_t klen, vlen;
} ts_span;

static bool key_first(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool key_char(char c)
{
    return key_first(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

/* Current grammar: (lcalpha / DIGIT) 0*255(keychar). '@' is a keychar, which admits the
 * multi-tenant `tenant@system` keys of Level 1 (and a little more). */
static bool valid_key(const char *k, size_t n)
{
    if (n == 0 || n > OTELPROF_TRACESTATE_KEY_MAX || !key_first(k[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!key_char(k[i]))
            return false;
    return true;
}

/* value = 0*255(chr) nblk-chr: 1..256 printable characters except ',' and '=', the last
 * one not a space. */
static bool valid_value(const char *v, size_t n)
{
    if (n == 0 || n > OTELPROF_TRACESTATE_VALUE_MAX || v[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

static size_t member_len(const ts_span *m)
{
    return m->klen + 1 + m->vlen;
}

static size_t combined_len(const ts_span *m, size_t n)
{
    size_t total = n ? n - 1 : 0; /* the commas */
    for (size_t i = 0; i < n; i++)
        total += member_len(&m[i]);
    return total;
}

static void span_drop(ts_span *m, size_t *n, size_t i)
{
    memmove(&m[i], &m[i + 1], (*n - i - 1) * sizeof *m);
    (*n)--;
}

/* Spec "tracestate limits": to fit, remove members longer than 128 characters first,
 * starting from the right, then members from the right. The first `pinned` members stay
 * (a member this participant just set). */
static void ts_truncate(ts_span *m, size_t *n, size_t pinned)
{
    while (*n > pinned && combined_len(m, *n) > OTELPROF_TRACESTATE_MAX_LEN) {
        size_t drop = *n - 1;
        for (size_t i = *n; i-- > pinned;) {
            if (member_len(&m[i]) > TS_LONG_MEMBER) {
                drop = i;
                break;
            }
        }
        span_drop(m, n, drop);
    }
}

/* Replace ts's content with the members m[0..n), which must fit. Built in a temporary
 * because m may point into ts. */
static void ts_store(otelprof_tracestate *ts, const ts_span *m, size_t n)
{
    otelprof_tracestate tmp;
    memset(&tmp, 0, sizeof tmp);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        tmp.off[i] = (uint16_t)used;
        tmp.key_len[i] = (uint16_t)m[i].klen;
        tmp.value_len[i] = (uint16_t)m[i].vlen;
        memcpy(tmp.buf + used, m[i].k, m[i].klen);
        memcpy(tmp.buf + used + m[i].klen, m[i].v, m[i].vlen);
        used += m[i].klen + m[i].vlen;
    }
    tmp.count = (uint16_t)n;
    tmp.used = (uint16_t)used;
    memcpy(ts, &tmp, sizeof tmp);
}

/* ts's members as spans (pointing into ts). */
static size_t ts_spans(const otelprof_tracestate *ts, ts_span *m)
{
    size_t n = ts->count;
    for (size_t i = 0; i < n; i++) {
        m[i].k = ts->buf + ts->off[i];
        m[i].klen = ts->key_len[i];
        m[i].v = m[i].k + m[i].klen;
        m[i].vlen = ts->value_len[i];
    }
    return n;
}

static bool key_eq(const ts_span *m, const char *k, size_t klen)
{
    return m->klen == klen && memcmp(m->k, k, klen) == 0;
}

void otelprof_tracestate_clear(otelprof_tracestate *ts)
{
    if (ts) {
        ts->count = 0;
        ts->used = 0;
    }
}

/* The fields of one header, however the caller holds them. */
typedef const char *(*field_get_fn)(const void *arg, size_t i, size_t *len);

static otelprof_status ts_parse(otelprof_tracestate *ts, size_t nfields, field_get_fn get,
                                const void *arg)
{
    ts_span m[OTELPROF_TRACESTATE_MAX_MEMBERS];
    size_t n = 0, seen = 0;
    otelprof_tracestate_clear(ts); /* an invalid header leaves nothing to propagate */
    for (size_t f = 0; f < nfields; f++) {
        size_t flen = 0;
        const char *s = get(arg, f, &flen);
        if (!s)
            continue;
        /* Field boundaries act as commas, so members never span two fields. */
        for (size_t pos = 0; pos <= flen;) {
            size_t end = pos;
            while (end < flen && s[end] != ',')
                end++;
            size_t b = pos, e = end;
            pos = end + 1;
            prop_trim(s, &b, &e);
            if (b == e)
                continue; /* empty members are allowed and dropped */
            /* Duplicates count too: the limit is on the header as received. */
            if (++seen > OTELPROF_TRACESTATE_MAX_MEMBERS)
                return OTELPROF_E_TOO_LARGE;
            const char *eq = memchr(s + b, '=', e - b);
            if (!eq)
                return OTELPROF_E_PARSE;
            ts_span cur = {.k = s + b, .klen = (size_t)(eq - (s + b)), .v = eq + 1};
            cur.vlen = (size_t)(s + e - cur.v);
            if (!valid_key(cur.k, cur.klen) || !valid_value(cur.v, cur.vlen))
                return OTELPROF_E_PARSE;
            bool dup = false;
            for (size_t i = 0; i < n && !dup; i++)
                dup = key_eq(&m[i], cur.k, cur.klen);
            if (!dup) /* keep the first, never drop the whole header for a repeat */
                m[n++] = cur;
        }
    }
    ts_truncate(m, &n, 0);
    ts_store(ts, m, n);
    return OTELPROF_OK;
}

struct one_field {
    const char *s;
    size_t len;
};

static const char *one_field_get(const void *arg, size_t i, size_t *len)
{
    const struct one_field *f = arg;
    (void)i;
    *len = f->len;
    return f->s;
}

otelprof_status otelprof_tracestate_parse(otelprof_tracestate *ts, const char *s, size_t len)
{
    if (!ts || (!s && len != 0 && len != OTELPROF_NUL_TERMINATED))
        return OTELPROF_E_INVAL;
    struct one_field f = {s, prop_len(s, len)};
    return ts_parse(ts, 1, one_field_get, &f);
}

struct field_array {
    const char *const *fields;
    const size_t *lens;
};

static const char *field_array_get(const void *arg, size_t i, size_t *len)
{
    const struct field_array *a = arg;
    const char *s = a->fields[i];
    *len = prop_len(s, a->lens ? a->lens[i] : OTELPROF_NUL_TERMINATED);
    return s;
}

otelprof_status otelprof_tracestate_parse_fields(otelprof_tracestate *ts, const char *const *fields,
                                                 const size_t *lens, size_t n)
{
    if (!ts || (!fields && n != 0))
        return OTELPROF_E_INVAL;
    struct field_array a = {fields, lens};
    return ts_parse(ts, n, field_array_get, &a);
}

/* Used by extract: the fields come straight from the carrier, without copying. */
struct carrier_fields {
    const otelprof_carrier *c;
};

static const char *carrier_field_get(const void *arg, size_t i, size_t *len)
{
    const struct carrier_fields *cf = arg;
    *len = 0;
    const char *v = cf->c->get(cf->c->user, "tracestate", 10, i, len);
    *len = v ? prop_len(v, *len) : 0;
    return v;
}

otelprof_status prop_tracestate_from_carrier(otelprof_tracestate *ts, const otelprof_carrier *c,
                                             size_t nfields)
{
    struct carrier_fields cf = {c};
    return ts_parse(ts, nfields, carrier_field_get, &cf);
}

size_t otelprof_tracestate_count(const otelprof_tracestate *ts)
{
    return ts ? ts->count : 0;
}

otelprof_status otelprof_tracestate_at(const otelprof_tracestate *ts, size_t i, const char **key,
                                       size_t *key_len, const char **value, size_t *value_len)
{
    if (!ts || i >= ts->count)
        return OTELPROF_E_INVAL;
    const char *k = ts->buf + ts->off[i];
    if (key)
        *key = k;
    if (key_len)
        *key_len = ts->key_len[i];
    if (value)
        *value = k + ts->key_len[i];
    if (value_len)
        *value_len = ts->value_len[i];
    return OTELPROF_OK;
}

const char *otelprof_tracestate_get(const otelprof_tracestate *ts, const char *key, size_t key_len,
                                    size_t *value_len)
{
    if (!ts || !key)
        return NULL;
    key_len = prop_len(key, key_len);
    for (size_t i = 0; i < ts->count; i++) {
        const char *k = ts->buf + ts->off[i];
        if (ts->key_len[i] == key_len && memcmp(k, key, key_len) == 0) {
            if (value_len)
                *value_len = ts->value_len[i];
            return k + key_len;
        }
    }
    return NULL;
}

otelprof_status otelprof_tracestate_set(otelprof_tracestate *ts, const char *key, size_t key_len,
                                        const char *value, size_t value_len)
{
    if (!ts || !key || !value)
        return OTELPROF_E_INVAL;
    ts_span cur = {.k = key, .klen = prop_len(key, key_len), .v = value};
    cur.vlen = prop_len(value, value_len);
    if (!valid_key(cur.k, cur.klen) || !valid_value(cur.v, cur.vlen))
        return OTELPROF_E_INVAL;
    if (member_len(&cur) > OTELPROF_TRACESTATE_MAX_LEN)
        return OTELPROF_E_TOO_LARGE;

    ts_span old[OTELPROF_TRACESTATE_MAX_MEMBERS];
    ts_span m[OTELPROF_TRACESTATE_MAX_MEMBERS + 1];
    size_t nold = ts_spans(ts, old), n = 0;
    m[n++] = cur; /* a changed entry goes to the front */
    for (size_t i = 0; i < nold; i++)
        if (!key_eq(&old[i], cur.k, cur.klen))
            m[n++] = old[i];
    if (n > OTELPROF_TRACESTATE_MAX_MEMBERS)
        n = OTELPROF_TRACESTATE_MAX_MEMBERS; /* make room by dropping the right-most */
    ts_truncate(m, &n, 1);
    ts_store(ts, m, n);
    return OTELPROF_OK;
}

otelprof_status otelprof_tracestate_remove(otelprof_tracestate *ts, const char *key, size_t key_len)
{
    if (!ts || !key)
        return OTELPROF_E_INVAL;
    key_len = prop_len(key, key_len);
    ts_span m[OTELPROF_TRACESTATE_MAX_MEMBERS];
    size_t n = ts_spans(ts, m);
    for (size_t i = 0; i < n; i++) {
        if (key_eq(&m[i], key, key_len)) {
            span_drop(m, &n, i);
            ts_store(ts, m, n);
            break;
        }
    }
    return OTELPROF_OK;
}

otelprof_status otelprof_tracestate_format(const otelprof_tracestate *ts, char *out,
                                           size_t out_size, size_t *out_len)
{
    if (!ts || (!out && out_size))
        return OTELPROF_E_INVAL;
    ts_span m[OTELPROF_TRACESTATE_MAX_MEMBERS];
    size_t n = ts_spans(ts, m);
    size_t need = combined_len(m, n);
    if (out_len)
        *out_len = need;
    if (need + 1 > out_size) {
        if (out_size)
            out[0] = '\0';
        return OTELPROF_E_BUF_TOO_SMALL;
    }
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        memcpy(o, m[i].k, m[i].klen);
        o += m[i].klen;
        *o++ = '=';
        memcpy(o, m[i].v, m[i].vlen);
        o += m[i].vlen;
    }
    *o = '\0';
    return OTELPROF_OK;
}
