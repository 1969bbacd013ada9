/* The SDK: tracer provider, tracers and recording spans (trace SDK spec).
 *
 * Spans: a recording span owns copies of everything given to it. Attributes are copied one
 * block each (replacing a key frees the old copy, so a long span updated in a loop does not
 * grow); events and links, which are only ever appended, live in a per-span arena. At end
 * the span's data is handed to the processors as an otelprof_span_data view valid for the
 * call, then the span is freed: the handle cannot be used (or ended) again.
 *
 * Threads: processors, sampler, id generator, resource and limits are fixed at creation,
 * so starting and ending spans takes no provider lock; only get_tracer locks (the tracer
 * list). */
#define _GNU_SOURCE
#include "sdk_internal.h"
#include "util/hash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_COUNT_LIMIT      128u
#define DEFAULT_SHUTDOWN_TIMEOUT 30000u
#define UNLIMITED                UINT32_MAX

struct limits {
    uint32_t attr_count, attr_len, event_count, link_count, attrs_per_event, attrs_per_link;
};

struct sdk_provider;

struct sdk_tracer {
    otelprof_tracer base;
    struct sdk_provider *p;
    otelprof_scope_info scope;
    struct sdk_tracer *next;
};

struct sdk_provider {
    otelprof_tracer_provider base;
    otelprof_resource *resource;
    otelprof_sampler *sampler;
    otelprof_span_processor **procs;
    size_t n_procs;
    struct limits lim;
    pthread_mutex_t lock; /* tracers */
    struct sdk_tracer *tracers;
    atomic_bool shut;
    otelprof_id_generator gen; /* all zero: the built-in generator */
    atomic_bool warned_bad_id;
};

#define ATTRS_INL 16

struct sdk_span {
    otelprof_span base;
    otelprof_span_context ctx;
    /* From t to attrs_inl: zeroed for each new span (span_alloc); the rest is written
     * before it is read. */
    struct sdk_tracer *t;
    struct sdk_span *next_free; /* in a thread's span cache */
    uint8_t parent_span_id[8];
    bool parent_is_remote;
    bool explicit_start;
    bool warned_limits;
    char *name;
    otelprof_span_kind kind;
    uint64_t start_ns, start_mono;
    otelprof_kv *attrs;
    uint64_t *sigs; /* attrs[i]'s key hash (op_hash_bytes): most lookups skip strcmp */
    size_t n_attrs, cap_attrs;
    uint32_t dropped_attrs;
    otelprof_event_data *events;
    size_t n_events, cap_events;
    uint32_t dropped_events;
    otelprof_link_data *links;
    size_t n_links, cap_links;
    uint32_t dropped_links;
    otelprof_span_status status;
    char *status_desc;
    ots_arena arena;
    size_t kv_inl_used;
    /* The attribute vector and the first attribute copies live in the span itself, so a
     * typical span (an HTTP server span has 10 to 15 attributes) allocates nothing for
     * them; more spill to the heap (kv_alloc / kv_free tell the two apart by address). So
     * does a name shorter than name_inl. */
    otelprof_kv attrs_inl[ATTRS_INL];
    uint64_t sigs_inl[ATTRS_INL];
    _Alignas(8) unsigned char kv_inl[768];
    char name_inl[64];
};

/* ---- span memory: a few spans per thread are kept for the thread's next ones ---- */

#define SPAN_CACHE_MAX 8

static __thread struct sdk_span *span_cache;
static __thread unsigned span_cache_n;
static __thread bool span_cache_armed, span_cache_gone;
static pthread_key_t span_cache_key;
static pthread_once_t span_cache_once = PTHREAD_ONCE_INIT;
static bool span_cache_key_ok;

/* Thread exit: free the thread's cached spans; spans freed later in the exit go to free(). */
static void span_cache_destroy(void *arg)
{
    (void)arg;
    span_cache_gone = true;
    while (span_cache) {
        struct sdk_span *s = span_cache;
        span_cache = s->next_free;
        free(s);
    }
    span_cache_n = 0;
}

static void span_cache_init(void)
{
    span_cache_key_ok = pthread_key_create(&span_cache_key, span_cache_destroy) == 0;
}

