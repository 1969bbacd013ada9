/* The profiling tracer wrapper (include/otelprof/wrap.h): a decorator around any
 * otelprof_tracer_provider that publishes each span's context on the starting thread.
 *
 * Per thread, the wrapper mirrors the core's stack of attached contexts with a stack of
 * the spans it published. A span ended on another thread is only marked retired there
 * (the core cannot touch another thread's context); the owning thread detaches retired
 * spans at its next wrapper operation. Each published span is reference-counted: one
 * reference for the user (dropped at end), one for the owning thread's stack.
 */
#define _GNU_SOURCE
#include <otelprof/wrap.h>

#include "util/hash.h"
#include "util/opts.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS       16
#define STACK_MAX      OTELPROF_MAX_DEPTH
#define DEFAULT_GUARD  1024u
#define COUNTER_SHARDS 64 /* one per live thread that starts spans, then shared */

/* Bounded set of value hashes per key: lock-free inserts, so the span path never locks. */
struct guard {
    _Atomic uint64_t *slots; /* 0 = empty; capacity is a power of two >= 2 * max */
    uint32_t mask;
    uint32_t max;
    atomic_uint count;
};

/* A configured attribute key. w/m: its bytes with the terminating NUL, and a mask of
 * them, for keys under 16 bytes (see key_is). */
struct wkey {
    char *name;
    size_t len;
    uint64_t w[2], m[2];
    uint32_t index; /* core key index */
    struct guard guard;
};

struct wprovider {
    otelprof_tracer_provider base;
    otelprof_tracer_provider *inner;
    bool own_inner, local_roots_only, skip_unsampled;
    size_t n_keys;
    struct wkey keys[MAX_KEYS];
    /* Bit k set in first_keys[c]: configured key k starts with byte c. Most attributes of
     * a span are rejected by this one load. */
    uint16_t first_keys[256];
    bool have_name_key;
    uint32_t name_key_index;
    struct guard name_guard;
    pthread_mutex_t lock;
    struct wtracer *tracers;
    atomic_uint_fast64_t attach_failed, values_dropped, other_thread;
    /* Counted on every span. Shard i belongs to the one live thread that claimed index i
     * (thread_shards), which increments it without a locked instruction: a locked add is
     * a full barrier, measured at ~4% of the cheapest wrapped span. Threads beyond
     * COUNTER_SHARDS share the last, locked, line. */
    struct {
        atomic_uint_fast64_t published, not_published;
        char pad[64 - 2 * sizeof(atomic_uint_fast64_t)];
    } shard[COUNTER_SHARDS + 1];
};

struct wtracer {
    otelprof_tracer base;
    otelprof_tracer *inner;
    struct wprovider *p;
    struct wtracer *next;
};

struct wspan {
    otelprof_span base;
    otelprof_span *inner;
    struct wprovider *p;
    otelprof_token token;
    /* id of the thread whose stack holds it; 0 when not published. Atomic: another
     * thread may end the span while the owner unwinds it. */
    _Atomic uint64_t owner;
    atomic_int refs;
    atomic_bool retired;
    struct wspan *next_free;
};

#define FREE_MAX 64 /* spans kept per thread for reuse */

struct wthread {
    uint64_t id;
    int shard; /* claimed counter shard, or COUNTER_SHARDS (shared) */
    unsigned depth;
    struct wspan *stack[STACK_MAX];
    struct wspan *free;
    unsigned n_free;
};

static __thread struct wthread *tls_wt;
static atomic_uint_fast64_t thread_ids = 1;
static _Atomic uint64_t thread_shards; /* bit i: counter shard i is claimed by a live thread */
_Static_assert(COUNTER_SHARDS == 64, "thread_shards is one 64-bit mask");

/* A counter shard of its own for the calling thread, or the shared one. */
static int shard_claim(void)
{
    uint64_t m = atomic_load_explicit(&thread_shards, memory_order_relaxed);
    while (m != UINT64_MAX) {
        int i = __builtin_ctzll(~m);
        /* acquire: the previous owner's increments come before ours */
        if (atomic_compare_exchange_weak_explicit(&thread_shards, &m, m | (UINT64_C(1) << i),
                                                  memory_order_acquire, memory_order_relaxed))
            return i;
    }
    return COUNTER_SHARDS;
}

