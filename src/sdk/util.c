/* Small helpers: clocks, UTF-8, attribute copies, environment parsing, arenas, and the
 * one-block deep copy of finished spans used by the batch processor and memory exporter. */
#define _GNU_SOURCE
#include "sdk_internal.h"
#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

uint64_t ots_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ots_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

size_t ots_utf8_seq(const char *s, size_t n)
{
    return n ? utf8_seq((const unsigned char *)s, n) : 0;
}

bool ots_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t ots_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    /* Walk whole characters so a cut never splits one, even in partly invalid text. */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < max) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k)
            k = 1;
        if (i + k > max)
            break;
        i += k;
    }
    return i;
}

char *ots_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

size_t ots_value_str_len(const otelprof_value *v)
{
    if (!v->u.str.ptr)
        return 0;
    return v->u.str.len == OTELPROF_NUL_TERMINATED ? strlen(v->u.str.ptr) : v->u.str.len;
}

/* ---- attribute copies ---- */

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

bool ots_kv_valid(const otelprof_kv *kv)
{
    if (!kv || !kv->key || !kv->key[0])
        return false;
    const otelprof_value *v = &kv->value;
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        return v->u.str.ptr || v->u.str.len == 0;
    case OTELPROF_VALUE_BOOL:
    case OTELPROF_VALUE_INT:
    case OTELPROF_VALUE_DOUBLE:
        return true;
    case OTELPROF_VALUE_STRING_ARRAY:
    case OTELPROF_VALUE_BOOL_ARRAY:
    case OTELPROF_VALUE_INT_ARRAY:
    case OTELPROF_VALUE_DOUBLE_ARRAY:
        return v->u.array.items || v->u.array.n == 0;
    }
    return false;
}

static size_t cut_len(const char *s, size_t len, uint32_t max_len)
{
    return max_len == UINT32_MAX ? len : ots_utf8_cut(s, len, max_len);
}

size_t ots_kv_measure(const otelprof_kv *src, uint32_t max_len, ots_kv_lens *l)
{
    l->key = strlen(src->key);
    l->str = 0;
    size_t n = ALIGN8(l->key + 1);
    const otelprof_value *v = &src->value;
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        l->str = cut_len(v->u.str.ptr, ots_value_str_len(v), max_len);
        n += l->str + 1;
        break;
    case OTELPROF_VALUE_STRING_ARRAY: {
        const char *const *items = v->u.array.items;
        n += v->u.array.n * sizeof(char *);
        for (size_t i = 0; i < v->u.array.n; i++) {
            const char *s = items[i] ? items[i] : "";
            n += cut_len(s, strlen(s), max_len) + 1;
        }
        break;
    }
    case OTELPROF_VALUE_BOOL_ARRAY:
        n += v->u.array.n * sizeof(bool);
        break;
    case OTELPROF_VALUE_INT_ARRAY:
        n += v->u.array.n * sizeof(int64_t);
        break;
    case OTELPROF_VALUE_DOUBLE_ARRAY:
        n += v->u.array.n * sizeof(double);
        break;
    default:
        break;
    }
    return ALIGN8(n);
}

size_t ots_kv_copy_size(const otelprof_kv *src, uint32_t max_len)
{
    ots_kv_lens l;
    return ots_kv_measure(src, max_len, &l);
}

void ots_kv_write(void *mem, const otelprof_kv *src, uint32_t max_len, const ots_kv_lens *l,
                  otelprof_kv *dst)
{
    char *p = mem;
    memcpy(p, src->key, l->key + 1);
    dst->key = p;
    p += ALIGN8(l->key + 1);
    const otelprof_value *v = &src->value;
    dst->value = *v;
    switch (v->type) {
    case OTELPROF_VALUE_STRING: {
        size_t len = l->str;
        if (len)
            memcpy(p, v->u.str.ptr, len);
        p[len] = '\0';
        dst->value.u.str.ptr = p;
        dst->value.u.str.len = len;
        break;
    }
    case OTELPROF_VALUE_STRING_ARRAY: {
        const char *const *items = v->u.array.items;
        const char **out = (const char **)(void *)p;
        char *s = p + v->u.array.n * sizeof(char *);
        for (size_t i = 0; i < v->u.array.n; i++) {
            const char *in = items[i] ? items[i] : "";
            size_t len = cut_len(in, strlen(in), max_len);
            memcpy(s, in, len);
            s[len] = '\0';
            out[i] = s;
            s += len + 1;
        }
        dst->value.u.array.items = v->u.array.n ? (const void *)out : NULL;
        break;
    }
    case OTELPROF_VALUE_BOOL_ARRAY:
    case OTELPROF_VALUE_INT_ARRAY:
    case OTELPROF_VALUE_DOUBLE_ARRAY: {
        size_t el = v->type == OTELPROF_VALUE_BOOL_ARRAY  ? sizeof(bool)
                    : v->type == OTELPROF_VALUE_INT_ARRAY ? sizeof(int64_t)
                                                          : sizeof(double);
        if (v->u.array.n)
            memcpy(p, v->u.array.items, v->u.array.n * el);
        dst->value.u.array.items = v->u.array.n ? (const void *)p : NULL;
        break;
    }
    default:
        break;
    }
}

void ots_kv_copy_into(void *mem, const otelprof_kv *src, uint32_t max_len, otelprof_kv *dst)
{
    ots_kv_lens l;
    (void)ots_kv_measure(src, max_len, &l);
    ots_kv_write(mem, src, max_len, &l, dst);
}