static struct sdk_span *span_alloc(void)
{
    struct sdk_span *s = span_cache;
    if (s) {
        span_cache = s->next_free;
        span_cache_n--;
    } else if ((s = malloc(sizeof *s)) == NULL) {
        return NULL;
    }
    memset((char *)s + offsetof(struct sdk_span, t), 0,
           offsetof(struct sdk_span, attrs_inl) - offsetof(struct sdk_span, t));
    return s;
}

static void span_release(struct sdk_span *s)
{
    if (!span_cache_armed && !span_cache_gone) {
        /* first span freed on this thread: have its cache freed when the thread exits */
        pthread_once(&span_cache_once, span_cache_init);
        span_cache_armed =
            span_cache_key_ok && pthread_setspecific(span_cache_key, &span_cache) == 0;
    }
    if (span_cache_armed && !span_cache_gone && span_cache_n < SPAN_CACHE_MAX) {
        s->next_free = span_cache;
        span_cache = s;
        span_cache_n++;
        return;
    }
    free(s);
}

/* Copy name into the span: inline when short, else on the heap. */
static bool span_set_name(struct sdk_span *s, const char *name)
{
    size_t n = strlen(name);
    char *dst = n < sizeof s->name_inl ? s->name_inl : malloc(n + 1);
    if (!dst)
        return false;
    memmove(dst, name, n + 1); /* name may be the span's own */
    if (s->name && s->name != s->name_inl && s->name != dst)
        free(s->name);
    s->name = dst;
    return true;
}

/* ---- processor dispatch (user processors may have shorter tables) ---- */

#define PROC_HAS(p, member) OTS_HAS_OP(p, otelprof_span_processor_ops, member)

static uint32_t remaining_ms(uint64_t deadline)
{
    uint64_t now = ots_mono_ns();
    return now >= deadline ? 0 : (uint32_t)((deadline - now + 999999) / 1000000);
}

/* ---- limits ---- */

static void warn_dropped(struct sdk_span *s, const char *what)
{
    /* Spec: at most one message per span. */
    if (s->warned_limits)
        return;
    s->warned_limits = true;
    ots_log(OTELPROF_LOG_WARN, "span \"%s\": %s dropped by the span limits", s->name, what);
}

/* Memory for one attribute copy: the span's inline space while it lasts, else the heap. */
static void *kv_alloc(struct sdk_span *s, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (sizeof s->kv_inl - s->kv_inl_used >= n) {
        void *p = s->kv_inl + s->kv_inl_used;
        s->kv_inl_used += n;
        return p;
    }
    return malloc(n);
}

static void kv_free(struct sdk_span *s, const void *p)
{
    const unsigned char *c = p;
    if (c >= s->kv_inl && c < s->kv_inl + sizeof s->kv_inl)
        return; /* inline: a replaced value's bytes stay until the span is freed */
    free((void *)p);
}

/* Grow the attribute vector (and its signatures) to hold one more, within count_limit. */
static bool attrs_grow(struct sdk_span *s, uint32_t count_limit)
{
    if (!s->attrs) {
        s->attrs = s->attrs_inl;
        s->sigs = s->sigs_inl;
        s->cap_attrs = ATTRS_INL < count_limit ? ATTRS_INL : count_limit;
        return true;
    }
    size_t old = s->cap_attrs, c = old * 2;
    if (c > count_limit)
        c = count_limit;
    /* One block: the vector, then the signatures. */
    size_t each = sizeof(otelprof_kv) + sizeof(uint64_t);
    otelprof_kv *v;
    if (s->attrs == s->attrs_inl) {
        if ((v = malloc(c * each)) == NULL)
            return false;
        memcpy(v, s->attrs, s->n_attrs * sizeof *v);
        memcpy(v + c, s->sigs, s->n_attrs * sizeof(uint64_t));
    } else {
        if ((v = realloc(s->attrs, c * each)) == NULL)
            return false;
        memmove(v + c, v + old, s->n_attrs * sizeof(uint64_t)); /* forward: c > old */
    }
    s->attrs = v;
    s->sigs = (uint64_t *)(void *)(v + c);
    s->cap_attrs = c;
    return true;
}