static void shard_release(int i)
{
    if (i < COUNTER_SHARDS) /* release: our increments come before the next owner's */
        atomic_fetch_and_explicit(&thread_shards, ~(UINT64_C(1) << i), memory_order_release);
}
static pthread_key_t wt_key;
static pthread_once_t wt_once = PTHREAD_ONCE_INIT;

/* Keep s for the thread's next span, or free it. */
static inline void wspan_recycle(struct wthread *wt, struct wspan *s)
{
    if (wt && wt->n_free < FREE_MAX) {
        s->next_free = wt->free;
        wt->free = s;
        wt->n_free++;
        return;
    }
    free(s);
}

/* Drop a reference; the last one recycles s on the releasing thread. */
static void wspan_unref(struct wspan *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        wspan_recycle(tls_wt, s);
}

static struct wspan *wspan_new(struct wthread *wt)
{
    struct wspan *s;
    if (wt && wt->free) {
        s = wt->free;
        wt->free = s->next_free;
        wt->n_free--;
    } else if ((s = malloc(sizeof *s)) == NULL) {
        return NULL;
    }
    /* Only the fields read before being written are set here (the caller sets the rest). */
    s->token = (otelprof_token)OTELPROF_TOKEN_INIT;
    atomic_init(&s->owner, 0);
    return s;
}

static void wt_destroy(void *arg)
{
    struct wthread *wt = arg;
    if (tls_wt == wt)
        tls_wt = NULL; /* so that the unrefs below free rather than recycle */
    for (unsigned i = 0; i < wt->depth; i++)
        wspan_unref(wt->stack[i]);
    while (wt->free) {
        struct wspan *s = wt->free;
        wt->free = s->next_free;
        free(s);
    }
    shard_release(wt->shard);
    free(wt);
}

static void wt_key_init(void)
{
    (void)pthread_key_create(&wt_key, wt_destroy);
}

static __attribute__((noinline)) struct wthread *wt_create(void)
{
    pthread_once(&wt_once, wt_key_init);
    struct wthread *wt = calloc(1, sizeof *wt);
    if (!wt)
        return NULL;
    wt->id = atomic_fetch_add(&thread_ids, 1);
    wt->shard = shard_claim();
    if (pthread_setspecific(wt_key, wt) != 0) {
        shard_release(wt->shard);
        free(wt);
        return NULL;
    }
    tls_wt = wt;
    return wt;
}

static inline struct wthread *wt_get(void)
{
    struct wthread *wt = tls_wt;
    return wt ? wt : wt_create();
}

/* Pop stack entries from the top down to (and including) index i. Their core frames are
 * detached by whoever calls this (detaching the lowest unwinds the others). */
static void wt_pop_to(struct wthread *wt, unsigned i)
{
    while (wt->depth > i) {
        struct wspan *s = wt->stack[--wt->depth];
        atomic_store(&s->owner, 0);
        wspan_unref(s);
    }
}

/* Detach spans that were ended on other threads while they sit on top of this thread's
 * stack. */
static inline void sweep(struct wthread *wt)
{
    while (wt->depth &&
           atomic_load_explicit(&wt->stack[wt->depth - 1]->retired, memory_order_acquire)) {
        struct wspan *s = wt->stack[wt->depth - 1];
        (void)otelprof_detach(&s->token);
        wt_pop_to(wt, wt->depth - 1);
    }
}

void otelprof_wrap_thread_sync(void)
{
    struct wthread *wt = tls_wt;
    if (!wt)
        return;
    /* Retired spans below live ones: detach the lowest retired one, which unwinds the
     * live ones above it too; they stay tracked as unpublished. */
    for (unsigned i = 0; i < wt->depth; i++) {
        if (atomic_load_explicit(&wt->stack[i]->retired, memory_order_acquire)) {
            (void)otelprof_detach(&wt->stack[i]->token);
            wt_pop_to(wt, i);
            break;
        }
    }
}

