/* Batch span processor (trace SDK spec, "Batching processor").
 *
 * on_end copies the finished span into a bounded lock-free queue and returns; it never
 * waits for the exporter, a lock or the worker. The queue is a bounded multi-producer ring
 * with a sequence number per cell (the design D. Vyukov published for bounded MPMC
 * queues): producers claim a position with one CAS and publish the cell with a release
 * store; the one background thread consumes in order. A separate counter reserves a place
 * before anything is copied, so the queue holds at most max_queue_size spans exactly; a
 * span that finds it full is dropped and counted.
 *
 * Copies live in buffers that the worker hands back after the export, through a second
 * ring of the same kind (the pool), so that a steady stream of spans allocates nothing:
 * malloc on the application thread and free on the worker defeat malloc's per-thread
 * caches (measured: 631 -> 360 ns per span in bench_wrap's batch configuration). The pool
 * holds only as many buffers as were ever in flight at once, at most POOL_MAX, each of 1,
 * 2 or 4 KiB (enough for the largest copy it held); a larger copy gets a buffer of its
 * own, freed after its export.
 *
 * The worker sleeps on a semaphore (sem_post never blocks, so producers can wake it) until
 * max_export_batch_size spans are queued, the schedule delay has passed since the last
 * export, or force_flush/shutdown asks; then it exports everything queued, in batches.
 * force_flush and shutdown wait for the worker on a condition variable, bounded by their
 * timeout. Only the worker calls export_spans, so exports are serialised.
 *
 * Fork: the worker does not exist in a child. The child's copy drops what it is given once
 * its queue is full, and its shutdown/free do not wait for or join the missing thread. */
#define _GNU_SOURCE
#include "sdk_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_QUEUE   2048u
#define DEFAULT_DELAY   5000u
#define DEFAULT_TIMEOUT 30000u
#define DEFAULT_BATCH   512u
#define MAX_QUEUE       (1u << 24)

#define BUF_KEEP_MAX 4096u  /* larger span copies are not pooled */
#define BUF_MIN      1024u  /* pooled buffers: this, 2048 or 4096 bytes */
#define POOL_MAX     65536u /* buffers kept; more in flight at once are freed after export */

struct cell {
    _Atomic uint64_t seq;
    void *item;
};

/* Bounded MPMC ring of pointers (Vyukov). head and tail 64 bytes apart, on lines of their
 * own: producers and the consumer would otherwise share one (padding rather than _Alignas,
 * which calloc would not honour). */
struct ring {
    struct cell *cells;
    uint64_t mask;
    char pad0[64];
    _Atomic uint64_t head; /* next position to fill */
    char pad1[64 - sizeof(uint64_t)];
    _Atomic uint64_t tail; /* next position to take */
    char pad2[64 - sizeof(uint64_t)];
};

/* A span copy's memory. */
struct sbuf {
    size_t cap; /* bytes at data */
    _Alignas(16) unsigned char data[];
};

struct batch {
    otelprof_span_processor base;
    otelprof_span_exporter *exp;
    otelprof_batch_opts o;      /* resolved */
    struct ring q;              /* span copies (otelprof_span_data *, in an sbuf) */
    struct ring pool;           /* free sbufs */
    atomic_uint_fast32_t count; /* places reserved in q: queued or being queued */
    sem_t wake;
    atomic_bool wake_pending;
    atomic_bool shut;
    otelprof_span_data **scratch; /* one export batch; worker only */
    pthread_t thr;
    pid_t pid; /* of the process that started the worker */
    bool joined, exporter_shut;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    uint64_t flush_req, flush_done;
    otelprof_status flush_rc; /* the exporter's force_flush result for flush_done */
    bool stop, exited;
    _Atomic uint64_t enqueued, exported, dropped, failures;
};

/* ---- options ---- */

static void env_opt(const char *name, uint32_t max, uint32_t *field, uint32_t dflt)
{
    uint32_t v;
    *field = dflt;
    if (!ots_env_u32(name, max, &v))
        return;
    if (v == 0) {
        ots_log(OTELPROF_LOG_WARN, "%s=0 is not allowed; using %u", name, dflt);
        return;
    }
    *field = v;
}