/* Apply one attribute to the span's vector: replace the key's value or append within the
 * limit. Returns false when it was dropped by the limit (invalid attributes are ignored).
 * The key is measured and hashed once; equal hashes are confirmed with strcmp. */
static bool attr_put(struct sdk_span *s, const otelprof_kv *kv, uint32_t count_limit,
                     uint32_t len_limit, bool *nomem)
{
    ots_kv_lens l;
    size_t size = ots_kv_measure(kv, len_limit, &l);
    uint64_t sig = op_hash_bytes(kv->key, l.key);
    size_t i = 0;
    while (i < s->n_attrs && (s->sigs[i] != sig || strcmp(s->attrs[i].key, kv->key) != 0))
        i++;
    if (i == s->n_attrs) {
        if (s->n_attrs >= count_limit)
            return false;
        if (s->n_attrs == s->cap_attrs && !attrs_grow(s, count_limit)) {
            *nomem = true;
            return true;
        }
    }
    void *mem = kv_alloc(s, size);
    if (!mem) {
        *nomem = true;
        return true;
    }
    otelprof_kv copy;
    ots_kv_write(mem, kv, len_limit, &l, &copy);
    if (i < s->n_attrs)
        kv_free(s, s->attrs[i].key); /* replaced: after the copy, in case kv pointed into it */
    else
        s->n_attrs++;
    s->attrs[i] = copy;
    s->sigs[i] = sig;
    return true;
}

static void span_put_attrs(struct sdk_span *s, const otelprof_kv *attrs, size_t n)
{
    const struct limits *lim = &s->t->p->lim;
    bool nomem = false;
    for (size_t i = 0; i < n; i++) {
        if (!ots_kv_valid(&attrs[i]))
            continue;
        if (!attr_put(s, &attrs[i], lim->attr_count, lim->attr_len, &nomem)) {
            s->dropped_attrs++;
            warn_dropped(s, "attributes");
        }
    }
    if (nomem)
        ots_log(OTELPROF_LOG_ERROR, "span \"%s\": out of memory storing attributes", s->name);
}

/* Copy attrs into the arena for an event or link: keys deduplicated (the last value wins),
 * at most `limit` of them; *dropped counts the rest. */
static const otelprof_kv *arena_attrs(struct sdk_span *s, const otelprof_kv *attrs, size_t n,
                                      uint32_t limit, size_t *n_out, uint32_t *dropped)
{
    *n_out = 0;
    *dropped = 0;
    size_t cap = n < limit ? n : limit;
    if (!n || !attrs)
        return NULL;
    otelprof_kv *out = cap ? ots_arena_alloc(&s->arena, cap * sizeof *out) : NULL;
    if (cap && !out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ots_kv_valid(&attrs[i]))
            continue;
        /* A key given again later in the list: that later value is the one kept. */
        bool later = false;
        for (size_t j = i + 1; j < n && !later; j++)
            later = ots_kv_valid(&attrs[j]) && strcmp(attrs[j].key, attrs[i].key) == 0;
        if (later)
            continue;
        if (k >= cap) {
            (*dropped)++;
            continue;
        }
        void *mem = ots_arena_alloc(&s->arena, ots_kv_copy_size(&attrs[i], s->t->p->lim.attr_len));
        if (!mem)
            break;
        ots_kv_copy_into(mem, &attrs[i], s->t->p->lim.attr_len, &out[k++]);
    }
    *n_out = k;
    return out;
}

static void span_add_link(struct sdk_span *s, const otelprof_link *link)
{
    static const otelprof_span_context none;
    const otelprof_span_context *c = link->context ? link->context : &none;
    /* Spec: keep a link to an invalid context only if it carries attributes or tracestate. */
    if (!otelprof_span_context_is_valid(c) && !(link->attrs && link->n_attrs) &&
        !otelprof_tracestate_count(&c->tracestate))
        return;
    if (s->n_links >= s->t->p->lim.link_count) {
        s->dropped_links++;
        warn_dropped(s, "links");
        return;
    }
    if (s->n_links == s->cap_links) {
        size_t cap = s->cap_links ? s->cap_links * 2 : 4;
        otelprof_link_data *v = realloc(s->links, cap * sizeof *v);
        if (!v)
            return;
        s->links = v;
        s->cap_links = cap;
    }
    otelprof_link_data *l = &s->links[s->n_links];
    memcpy(&l->context, c, sizeof l->context);
    size_t n = 0;
    uint32_t dropped = 0;
    l->attrs = arena_attrs(s, link->attrs, link->attrs ? link->n_attrs : 0,
                           s->t->p->lim.attrs_per_link, &n, &dropped);
    l->n_attrs = n;
    l->dropped_attrs = dropped;
    if (dropped)
        warn_dropped(s, "link attributes");
    s->n_links++;
}