/* ---- cardinality guard ---- */

static int guard_init(struct guard *g, uint32_t max)
{
    uint32_t cap = 16;
    while (cap < 2 * max)
        cap *= 2;
    g->slots = calloc(cap, sizeof *g->slots);
    g->mask = cap - 1;
    g->max = max;
    atomic_init(&g->count, 0);
    return g->slots ? 0 : -1;
}

/* guard_admit's insertion path: the value h was not in its home slot. */
static __attribute__((noinline)) bool guard_insert(struct guard *g, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & g->mask, probes = 0; probes <= g->mask;
         i = (i + 1) & g->mask, probes++) {
        uint64_t cur = atomic_load_explicit(&g->slots[i], memory_order_acquire);
        if (cur == h)
            return true;
        if (cur != 0)
            continue;
        if (atomic_fetch_add(&g->count, 1) >= g->max) {
            atomic_fetch_sub(&g->count, 1);
            return false;
        }
        uint64_t expected = 0;
        if (atomic_compare_exchange_strong(&g->slots[i], &expected, h))
            return true;
        atomic_fetch_sub(&g->count, 1);
        if (expected == h)
            return true;
    }
    return false;
}

/* true when the value is known or could be added within the limit. A known value is
 * usually in its home slot: one load. */
static inline bool guard_admit(struct guard *g, const char *v, size_t n)
{
    uint64_t h = op_hash_bytes(v, n);
    if (atomic_load_explicit(&g->slots[(uint32_t)h & g->mask], memory_order_acquire) == h)
        return true;
    return guard_insert(g, h);
}

/* ---- attributes to publish ---- */

/* Text of a number or boolean for the thread context: at most 24 characters. */
#define NUM_TEXT 32

/* A value as published text (strings as they are, numbers and booleans rendered into buf);
 * NULL when it is not published (arrays, a NULL string). */
static const char *value_text(const otelprof_value *v, char *buf, size_t *len)
{
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        if (!v->u.str.ptr)
            return NULL;
        *len = v->u.str.len == OTELPROF_NUL_TERMINATED ? strlen(v->u.str.ptr) : v->u.str.len;
        return v->u.str.ptr;
    case OTELPROF_VALUE_BOOL:
        *len = (size_t)snprintf(buf, NUM_TEXT, "%s", v->u.b ? "true" : "false");
        return buf;
    case OTELPROF_VALUE_INT:
        *len = (size_t)snprintf(buf, NUM_TEXT, "%lld", (long long)v->u.i);
        return buf;
    case OTELPROF_VALUE_DOUBLE:
        *len = (size_t)snprintf(buf, NUM_TEXT, "%.17g", v->u.d);
        return buf;
    default:
        return NULL; /* arrays are not published */
    }
}

/* Whether the NUL-terminated key equals k->name. Keys under 16 bytes are compared as two
 * words read from the caller's string, past its NUL when it is shorter: harmless on
 * x86-64 while both words stay in one page (no fault is possible there, and no tagged
 * memory), and the bytes past either NUL are masked off or differ from k's NUL. That
 * replaces a strcmp call per candidate key. Sanitizer builds, which would rightly flag
 * the over-read, and other targets use strcmp. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define KEY_WORDS 1
#else
#define KEY_WORDS 0
#endif

static inline bool key_is(const char *key, const struct wkey *k)
{
#if KEY_WORDS
    if (k->len < 16 && ((uintptr_t)key & 4095u) <= 4096u - 16u) {
        uint64_t a, b;
        memcpy(&a, key, 8);
        memcpy(&b, key + 8, 8);
        return (((a ^ k->w[0]) & k->m[0]) | ((b ^ k->w[1]) & k->m[1])) == 0;
    }
#endif
    return strcmp(key, k->name) == 0;
}

/* The values a span publishes, gathered for one otelprof_attach: at most one per
 * configured key (slot k; slot MAX_KEYS is the span name), each pointing at the caller's
 * string or at a rendering in text[]. pos[k] is slot k's entry in at[]. */