void ots_batch_opts_resolve(const otelprof_batch_opts *in, otelprof_batch_opts *out)
{
    otelprof_batch_opts o;
    memset(&o, 0, sizeof o);
    if (in && in->sz >= sizeof(size_t))
        memcpy(&o, in, in->sz < sizeof o ? in->sz : sizeof o);
    o.sz = sizeof o;
    if (!o.max_queue_size)
        env_opt("OTEL_BSP_MAX_QUEUE_SIZE", MAX_QUEUE, &o.max_queue_size, DEFAULT_QUEUE);
    if (!o.schedule_delay_ms)
        env_opt("OTEL_BSP_SCHEDULE_DELAY", UINT32_MAX, &o.schedule_delay_ms, DEFAULT_DELAY);
    if (!o.export_timeout_ms)
        env_opt("OTEL_BSP_EXPORT_TIMEOUT", UINT32_MAX, &o.export_timeout_ms, DEFAULT_TIMEOUT);
    if (!o.max_export_batch_size)
        env_opt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", MAX_QUEUE, &o.max_export_batch_size,
                DEFAULT_BATCH);
    if (o.max_queue_size > MAX_QUEUE)
        o.max_queue_size = MAX_QUEUE;
    if (o.max_export_batch_size > o.max_queue_size) {
        /* The spec: the batch size must not exceed the queue size. */
        ots_log(OTELPROF_LOG_WARN,
                "batch span processor: max_export_batch_size %u > max_queue_size %u; using %u",
                o.max_export_batch_size, o.max_queue_size, o.max_queue_size);
        o.max_export_batch_size = o.max_queue_size;
    }
    *out = o;
}

/* ---- the rings ---- */

static bool ring_init(struct ring *r, uint64_t min_cap)
{
    uint64_t cap = 1;
    while (cap < min_cap)
        cap <<= 1;
    r->mask = cap - 1;
    r->cells = calloc(cap, sizeof *r->cells);
    if (!r->cells)
        return false;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&r->cells[i].seq, i);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return true;
}