/* ---- span operations ---- */

static const otelprof_span_context *sp_context(const otelprof_span *span)
{
    return &((const struct sdk_span *)span)->ctx;
}

static bool sp_is_recording(const otelprof_span *span)
{
    (void)span;
    return true; /* a recording span is only ever this type; it is freed at end */
}

static void sp_set_attributes(otelprof_span *span, const otelprof_kv *attrs, size_t n)
{
    if (attrs) /* decorators may call the table directly, bypassing the NULL checks */
        span_put_attrs((struct sdk_span *)span, attrs, n);
}

static void sp_add_event(otelprof_span *span, const char *name, uint64_t time_ns,
                         const otelprof_kv *attrs, size_t n)
{
    struct sdk_span *s = (struct sdk_span *)span;
    if (s->n_events >= s->t->p->lim.event_count) {
        s->dropped_events++;
        warn_dropped(s, "events");
        return;
    }
    if (s->n_events == s->cap_events) {
        size_t cap = s->cap_events ? s->cap_events * 2 : 4;
        otelprof_event_data *v = realloc(s->events, cap * sizeof *v);
        if (!v)
            return;
        s->events = v;
        s->cap_events = cap;
    }
    if (!name)
        name = "";
    size_t nlen = strlen(name) + 1;
    char *nm = ots_arena_alloc(&s->arena, nlen);
    if (!nm)
        return;
    memcpy(nm, name, nlen);
    otelprof_event_data *e = &s->events[s->n_events];
    e->name = nm;
    e->time_ns = time_ns ? time_ns : ots_now_ns();
    size_t na = 0;
    uint32_t dropped = 0;
    e->attrs = arena_attrs(s, attrs, n, s->t->p->lim.attrs_per_event, &na, &dropped);
    e->n_attrs = na;
    e->dropped_attrs = dropped;
    if (dropped)
        warn_dropped(s, "event attributes");
    s->n_events++;
}

static void sp_add_link(otelprof_span *span, const otelprof_link *link)
{
    if (link)
        span_add_link((struct sdk_span *)span, link);
}

static void sp_set_status(otelprof_span *span, otelprof_span_status code, const char *description)
{
    struct sdk_span *s = (struct sdk_span *)span;
    /* Spec (API, Set Status): UNSET is ignored; OK is final; the description only goes
     * with ERROR. */
    if (code == OTELPROF_SPAN_STATUS_UNSET || s->status == OTELPROF_SPAN_STATUS_OK)
        return;
    if (code == OTELPROF_SPAN_STATUS_OK) {
        s->status = code;
        free(s->status_desc);
        s->status_desc = NULL;
    } else if (code == OTELPROF_SPAN_STATUS_ERROR) {
        char *d = description && *description ? ots_strdup(description) : NULL;
        s->status = code;
        free(s->status_desc);
        s->status_desc = d;
    }
}

static void sp_update_name(otelprof_span *span, const char *name)
{
    struct sdk_span *s = (struct sdk_span *)span;
    if (name)
        (void)span_set_name(s, name); /* on failure the old name stays */
}

static void span_free(struct sdk_span *s)
{
    for (size_t i = 0; i < s->n_attrs; i++)
        kv_free(s, s->attrs[i].key);
    if (s->attrs != s->attrs_inl)
        free(s->attrs);
    free(s->events);
    free(s->links);
    if (s->name != s->name_inl)
        free(s->name);
    free(s->status_desc);
    ots_arena_free(&s->arena);
    span_release(s);
}