struct picks {
    size_t n;
    uint32_t present;
    uint8_t pos[MAX_KEYS + 1];
    otelprof_attr at[MAX_KEYS + 1];
    char text[MAX_KEYS + 1][NUM_TEXT];
};

/* pick() for a slot that already has a value. */
static __attribute__((noinline)) void repick(struct picks *pk, size_t k, uint32_t index,
                                             const char *v, size_t len)
{
    size_t at = pk->pos[k];
    if (v && len <= OTELPROF_VALUE_MAX) {
        pk->at[at] = (otelprof_attr){index, v, len};
        return;
    }
    pk->present &= ~(UINT32_C(1) << k);
    if (at != --pk->n) { /* move the last entry into the hole */
        pk->at[at] = pk->at[pk->n];
        for (size_t j = 0; j <= MAX_KEYS; j++)
            if ((pk->present & (UINT32_C(1) << j)) && pk->pos[j] == pk->n)
                pk->pos[j] = (uint8_t)at;
    }
}

/* Set slot k to v[0..len) (index: the core key), replacing an earlier value of the same
 * slot (a key given twice: the later one wins); v == NULL removes it. */
static inline void pick(struct picks *pk, size_t k, uint32_t index, const char *v, size_t len)
{
    uint32_t bit = UINT32_C(1) << k;
    if (pk->present & bit) {
        repick(pk, k, index, v, len);
        return;
    }
    if (!v || len > OTELPROF_VALUE_MAX)
        return;
    pk->pos[k] = (uint8_t)pk->n;
    pk->at[pk->n++] = (otelprof_attr){index, v, len};
    pk->present |= bit;
}

/* Text v[0..len) (NULL: none) of configured key k, through the cardinality guard. */
static inline void take_text(struct wprovider *p, struct picks *pk, size_t k, const char *v,
                             size_t len)
{
    if (v && len <= OTELPROF_VALUE_MAX && !guard_admit(&p->keys[k].guard, v, len)) {
        atomic_fetch_add(&p->values_dropped, 1);
        v = NULL;
    }
    pick(pk, k, p->keys[k].index, v, len);
}

/* A number, boolean or array value of configured key k: rendered as text, out of line. */
static __attribute__((noinline)) void take_other(struct wprovider *p, struct picks *pk, size_t k,
                                                 const otelprof_value *value)
{
    size_t len = 0;
    const char *v = value_text(value, pk->text[k], &len);
    take_text(p, pk, k, v, len);
}

/* Value a of configured key k: strings, the usual kind, inline. */
static inline void take_value(struct wprovider *p, struct picks *pk, size_t k,
                              const otelprof_value *value)
{
    if (value->type != OTELPROF_VALUE_STRING) {
        take_other(p, pk, k, value);
        return;
    }
    const char *v = value->u.str.ptr;
    size_t len = value->u.str.len;
    if (v && len == OTELPROF_NUL_TERMINATED)
        len = strlen(v);
    take_text(p, pk, k, v, len);
}

/* Gather the configured keys' values from attrs into pk (later ones win). true if attrs
 * has any configured key. */
static inline bool take_attrs(struct wprovider *p, struct picks *pk, const otelprof_kv *attrs,
                              size_t n)
{
    bool any = false;
    for (const otelprof_kv *a = attrs, *end = attrs + n; a < end; a++) {
        const char *key = a->key;
        unsigned cand;
        /* Cheap rejections first: most span attributes are not published ones. */
        if (!key || !(cand = p->first_keys[(unsigned char)key[0]]))
            continue;
        do {
            unsigned k = (unsigned)__builtin_ctz(cand);
            if (key_is(key, &p->keys[k])) {
                take_value(p, pk, k, &a->value);
                any = true;
            }
            cand &= cand - 1;
        } while (cand);
    }
    return any;
}

/* Publish sc with the gathered values. Values the core refuses (invalid UTF-8, too long
 * together) leave the ids published alone. */