/* false when full. */
static bool ring_push(struct ring *r, void *item)
{
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        struct cell *c = &r->cells[pos & r->mask];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->item = item;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

/* The oldest item, or NULL (empty, or its producer has not finished publishing it). */
static void *ring_pop(struct ring *r)
{
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        struct cell *c = &r->cells[pos & r->mask];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - (pos + 1));
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                void *item = c->item;
                atomic_store_explicit(&c->seq, pos + r->mask + 1, memory_order_release);
                return item;
            }
        } else if (diff < 0) {
            return NULL;
        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

static otelprof_span_data *queue_pop(struct batch *b)
{
    otelprof_span_data *item = ring_pop(&b->q);
    if (item)
        atomic_fetch_sub_explicit(&b->count, 1, memory_order_release);
    return item;
}

/* ---- span copy buffers ---- */

/* A buffer of at least `need` bytes: from the pool when the copy is one it keeps. */
static struct sbuf *buf_get(struct batch *b, size_t need)
{
    struct sbuf *sb = need <= BUF_KEEP_MAX ? ring_pop(&b->pool) : NULL;
    if (sb && sb->cap >= need)
        return sb;
    free(sb); /* too small: replaced by a larger one (its bytes need no copying) */
    size_t cap = need;
    if (need <= BUF_KEEP_MAX) /* few sizes: a pool converges after a few replacements */
        for (cap = BUF_MIN; cap < need; cap *= 2)
            ;
    sb = malloc(sizeof *sb + cap);
    if (sb)
        sb->cap = cap;
    return sb;
}

static struct sbuf *buf_of(const otelprof_span_data *d)
{
    return (struct sbuf *)(void *)((unsigned char *)(uintptr_t)d - offsetof(struct sbuf, data));
}

/* Back to the pool, or freed (too large to keep, or the pool is full). */
static void buf_put(struct batch *b, struct sbuf *sb)
{
    if (sb->cap > BUF_KEEP_MAX || !ring_push(&b->pool, sb))
        free(sb);
}

/* ---- processor operations ---- */

static void bp_on_start(otelprof_span_processor *p, otelprof_span *span,
                        const otelprof_span_context *parent)
{
    (void)p, (void)span, (void)parent;
}

static void bp_on_end(otelprof_span_processor *proc, const otelprof_span_data *span)
{
    struct batch *b = (struct batch *)proc;
    if (!(span->context.trace_flags & OTELPROF_FLAG_SAMPLED) ||
        atomic_load_explicit(&b->shut, memory_order_relaxed))
        return;
    uint_fast32_t n = atomic_fetch_add_explicit(&b->count, 1, memory_order_relaxed);
    if (n >= b->o.max_queue_size) {
        atomic_fetch_sub_explicit(&b->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
        return;
    }
    struct sbuf *sb = buf_get(b, ots_span_data_clone_size(span));
    otelprof_span_data *copy = sb ? ots_span_data_clone_into(span, sb->data) : NULL;
    if (!copy || !ring_push(&b->q, copy)) {
        /* Out of memory; a full ring cannot happen while count bounds the queue. */
        if (sb)
            buf_put(b, sb);
        atomic_fetch_sub_explicit(&b->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&b->enqueued, 1, memory_order_relaxed);
    if (n + 1 >= b->o.max_export_batch_size &&
        !atomic_exchange_explicit(&b->wake_pending, true, memory_order_acq_rel))
        sem_post(&b->wake);
}

/* Export what is queued, in batches. all: also wait briefly for spans whose producers are
 * still publishing them (flush and shutdown promise everything received before the call). */
static void drain(struct batch *b, bool all)
{
    int stalls = 0;
    for (;;) {
        size_t k = 0;
        otelprof_span_data *item;
        while (k < b->o.max_export_batch_size && (item = queue_pop(b)))
            b->scratch[k++] = item;
        if (k) {
            otelprof_export_result r =
                OTS_HAS_OP(b->exp, otelprof_span_exporter_ops, export_spans)
                    ? b->exp->ops->export_spans(b->exp,
                                                (const otelprof_span_data *const *)b->scratch, k)
                    : OTELPROF_EXPORT_FAILURE;
            atomic_fetch_add_explicit(r == OTELPROF_EXPORT_SUCCESS ? &b->exported : &b->failures, k,
                                      memory_order_relaxed);
            if (r != OTELPROF_EXPORT_SUCCESS)
                ots_log(OTELPROF_LOG_WARN, "batch span processor: export of %zu spans failed", k);
            for (size_t i = 0; i < k; i++)
                buf_put(b, buf_of(b->scratch[i]));
            /* Another batch only if a full one is waiting (or everything goes): spans that
             * arrived during the export wait for a full batch or the delay, as specified. */
            if (k == b->o.max_export_batch_size &&
                (all || atomic_load_explicit(&b->count, memory_order_acquire) >=
                            b->o.max_export_batch_size))
                continue;
        }
        /* Empty, or the next cell is still being published by a preempted producer. */
        if (!all || atomic_load_explicit(&b->count, memory_order_acquire) == 0 || ++stalls > 1000)
            return;
        sched_yield();
    }
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *worker(void *arg)
{
    struct batch *b = arg;
    uint64_t flushed = 0;
    struct timespec deadline;
    deadline_after(&deadline, b->o.schedule_delay_ms);
    for (;;) {
        pthread_mutex_lock(&b->mu);
        bool stop = b->stop;
        uint64_t want = b->flush_req;
        pthread_mutex_unlock(&b->mu);
        bool flush = want != flushed;
        bool full =
            atomic_load_explicit(&b->count, memory_order_acquire) >= b->o.max_export_batch_size;
        if (!stop && !flush && !full) {
            if (sem_clockwait(&b->wake, CLOCK_MONOTONIC, &deadline) == 0 || errno != ETIMEDOUT)
                continue; /* woken (or EINTR): look at why */
        }
        atomic_store_explicit(&b->wake_pending, false, memory_order_release);
        uint64_t before = atomic_load_explicit(&b->q.tail, memory_order_relaxed);
        drain(b, stop || flush);
        /* The exporter's verdict on what it was given (the OTLP exporter reports an export
         * that ran out of time as OTELPROF_E_TIMEOUT) goes back to the flush callers. */
        otelprof_status frc = OTELPROF_OK;
        if (flush && OTS_HAS_OP(b->exp, otelprof_span_exporter_ops, force_flush))
            frc = b->exp->ops->force_flush(b->exp, b->o.export_timeout_ms);
        if (full && !flush && !stop &&
            atomic_load_explicit(&b->q.tail, memory_order_relaxed) == before) {
            /* Full of spans still being published: give their producers a moment. */
            struct timespec ms = {0, 1000000L};
            nanosleep(&ms, NULL);
        }
        deadline_after(&deadline, b->o.schedule_delay_ms);
        if (flush || stop) {
            pthread_mutex_lock(&b->mu);
            b->flush_done = want;
            b->flush_rc = frc;
            if (stop)
                b->exited = true;
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
            flushed = want;
        }
        if (stop)
            return NULL;
    }
}

/* Wait on cv until cond holds or the timeout passes; true when it holds. Called locked. */
static bool wait_done(struct batch *b, uint64_t flush_target, bool for_exit, uint32_t timeout_ms)
{
    struct timespec dl;
    deadline_after(&dl, timeout_ms);
    for (;;) {
        if (b->exited || (!for_exit && b->flush_done >= flush_target))
            return !for_exit || b->exited;
        if (pthread_cond_timedwait(&b->cv, &b->mu, &dl) == ETIMEDOUT)
            return b->exited || (!for_exit && b->flush_done >= flush_target);
    }
}

static bool in_child(const struct batch *b)
{
    return getpid() != b->pid;
}

static otelprof_status bp_force_flush(otelprof_span_processor *proc, uint32_t timeout_ms)
{
    struct batch *b = (struct batch *)proc;
    if (atomic_load_explicit(&b->shut, memory_order_relaxed))
        return OTELPROF_OK; /* spec: ignored after shutdown */
    if (in_child(b))
        return OTELPROF_E_NOT_SUPPORTED;
    pthread_mutex_lock(&b->mu);
    uint64_t mine = ++b->flush_req;
    pthread_mutex_unlock(&b->mu);
    sem_post(&b->wake);
    pthread_mutex_lock(&b->mu);
    bool ok = wait_done(b, mine, false, timeout_ms);
    otelprof_status rc = ok ? b->flush_rc : OTELPROF_E_TIMEOUT;
    pthread_mutex_unlock(&b->mu);
    if (!ok)
        ots_log(OTELPROF_LOG_WARN, "batch span processor: force_flush timed out after %u ms",
                timeout_ms);
    return rc;
}

static otelprof_status bp_shutdown(otelprof_span_processor *proc, uint32_t timeout_ms)
{
    struct batch *b = (struct batch *)proc;
    if (atomic_exchange_explicit(&b->shut, true, memory_order_relaxed))
        return OTELPROF_OK;
    if (in_child(b))
        return OTELPROF_OK;
    uint64_t start = ots_mono_ns();
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_mutex_unlock(&b->mu);
    sem_post(&b->wake);
    pthread_mutex_lock(&b->mu);
    bool exited = wait_done(b, 0, true, timeout_ms);
    pthread_mutex_unlock(&b->mu);
    if (!exited) {
        ots_log(OTELPROF_LOG_WARN,
                "batch span processor: shutdown timed out after %u ms (the exporter is still "
                "busy; free waits for it)",
                timeout_ms);
        return OTELPROF_E_TIMEOUT;
    }
    pthread_join(b->thr, NULL);
    b->joined = true;
    uint64_t used = (ots_mono_ns() - start) / 1000000u;
    b->exporter_shut = true;
    if (OTS_HAS_OP(b->exp, otelprof_span_exporter_ops, shutdown))
        return b->exp->ops->shutdown(b->exp, used >= timeout_ms ? 0 : timeout_ms - (uint32_t)used);
    return OTELPROF_OK;
}

static void bp_free(otelprof_span_processor *proc)
{
    struct batch *b = (struct batch *)proc;
    if (!atomic_load_explicit(&b->shut, memory_order_relaxed))
        (void)bp_shutdown(proc, b->o.export_timeout_ms);
    if (!b->joined && !in_child(b)) {
        /* shutdown timed out: the worker finishes its export, then exits. */
        pthread_join(b->thr, NULL);
        b->joined = true;
    }
    if (!b->exporter_shut && !in_child(b) &&
        OTS_HAS_OP(b->exp, otelprof_span_exporter_ops, shutdown))
        (void)b->exp->ops->shutdown(b->exp, b->o.export_timeout_ms);
    otelprof_span_data *item;
    while ((item = queue_pop(b)))
        free(buf_of(item)); /* queued after the last drain (producers racing with shutdown) */
    struct sbuf *sb;
    while ((sb = ring_pop(&b->pool)))
        free(sb);
    otelprof_span_exporter_free(b->exp);
    if (!in_child(b)) {
        /* A child's copies may have been taken mid-operation: leave them alone. */
        sem_destroy(&b->wake);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
    }
    free(b->scratch);
    free(b->q.cells);
    free(b->pool.cells);
    free(b);
}

static const otelprof_span_processor_ops batch_ops = {
    .sz = sizeof(otelprof_span_processor_ops),
    .on_start = bp_on_start,
    .on_end = bp_on_end,
    .force_flush = bp_force_flush,
    .shutdown = bp_shutdown,
    .free = bp_free,
};

otelprof_status otelprof_batch_processor_stats(otelprof_span_processor *p,
                                               otelprof_batch_stats *out)
{
    if (!p || p->ops != &batch_ops || !out)
        return OTELPROF_E_INVAL;
    struct batch *b = (struct batch *)p;
    out->enqueued = atomic_load_explicit(&b->enqueued, memory_order_relaxed);
    out->exported = atomic_load_explicit(&b->exported, memory_order_relaxed);
    out->dropped_queue_full = atomic_load_explicit(&b->dropped, memory_order_relaxed);
    out->export_failures = atomic_load_explicit(&b->failures, memory_order_relaxed);
    return OTELPROF_OK;
}

otelprof_span_processor *otelprof_batch_processor_new(otelprof_span_exporter *e,
                                                      const otelprof_batch_opts *opts)
{
    if (!e)
        return NULL;
    if (opts) {
        otelprof_status rc = ots_opts_check(opts, opts->sz, sizeof *opts);
        if (rc != OTELPROF_OK) {
            ots_log(OTELPROF_LOG_ERROR, "batch span processor: bad options: %s",
                    otelprof_strerror(rc));
            otelprof_span_exporter_free(e);
            return NULL;
        }
    }
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        otelprof_span_exporter_free(e);
        return NULL;
    }
    b->base.ops = &batch_ops;
    b->exp = e;
    ots_batch_opts_resolve(opts, &b->o);
    /* The pool never holds more buffers than were in flight at once (queued, or in the
     * batch being exported), nor more than POOL_MAX: a queue of millions would otherwise
     * keep that many buffers, and its ring of cells (16 bytes each, all written here) would
     * be as large. Freed copies of malloc's size would mostly stay in its free lists too. */
    uint64_t in_flight = (uint64_t)b->o.max_queue_size + b->o.max_export_batch_size;
    bool ok = ring_init(&b->q, b->o.max_queue_size) &&
              ring_init(&b->pool, in_flight < POOL_MAX ? in_flight : POOL_MAX);
    b->scratch = calloc(b->o.max_export_batch_size, sizeof *b->scratch);
    ok = ok && b->scratch;
    bool mu = false, cv = false, sem = false;
    if (ok)
        ok = mu = pthread_mutex_init(&b->mu, NULL) == 0;
    if (ok) {
        pthread_condattr_t ca;
        ok = pthread_condattr_init(&ca) == 0;
        if (ok) {
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            ok = cv = pthread_cond_init(&b->cv, &ca) == 0;
            pthread_condattr_destroy(&ca);
        }
    }
    if (ok)
        ok = sem = sem_init(&b->wake, 0, 0) == 0;
    if (ok) {
        atomic_init(&b->count, 0);
        atomic_init(&b->wake_pending, false);
        atomic_init(&b->shut, false);
        b->pid = getpid();
        /* The worker must not run the application's signal handlers (profilers' SIGPROF,
         * the app's SIGTERM logic): block everything in it. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        ok = pthread_create(&b->thr, NULL, worker, b) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (ok)
            pthread_setname_np(b->thr, "otelprof-bsp");
        else
            ots_log(OTELPROF_LOG_ERROR, "batch span processor: pthread_create failed");
    }
    if (!ok) {
        if (sem)
            sem_destroy(&b->wake);
        if (cv)
            pthread_cond_destroy(&b->cv);
        if (mu)
            pthread_mutex_destroy(&b->mu);
        free(b->q.cells);
        free(b->pool.cells);
        free(b->scratch);
        free(b);
        otelprof_span_exporter_free(e);
        return NULL;
    }
    return &b->base;
}