bool ots_kv_copy(const otelprof_kv *src, uint32_t max_len, otelprof_kv *dst)
{
    ots_kv_lens l;
    void *mem = malloc(ots_kv_measure(src, max_len, &l));
    if (!mem)
        return false;
    ots_kv_write(mem, src, max_len, &l, dst);
    return true;
}

/* ---- environment ---- */

static const char *trim(const char *s, size_t *n)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    *n = len;
    return s;
}

const char *ots_env(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return NULL;
    size_t n;
    trim(v, &n);
    return n ? v : NULL;
}

bool ots_word_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

bool ots_env_u32(const char *name, uint32_t max, uint32_t *out)
{
    const char *v = ots_env(name);
    if (!v)
        return false;
    size_t n;
    const char *s = trim(v, &n);
    uint64_t x = 0;
    bool ok = n > 0 && n <= 10;
    for (size_t i = 0; ok && i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            ok = false;
        else
            x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok || x > max) {
        ots_log(OTELPROF_LOG_WARN, "%s=\"%s\" is not an integer in [0, %u]; using the default",
                name, v, max);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

bool ots_env_bool(const char *name)
{
    const char *v = ots_env(name);
    if (!v)
        return false;
    size_t n;
    const char *s = trim(v, &n);
    if (ots_word_eq(s, n, "true"))
        return true;
    if (!ots_word_eq(s, n, "false"))
        ots_log(OTELPROF_LOG_WARN, "%s=\"%s\" is neither true nor false; using false", name, v);
    return false;
}

otelprof_status ots_opts_check(const void *opts, size_t sz, size_t ours_sz)
{
    (void)sz; /* op_opts_check reads it from the struct itself */
    return op_opts_check(opts, ours_sz);
}

/* ---- arena ---- */

struct ots_arena_block {
    ots_arena_block *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

void *ots_arena_alloc(ots_arena *a, size_t n)
{
    n = ALIGN8(n ? n : 1);
    ots_arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = b ? b->size * 2 : 1024;
        if (size > 64 * 1024)
            size = 64 * 1024;
        if (size < n)
            size = n;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void ots_arena_free(ots_arena *a)
{
    ots_arena_block *b = a->head;
    while (b) {
        ots_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- one-block deep copy of span data ---- */

/* Two passes over the same code: the first (base == NULL) measures, the second writes. */
struct cursor {
    char *base;
    size_t off;
};

static void *take(struct cursor *c, size_t n)
{
    c->off = ALIGN8(c->off);
    void *p = c->base ? c->base + c->off : NULL;
    c->off += n;
    return p;
}

static const char *put_str(struct cursor *c, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = take(c, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static const otelprof_kv *put_kvs(struct cursor *c, const otelprof_kv *kvs, size_t n)
{
    if (!n)
        return NULL;
    otelprof_kv *out = take(c, n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        ots_kv_lens l;
        void *mem = take(c, ots_kv_measure(&kvs[i], UINT32_MAX, &l));
        if (mem)
            ots_kv_write(mem, &kvs[i], UINT32_MAX, &l, &out[i]);
    }
    return out;
}

static void clone_pass(struct cursor *c, const otelprof_span_data *src, otelprof_span_data *d)
{
    if (d)
        *d = *src;
    const char *name = put_str(c, src->name ? src->name : "");
    const char *desc = put_str(c, src->status_description);
    const otelprof_kv *attrs = put_kvs(c, src->attrs, src->n_attrs);
    otelprof_event_data *ev = src->n_events ? take(c, src->n_events * sizeof *ev) : NULL;
    for (size_t i = 0; i < src->n_events; i++) {
        const char *en = put_str(c, src->events[i].name ? src->events[i].name : "");
        const otelprof_kv *ea = put_kvs(c, src->events[i].attrs, src->events[i].n_attrs);
        if (ev) {
            ev[i] = src->events[i];
            ev[i].name = en;
            ev[i].attrs = ea;
        }
    }
    otelprof_link_data *lk = src->n_links ? take(c, src->n_links * sizeof *lk) : NULL;
    for (size_t i = 0; i < src->n_links; i++) {
        const otelprof_kv *la = put_kvs(c, src->links[i].attrs, src->links[i].n_attrs);
        if (lk) {
            lk[i] = src->links[i];
            lk[i].attrs = la;
        }
    }
    otelprof_scope_info *scope = src->scope ? take(c, sizeof *scope) : NULL;
    if (src->scope) {
        const char *sn = put_str(c, src->scope->name ? src->scope->name : "");
        const char *sv = put_str(c, src->scope->version);
        const char *su = put_str(c, src->scope->schema_url);
        if (scope) {
            scope->name = sn;
            scope->version = sv;
            scope->schema_url = su;
        }
    }
    if (d) {
        d->name = name;
        d->status_description = desc;
        d->attrs = attrs;
        d->events = ev;
        d->links = lk;
        d->scope = scope;
    }
}

size_t ots_span_data_clone_size(const otelprof_span_data *src)
{
    struct cursor c = {NULL, 0};
    take(&c, sizeof(otelprof_span_data));
    clone_pass(&c, src, NULL);
    return c.off;
}

otelprof_span_data *ots_span_data_clone_into(const otelprof_span_data *src, void *mem)
{
    struct cursor c = {mem, 0};
    otelprof_span_data *d = take(&c, sizeof *d);
    clone_pass(&c, src, d);
    return d;
}

otelprof_span_data *ots_span_data_clone(const otelprof_span_data *src)
{
    void *mem = malloc(ots_span_data_clone_size(src));
    return mem ? ots_span_data_clone_into(src, mem) : NULL;
}