static inline otelprof_status attach_span(const otelprof_span_context *sc, const struct picks *pk,
                                          otelprof_token *tok)
{
    otelprof_context c;
    memcpy(c.trace_id, sc->trace_id, 16);
    memcpy(c.span_id, sc->span_id, 8);
    c.trace_flags = sc->trace_flags;
    otelprof_status rc = otelprof_attach(&c, pk->at, pk->n, tok);
    if (rc == OTELPROF_E_TOO_LARGE || rc == OTELPROF_E_UTF8) /* publish the ids at least */
        rc = otelprof_attach(&c, NULL, 0, tok);
    return rc;
}

/* ---- span ops: forward to the inner span ---- */

static const otelprof_span_context *ws_context(const otelprof_span *span)
{
    const struct wspan *s = (const struct wspan *)span;
    return s->inner->ops->context(s->inner);
}

static bool ws_is_recording(const otelprof_span *span)
{
    const struct wspan *s = (const struct wspan *)span;
    return s->inner->ops->is_recording(s->inner);
}

/* Slot of a published entry's core key index; -1 if none (cannot happen for entries the
 * wrapper published). */
static int slot_of(const struct wprovider *p, uint32_t index)
{
    for (size_t k = 0; k < p->n_keys; k++)
        if (p->keys[k].index == index)
            return (int)k;
    return p->have_name_key && p->name_key_index == index ? MAX_KEYS : -1;
}

static void ws_set_attributes(otelprof_span *span, const otelprof_kv *attrs, size_t n)
{
    struct wspan *s = (struct wspan *)span;
    s->inner->ops->set_attributes(s->inner, attrs, n);
    struct wthread *wt = tls_wt;
    struct wprovider *p = s->p;
    if (!wt || atomic_load(&s->owner) != wt->id || !wt->depth || wt->stack[wt->depth - 1] != s)
        return;
    /* Innermost on this thread, so its record is the current one unless the code inside
     * the span attached a context of its own (other ids: leave both alone). Start from the
     * values it publishes (copied: the new record is built where the old one lies), and
     * republish if any configured key is set. */
    const otelprof_span_context *sc = s->inner->ops->context(s->inner);
    otelprof_context now;
    otelprof_attr cur[MAX_KEYS + 1];
    size_t n_cur = 0;
    if (!sc || otelprof_current(&now, cur, MAX_KEYS + 1, &n_cur) != OTELPROF_OK ||
        memcmp(now.trace_id, sc->trace_id, 16) != 0 || memcmp(now.span_id, sc->span_id, 8) != 0)
        return;
    struct picks pk;
    pk.n = 0;
    pk.present = 0;
    char copy[OTELPROF_ATTRS_MAX];
    size_t used = 0;
    for (size_t i = 0; i < n_cur && i <= MAX_KEYS; i++) {
        int k = slot_of(p, cur[i].key);
        if (k < 0 || used + cur[i].value_len > sizeof copy)
            continue;
        memcpy(copy + used, cur[i].value, cur[i].value_len);
        pick(&pk, (size_t)k, cur[i].key, copy + used, cur[i].value_len);
        used += cur[i].value_len;
    }
    if (!take_attrs(p, &pk, attrs, n))
        return; /* no configured key among attrs */
    otelprof_token fresh;
    if (otelprof_detach(&s->token) == OTELPROF_OK && attach_span(sc, &pk, &fresh) == OTELPROF_OK) {
        s->token = fresh;
    } else {
        wt_pop_to(wt, wt->depth - 1);
    }
}

static void ws_add_event(otelprof_span *span, const char *name, uint64_t t, const otelprof_kv *a,
                         size_t n)
{
    struct wspan *s = (struct wspan *)span;
    s->inner->ops->add_event(s->inner, name, t, a, n);
}

static void ws_add_link(otelprof_span *span, const otelprof_link *link)
{
    struct wspan *s = (struct wspan *)span;
    s->inner->ops->add_link(s->inner, link);
}

static void ws_set_status(otelprof_span *span, otelprof_span_status code, const char *desc)
{
    struct wspan *s = (struct wspan *)span;
    s->inner->ops->set_status(s->inner, code, desc);
}