static void sp_end(otelprof_span *span, uint64_t end_time_ns)
{
    struct sdk_span *s = (struct sdk_span *)span;
    struct sdk_provider *p = s->t->p;
    if (!end_time_ns) {
        /* Measured on the monotonic clock from the start, so a wall-clock step between
         * start and end cannot give a negative or inflated duration. */
        end_time_ns =
            s->explicit_start ? ots_now_ns() : s->start_ns + (ots_mono_ns() - s->start_mono);
    }
    if (!atomic_load_explicit(&p->shut, memory_order_acquire) && p->n_procs) {
        otelprof_span_data d = {
            .parent_is_remote = s->parent_is_remote,
            .name = s->name,
            .kind = s->kind,
            .start_time_ns = s->start_ns,
            .end_time_ns = end_time_ns,
            .attrs = s->attrs,
            .n_attrs = s->n_attrs,
            .dropped_attrs = s->dropped_attrs,
            .events = s->events,
            .n_events = s->n_events,
            .dropped_events = s->dropped_events,
            .links = s->links,
            .n_links = s->n_links,
            .dropped_links = s->dropped_links,
            .status = s->status,
            .status_description = s->status_desc,
            .scope = &s->t->scope,
            .resource = p->resource,
        };
        memcpy(&d.context, &s->ctx, sizeof d.context);
        memcpy(d.parent_span_id, s->parent_span_id, 8);
        for (size_t i = 0; i < p->n_procs; i++)
            if (PROC_HAS(p->procs[i], on_end))
                p->procs[i]->ops->on_end(p->procs[i], &d);
    }
    span_free(s);
}

static const otelprof_span_ops sdk_span_ops = {
    .sz = sizeof(otelprof_span_ops),
    .context = sp_context,
    .is_recording = sp_is_recording,
    .set_attributes = sp_set_attributes,
    .add_event = sp_add_event,
    .add_link = sp_add_link,
    .set_status = sp_set_status,
    .update_name = sp_update_name,
    .end = sp_end,
};

/* ---- ids: the user's generator, else (or when it gives an invalid id) the built-in ---- */

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void warn_bad_id(struct sdk_provider *p, const char *what)
{
    if (!atomic_exchange_explicit(&p->warned_bad_id, true, memory_order_relaxed))
        ots_log(OTELPROF_LOG_WARN,
                "id generator: an all-zero (invalid) %s id; using the built-in generator for it "
                "(warned once per provider)",
                what);
}

/* Returns the trace flags a root span with this id gets. */
static uint8_t new_trace_id(struct sdk_provider *p, uint8_t out[16])
{
    if (p->gen.generate_trace_id) {
        memset(out, 0, 16); /* a callback that writes nothing gives an invalid id */
        p->gen.generate_trace_id(p->gen.arg, out);
        if (!all_zero(out, 16))
            return p->gen.random_trace_ids ? OTELPROF_FLAG_RANDOM_TRACE_ID : 0;
        warn_bad_id(p, "trace");
    }
    ots_new_trace_id(out);
    return OTELPROF_FLAG_RANDOM_TRACE_ID; /* the built-in ids are random */
}

static void new_span_id(struct sdk_provider *p, uint8_t out[8])
{
    if (p->gen.generate_span_id) {
        memset(out, 0, 8);
        p->gen.generate_span_id(p->gen.arg, out);
        if (!all_zero(out, 8))
            return;
        warn_bad_id(p, "span");
    }
    ots_new_span_id(out);
}

/* ---- tracer ---- */