static void ws_update_name(otelprof_span *span, const char *name)
{
    struct wspan *s = (struct wspan *)span;
    s->inner->ops->update_name(s->inner, name);
}

static void ws_end(otelprof_span *span, uint64_t end_ns)
{
    struct wspan *s = (struct wspan *)span;
    struct wprovider *p = s->p;
    struct wthread *wt = tls_wt;
    uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
    if (owner && wt && wt->id == owner && wt->stack[wt->depth - 1] == s) {
        /* The usual case: the innermost span ends on its own thread. Its two references
         * (the stack's and the caller's) are dropped together. */
        (void)otelprof_detach(&s->token);
        wt->depth--;
        atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
        sweep(wt);
        otelprof_span *inner = s->inner;
        s->inner = NULL;
        inner->ops->end(inner, end_ns);
        /* Those are the only references (no other thread can take one), so the count
         * needs no atomic read-modify-write: s goes straight back to the free list. */
        wspan_recycle(wt, s);
        return;
    }
    if (owner) {
        if (wt && wt->id == owner) {
            /* Restore the context from before the span (unwinding any inner ones still
             * attached) and forget the entries above and including it. */
            for (unsigned i = wt->depth; i-- > 0;) {
                if (wt->stack[i] == s) {
                    (void)otelprof_detach(&s->token);
                    wt_pop_to(wt, i);
                    break;
                }
            }
        } else {
            atomic_fetch_add(&p->other_thread, 1);
            atomic_store_explicit(&s->retired, true, memory_order_release);
        }
    }
    if (wt)
        sweep(wt);
    otelprof_span *inner = s->inner;
    s->inner = NULL;
    inner->ops->end(inner, end_ns);
    wspan_unref(s);
}

static const otelprof_span_ops wspan_ops = {
    .sz = sizeof(otelprof_span_ops),
    .context = ws_context,
    .is_recording = ws_is_recording,
    .set_attributes = ws_set_attributes,
    .add_event = ws_add_event,
    .add_link = ws_add_link,
    .set_status = ws_set_status,
    .update_name = ws_update_name,
    .end = ws_end,
};

/* ---- tracer ---- */

static bool is_local_root(const otelprof_span_start_opts *o)
{
    if (o && o->sz >= offsetof(otelprof_span_start_opts, start_time_ns) && o->root)
        return true;
    const otelprof_span_context *parent =
        o && o->parent ? o->parent : otelprof_current_span_context();
    return !parent || !otelprof_span_context_is_valid(parent) || parent->is_remote;
}