static otelprof_span *tr_start_span(otelprof_tracer *tracer, const char *name,
                                    const otelprof_span_start_opts *opts)
{
    struct sdk_tracer *t = (struct sdk_tracer *)tracer;
    struct sdk_provider *p = t->p;
    otelprof_span_start_opts o;
    ots_start_opts_read(opts, &o);
    const otelprof_span_context *parent = ots_resolve_parent(&o);
    if (atomic_load_explicit(&p->shut, memory_order_acquire))
        return ots_nonrecording_span_new(parent); /* spec: no-op behaviour after shutdown */
    if (!name)
        name = "";
    otelprof_span_kind kind =
        o.kind >= OTELPROF_SPAN_KIND_INTERNAL && o.kind <= OTELPROF_SPAN_KIND_CONSUMER
            ? o.kind
            : OTELPROF_SPAN_KIND_INTERNAL;
    const otelprof_kv *attrs = o.attrs && o.n_attrs ? o.attrs : NULL;
    size_t n_attrs = attrs ? o.n_attrs : 0;

    /* SDK span creation, in the spec's order: trace id, sampler, span id. */
    otelprof_span_context ctx;
    memset(&ctx, 0, sizeof ctx);
    if (parent) {
        memcpy(ctx.trace_id, parent->trace_id, 16);
        memcpy(&ctx.tracestate, &parent->tracestate, sizeof ctx.tracestate);
        ctx.trace_flags = parent->trace_flags & OTELPROF_FLAG_RANDOM_TRACE_ID;
    } else {
        ctx.trace_flags = new_trace_id(p, ctx.trace_id);
    }
    /* The links exactly as given (ShouldSample's input), before the span filters them. */
    otelprof_sampling_params sp = {
        .sz = sizeof sp,
        .parent = parent,
        .trace_id = ctx.trace_id,
        .name = name,
        .kind = kind,
        .attrs = attrs,
        .n_attrs = n_attrs,
        .links = o.links && o.n_links ? o.links : NULL,
        .n_links = o.links ? o.n_links : 0,
    };
    otelprof_sampling_decision dec =
        otelprof_sampler_should_sample(p->sampler, &sp, &ctx.tracestate);
    new_span_id(p, ctx.span_id);
    if (dec == OTELPROF_SAMPLING_RECORD_AND_SAMPLE)
        ctx.trace_flags |= OTELPROF_FLAG_SAMPLED;
    if (dec != OTELPROF_SAMPLING_RECORD_ONLY && dec != OTELPROF_SAMPLING_RECORD_AND_SAMPLE)
        return ots_nonrecording_span_new(&ctx);

    struct sdk_span *s = span_alloc();
    if (!s || !span_set_name(s, name)) {
        if (s)
            span_release(s);
        /* Cannot record: the spec forbids sampled and non-recording together. */
        ctx.trace_flags &= (uint8_t)~OTELPROF_FLAG_SAMPLED;
        return ots_nonrecording_span_new(&ctx);
    }
    s->base.ops = &sdk_span_ops;
    memcpy(&s->ctx, &ctx, sizeof ctx);
    s->t = t;
    s->kind = kind;
    if (parent) {
        memcpy(s->parent_span_id, parent->span_id, 8);
        s->parent_is_remote = parent->is_remote;
    }
    s->start_mono = ots_mono_ns();
    s->explicit_start = o.start_time_ns != 0;
    s->start_ns = o.start_time_ns ? o.start_time_ns : ots_now_ns();
    span_put_attrs(s, attrs, n_attrs);
    for (size_t i = 0; o.links && i < o.n_links; i++)
        span_add_link(s, &o.links[i]);
    for (size_t i = 0; i < p->n_procs; i++)
        if (PROC_HAS(p->procs[i], on_start))
            p->procs[i]->ops->on_start(p->procs[i], &s->base, parent);
    return &s->base;
}

static const otelprof_tracer_ops sdk_tracer_ops = {
    .sz = sizeof(otelprof_tracer_ops),
    .start_span = tr_start_span,
};

/* ---- provider ---- */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void tracer_free(struct sdk_tracer *t)
{
    free((void *)t->scope.name);
    free((void *)t->scope.version);
    free((void *)t->scope.schema_url);
    free(t);
}

static otelprof_tracer *pr_get_tracer(otelprof_tracer_provider *provider, const char *name,
                                      const char *version, const char *schema_url)
{
    struct sdk_provider *p = (struct sdk_provider *)provider;
    if (atomic_load_explicit(&p->shut, memory_order_acquire))
        return ots_noop_tracer(); /* spec: a working no-op tracer after shutdown */
    if (!name) {
        ots_log(OTELPROF_LOG_WARN, "get_tracer: NULL name; using \"\"");
        name = "";
    }
    pthread_mutex_lock(&p->lock);
    struct sdk_tracer *t;
    for (t = p->tracers; t; t = t->next)
        if (strcmp(t->scope.name, name) == 0 && str_eq(t->scope.version, version) &&
            str_eq(t->scope.schema_url, schema_url))
            break;
    if (!t) {
        t = calloc(1, sizeof *t);
        if (t) {
            t->base.ops = &sdk_tracer_ops;
            t->p = p;
            t->scope.name = ots_strdup(name);
            t->scope.version = ots_strdup(version);
            t->scope.schema_url = ots_strdup(schema_url);
            if (!t->scope.name || (version && !t->scope.version) ||
                (schema_url && !t->scope.schema_url)) {
                tracer_free(t);
                t = NULL;
            } else {
                t->next = p->tracers;
                p->tracers = t;
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
    /* Out of memory: a no-op tracer still lets the caller run. */
    return t ? &t->base : ots_noop_tracer();
}

static otelprof_status pr_force_flush(otelprof_tracer_provider *provider, uint32_t timeout_ms)
{
    struct sdk_provider *p = (struct sdk_provider *)provider;
    uint64_t deadline = ots_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    otelprof_status rc = OTELPROF_OK;
    for (size_t i = 0; i < p->n_procs; i++) {
        if (!PROC_HAS(p->procs[i], force_flush))
            continue;
        otelprof_status r = p->procs[i]->ops->force_flush(p->procs[i], remaining_ms(deadline));
        if (r != OTELPROF_OK && rc == OTELPROF_OK)
            rc = r;
    }
    return rc;
}

static otelprof_status pr_shutdown(otelprof_tracer_provider *provider, uint32_t timeout_ms)
{
    struct sdk_provider *p = (struct sdk_provider *)provider;
    if (atomic_exchange_explicit(&p->shut, true, memory_order_acq_rel)) {
        ots_log(OTELPROF_LOG_WARN, "tracer provider: shutdown called again; ignored");
        return OTELPROF_OK;
    }
    uint64_t deadline = ots_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    otelprof_status rc = OTELPROF_OK;
    for (size_t i = 0; i < p->n_procs; i++) {
        if (!PROC_HAS(p->procs[i], shutdown))
            continue;
        otelprof_status r = p->procs[i]->ops->shutdown(p->procs[i], remaining_ms(deadline));
        if (r != OTELPROF_OK && rc == OTELPROF_OK)
            rc = r;
    }
    return rc;
}

static void free_owned(otelprof_resource *r, otelprof_sampler *s,
                       otelprof_span_processor *const *procs, size_t n,
                       const otelprof_id_generator *gen)
{
    /* Processors first: a batch worker still exporting after a timed-out shutdown reads
     * span data that points at the resource (and the tracers' scopes, freed later). */
    for (size_t i = 0; procs && i < n; i++)
        otelprof_span_processor_free(procs[i]);
    otelprof_resource_free(r);
    otelprof_sampler_free(s);
    if (gen->free)
        gen->free(gen->arg);
}

static void pr_free(otelprof_tracer_provider *provider)
{
    struct sdk_provider *p = (struct sdk_provider *)provider;
    if (!atomic_load_explicit(&p->shut, memory_order_acquire))
        (void)pr_shutdown(provider, DEFAULT_SHUTDOWN_TIMEOUT);
    free_owned(p->resource, p->sampler, p->procs, p->n_procs, &p->gen);
    free(p->procs);
    for (struct sdk_tracer *t = p->tracers; t;) {
        struct sdk_tracer *next = t->next;
        tracer_free(t);
        t = next;
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const otelprof_tracer_provider_ops sdk_provider_ops = {
    .sz = sizeof(otelprof_tracer_provider_ops),
    .get_tracer = pr_get_tracer,
    .force_flush = pr_force_flush,
    .shutdown = pr_shutdown,
    .free = pr_free,
};

/* A zero field takes the model-specific variable, then the general one, then the default. */
static uint32_t limit_from_env(uint32_t given, const char *specific, const char *general,
                               uint32_t dflt, uint32_t max)
{
    if (given)
        return given;
    uint32_t v;
    if (specific && ots_env_u32(specific, max, &v))
        return v;
    if (general && ots_env_u32(general, max, &v))
        return v;
    return dflt;
}

static void resolve_limits(const otelprof_span_limits *in, struct limits *out)
{
    const uint32_t cmax = 0x7fffffff, lmax = UINT32_MAX - 1;
    out->attr_count = limit_from_env(in->attribute_count, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                                     "OTEL_ATTRIBUTE_COUNT_LIMIT", DEFAULT_COUNT_LIMIT, cmax);
    out->attr_len =
        limit_from_env(in->attribute_value_length, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                       "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", UNLIMITED, lmax);
    out->event_count = limit_from_env(in->event_count, "OTEL_SPAN_EVENT_COUNT_LIMIT", NULL,
                                      DEFAULT_COUNT_LIMIT, cmax);
    out->link_count = limit_from_env(in->link_count, "OTEL_SPAN_LINK_COUNT_LIMIT", NULL,
                                     DEFAULT_COUNT_LIMIT, cmax);
    out->attrs_per_event =
        limit_from_env(in->attributes_per_event, "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                       "OTEL_ATTRIBUTE_COUNT_LIMIT", DEFAULT_COUNT_LIMIT, cmax);
    out->attrs_per_link = limit_from_env(in->attributes_per_link, "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
                                         "OTEL_ATTRIBUTE_COUNT_LIMIT", DEFAULT_COUNT_LIMIT, cmax);
}

otelprof_tracer_provider *otelprof_sdk_provider_new(const otelprof_sdk_opts *opts,
                                                    otelprof_status *err)
{
    otelprof_sdk_opts o;
    memset(&o, 0, sizeof o);
    otelprof_status rc = OTELPROF_OK;
    if (opts) {
        rc = ots_opts_check(opts, opts->sz, sizeof o);
        if (opts->sz >= sizeof(size_t))
            memcpy(&o, opts, opts->sz < sizeof o ? opts->sz : sizeof o);
    }
    if (o.n_processors && !o.processors)
        rc = OTELPROF_E_INVAL;
    /* The generator's known fields are copied even when something is wrong, so that its
     * free callback runs on the error path as on success. */
    otelprof_id_generator gen;
    memset(&gen, 0, sizeof gen);
    if (o.id_generator) {
        otelprof_status g = ots_opts_check(o.id_generator, o.id_generator->sz, sizeof gen);
        if (o.id_generator->sz >= sizeof(size_t))
            memcpy(&gen, o.id_generator,
                   o.id_generator->sz < sizeof gen ? o.id_generator->sz : sizeof gen);
        if (rc == OTELPROF_OK)
            rc = g;
    }
    struct sdk_provider *p = NULL;
    if (rc == OTELPROF_OK) {
        p = calloc(1, sizeof *p);
        if (!p || pthread_mutex_init(&p->lock, NULL) != 0) {
            free(p);
            p = NULL;
            rc = OTELPROF_E_NOMEM;
        }
    }
    if (p && o.n_processors) {
        p->procs = calloc(o.n_processors, sizeof *p->procs);
        if (!p->procs)
            rc = OTELPROF_E_NOMEM;
    }
    if (p && rc == OTELPROF_OK) {
        p->resource = o.resource ? o.resource : otelprof_resource_new_from_env();
        p->sampler = o.sampler ? o.sampler : otelprof_sampler_from_env();
        if (!p->resource || !p->sampler)
            rc = OTELPROF_E_NOMEM;
        /* Keep the caller's objects separate from the defaults made here, for the error path. */
        if (rc != OTELPROF_OK) {
            if (!o.resource)
                otelprof_resource_free(p->resource);
            if (!o.sampler)
                otelprof_sampler_free(p->sampler);
        }
    }
    if (rc != OTELPROF_OK) {
        /* Ownership was handed over: release what the caller passed, as on success. */
        free_owned(o.resource, o.sampler, o.processors, o.n_processors, &gen);
        if (p) {
            free(p->procs);
            pthread_mutex_destroy(&p->lock);
            free(p);
        }
        if (err)
            *err = rc;
        return NULL;
    }
    p->base.ops = &sdk_provider_ops;
    for (size_t i = 0; i < o.n_processors; i++)
        if (o.processors[i])
            p->procs[p->n_procs++] = o.processors[i];
    resolve_limits(&o.limits, &p->lim);
    atomic_init(&p->shut, false);
    p->gen = gen;
    atomic_init(&p->warned_bad_id, false);
    if (err)
        *err = OTELPROF_OK;
    return &p->base;
}