static inline void count(struct wprovider *p, const struct wthread *wt, bool published)
{
    int i = wt ? wt->shard : COUNTER_SHARDS;
    atomic_uint_fast64_t *c = published ? &p->shard[i].published : &p->shard[i].not_published;
    if (i < COUNTER_SHARDS) /* this thread's own: no other writer */
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* otelprof_span_context_is_valid without the call: non-zero trace and span ids. */
static inline bool ids_valid(const otelprof_span_context *sc)
{
    uint64_t t0, t1, sp;
    memcpy(&t0, sc->trace_id, 8);
    memcpy(&t1, sc->trace_id + 8, 8);
    memcpy(&sp, sc->span_id, 8);
    return (t0 | t1) && sp;
}

static otelprof_span *wt_start_span(otelprof_tracer *tracer, const char *name,
                                    const otelprof_span_start_opts *opts)
{
    struct wtracer *t = (struct wtracer *)tracer;
    struct wprovider *p = t->p;
    bool local_root = p->local_roots_only ? is_local_root(opts) : false;
    otelprof_span *inner = t->inner->ops->start_span(t->inner, name, opts);
    if (!inner)
        return NULL;
    struct wthread *wt = wt_get();
    struct wspan *s = wspan_new(wt);
    if (!s)
        return inner; /* degrade to the unwrapped span rather than fail the caller */
    s->base.ops = &wspan_ops;
    s->inner = inner;
    s->p = p;
    atomic_init(&s->refs, 1);
    atomic_init(&s->retired, false);
    if (wt)
        sweep(wt);
    const otelprof_span_context *sc = inner->ops->context(inner);
    bool publish = wt && sc && ids_valid(sc) &&
                   (!p->skip_unsampled || otelprof_span_context_is_sampled(sc)) &&
                   (!p->local_roots_only || local_root) && wt->depth < STACK_MAX;
    if (!publish) {
        count(p, wt, false);
        return &s->base;
    }
    struct picks pk; /* only n and present need a start */
    pk.n = 0;
    pk.present = 0;
    if (p->n_keys && opts && opts->sz >= offsetof(otelprof_span_start_opts, links) && opts->n_attrs)
        take_attrs(p, &pk, opts->attrs, opts->n_attrs);
    if (p->have_name_key && name) {
        size_t n = strlen(name);
        bool ok = n <= OTELPROF_VALUE_MAX && guard_admit(&p->name_guard, name, n);
        if (!ok && n <= OTELPROF_VALUE_MAX)
            atomic_fetch_add(&p->values_dropped, 1);
        pick(&pk, MAX_KEYS, p->name_key_index, ok ? name : NULL, n);
    }
    if (attach_span(sc, &pk, &s->token) != OTELPROF_OK) {
        atomic_fetch_add(&p->attach_failed, 1);
        return &s->base;
    }
    /* No other thread can see s yet: plain stores. The user's reference and the thread
     * stack's. */
    atomic_store_explicit(&s->refs, 2, memory_order_relaxed);
    atomic_store_explicit(&s->owner, wt->id, memory_order_release);
    wt->stack[wt->depth++] = s;
    count(p, wt, true);
    return &s->base;
}

static const otelprof_tracer_ops wtracer_ops = {
    .sz = sizeof(otelprof_tracer_ops),
    .start_span = wt_start_span,
};

/* ---- provider ---- */

static otelprof_tracer *wp_get_tracer(otelprof_tracer_provider *provider, const char *name,
                                      const char *version, const char *schema_url)
{
    struct wprovider *p = (struct wprovider *)provider;
    otelprof_tracer *inner = p->inner->ops->get_tracer(p->inner, name, version, schema_url);
    if (!inner)
        return NULL;
    pthread_mutex_lock(&p->lock);
    struct wtracer *t;
    for (t = p->tracers; t; t = t->next)
        if (t->inner == inner)
            break;
    if (!t && (t = calloc(1, sizeof *t)) != NULL) {
        t->base.ops = &wtracer_ops;
        t->inner = inner;
        t->p = p;
        t->next = p->tracers;
        p->tracers = t;
    }
    pthread_mutex_unlock(&p->lock);
    return t ? &t->base : NULL;
}

static otelprof_status wp_force_flush(otelprof_tracer_provider *provider, uint32_t timeout_ms)
{
    struct wprovider *p = (struct wprovider *)provider;
    return p->inner->ops->force_flush(p->inner, timeout_ms);
}

static otelprof_status wp_shutdown(otelprof_tracer_provider *provider, uint32_t timeout_ms)
{
    struct wprovider *p = (struct wprovider *)provider;
    return p->inner->ops->shutdown(p->inner, timeout_ms);
}

static void wp_free(otelprof_tracer_provider *provider)
{
    struct wprovider *p = (struct wprovider *)provider;
    if (p->own_inner)
        p->inner->ops->free(p->inner);
    while (p->tracers) {
        struct wtracer *t = p->tracers;
        p->tracers = t->next;
        free(t);
    }
    for (size_t k = 0; k < p->n_keys; k++) {
        free(p->keys[k].name);
        free(p->keys[k].guard.slots);
    }
    free(p->name_guard.slots);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const otelprof_tracer_provider_ops wprovider_ops = {
    .sz = sizeof(otelprof_tracer_provider_ops),
    .get_tracer = wp_get_tracer,
    .force_flush = wp_force_flush,
    .shutdown = wp_shutdown,
    .free = wp_free,
};

otelprof_tracer_provider *otelprof_tracer_provider_wrap(otelprof_tracer_provider *inner,
                                                        const otelprof_wrap_opts *opts,
                                                        otelprof_status *err)
{
    otelprof_status dummy;
    if (!err)
        err = &dummy;
    otelprof_wrap_opts o = {0};
    if ((*err = op_opts_copy(&o, sizeof o, opts)) != OTELPROF_OK)
        return NULL;
    if (!inner || !inner->ops || o.n_attribute_keys > MAX_KEYS ||
        (o.n_attribute_keys && !o.attribute_keys)) {
        *err = OTELPROF_E_INVAL;
        return NULL;
    }
    struct wprovider *p = calloc(1, sizeof *p);
    if (!p) {
        *err = OTELPROF_E_NOMEM;
        return NULL;
    }
    p->base.ops = &wprovider_ops;
    p->inner = inner;
    p->own_inner = o.take_ownership;
    p->local_roots_only = o.local_roots_only;
    p->skip_unsampled = o.skip_unsampled;
    pthread_mutex_init(&p->lock, NULL);
    uint32_t max = o.max_distinct_values ? o.max_distinct_values : DEFAULT_GUARD;
    otelprof_status rc = OTELPROF_OK;
    for (size_t k = 0; k < o.n_attribute_keys && rc == OTELPROF_OK; k++) {
        if (!o.attribute_keys[k]) {
            rc = OTELPROF_E_INVAL;
            break;
        }
        struct wkey *wk = &p->keys[k];
        p->first_keys[(unsigned char)o.attribute_keys[k][0]] |= (uint16_t)(1u << k);
        rc = otelprof_key_register(o.attribute_keys[k], &wk->index);
        if (rc == OTELPROF_OK &&
            ((wk->name = strdup(o.attribute_keys[k])) == NULL || guard_init(&wk->guard, max) != 0))
            rc = OTELPROF_E_NOMEM;
        p->n_keys = k + 1;
        for (size_t j = 0; j < k && rc == OTELPROF_OK; j++)
            if (p->keys[j].index == wk->index)
                rc = OTELPROF_E_INVAL; /* a key twice would publish it twice: refused */
        if (rc == OTELPROF_OK) {
            /* the name and its NUL as two words, and which bytes of them count */
            unsigned char bytes[16] = {0}, mask[16] = {0};
            wk->len = strlen(wk->name);
            for (size_t b = 0; b <= wk->len && b < 16; b++) {
                bytes[b] = (unsigned char)wk->name[b];
                mask[b] = 0xff;
            }
            memcpy(wk->w, bytes, 16);
            memcpy(wk->m, mask, 16);
        }
    }
    if (rc == OTELPROF_OK && o.span_name_key) {
        rc = otelprof_key_register(o.span_name_key, &p->name_key_index);
        for (size_t j = 0; j < p->n_keys && rc == OTELPROF_OK; j++)
            if (p->keys[j].index == p->name_key_index)
                rc = OTELPROF_E_INVAL; /* the name under an attribute's key */
        if (rc == OTELPROF_OK && guard_init(&p->name_guard, max) != 0)
            rc = OTELPROF_E_NOMEM;
        p->have_name_key = rc == OTELPROF_OK;
    }
    if (rc != OTELPROF_OK) {
        p->own_inner = false; /* the caller keeps `inner` on failure */
        wp_free(&p->base);
        *err = rc;
        return NULL;
    }
    *err = OTELPROF_OK;
    return &p->base;
}

otelprof_status otelprof_wrap_get_stats(otelprof_tracer_provider *wrapped, otelprof_wrap_stats *out)
{
    if (!wrapped || wrapped->ops != &wprovider_ops || !out)
        return OTELPROF_E_INVAL;
    struct wprovider *p = (struct wprovider *)wrapped;
    out->published = out->not_published = 0;
    for (size_t i = 0; i <= COUNTER_SHARDS; i++) {
        out->published += atomic_load(&p->shard[i].published);
        out->not_published += atomic_load(&p->shard[i].not_published);
    }
    out->attach_failed = atomic_load(&p->attach_failed);
    out->values_dropped = atomic_load(&p->values_dropped);
    out->ended_on_other_thread = atomic_load(&p->other_thread);
    return OTELPROF_OK;
}
