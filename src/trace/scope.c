/* The calling thread's current span context: a per-thread stack of scopes.
 *
 * The stack holds copies of the contexts (so a context stays current even if the span it
 * came from ends first) in a per-thread state mapped on the thread's first scope, like the
 * core's: one anonymous mmap of about 47 KiB of address space, of which only the touched
 * pages cost memory, unmapped by a pthread key destructor when the thread exits. After that,
 * enter/leave/current neither allocate nor lock.
 *
 * Tokens work like the core's (docs/threads.md): (state id, depth, sequence). Leaving an
 * outer scope unwinds the inner ones, whose tokens then report OTELPROF_E_STALE_TOKEN.
 */
#define _GNU_SOURCE
#include "sdk/sdk_internal.h"

#include "util/mapcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#define SEQ_MASK ((UINT64_C(1) << 48) - 1)

struct sframe {
    otelprof_span_context ctx;
    uint64_t seq;
};

struct sstate {
    uint64_t id; /* unique per state, never 0: tokens carry it */
    uint32_t depth;
    uint64_t seq;
    struct sframe frames[OTELPROF_SCOPE_MAX_DEPTH];
};

static __thread struct sstate *tls_scopes;
static pthread_key_t scopes_key;
static pthread_once_t scopes_key_once = PTHREAD_ONCE_INIT;
static bool scopes_key_ok;
static atomic_uint_fast64_t scope_ids = 1;
static op_mapcache scopes_cache; /* stacks of exited threads, for the next ones */

static void scopes_destroy(void *p)
{
    struct sstate *st = p;
    if (tls_scopes == st)
        tls_scopes = NULL;
    if (!op_mapcache_put(&scopes_cache, st)) /* kept for the next thread, else unmapped */
        munmap(st, sizeof *st);
}

static void scopes_key_create(void)
{
    scopes_key_ok = pthread_key_create(&scopes_key, scopes_destroy) == 0;
}

static struct sstate *scopes_get(void)
{
    struct sstate *st = tls_scopes;
    if (st)
        return st;
    pthread_once(&scopes_key_once, scopes_key_create);
    if (!scopes_key_ok)
        return NULL;
    /* an exited thread's stack (only the header needs resetting: depth says what is in
     * use), else a new mapping */
    void *m = op_mapcache_take(&scopes_cache);
    if (m) {
        memset(m, 0, offsetof(struct sstate, frames));
    } else {
        m = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
    }
    st = m;
    st->id = atomic_fetch_add_explicit(&scope_ids, 1, memory_order_relaxed);
    if (pthread_setspecific(scopes_key, st) != 0) {
        if (!op_mapcache_put(&scopes_cache, m))
            munmap(m, sizeof *st);
        return NULL;
    }
    tls_scopes = st;
    return st;
}

otelprof_status otelprof_scope_enter(const otelprof_span_context *ctx, otelprof_scope *scope)
{
    if (!scope)
        return OTELPROF_E_INVAL;
    memset(scope, 0, sizeof *scope);
    if (!ctx)
        return OTELPROF_E_INVAL;
    struct sstate *st = scopes_get();
    if (!st)
        return OTELPROF_E_NOMEM;
    if (st->depth >= OTELPROF_SCOPE_MAX_DEPTH)
        return OTELPROF_E_DEPTH;
    struct sframe *f = &st->frames[st->depth];
    memcpy(&f->ctx, ctx, sizeof f->ctx);
    f->seq = ++st->seq & SEQ_MASK;
    st->depth++;
    scope->priv[0] = st->id;
    scope->priv[1] = ((uint64_t)st->depth << 48) | f->seq;
    return OTELPROF_OK;
}

otelprof_status otelprof_scope_leave(otelprof_scope *scope)
{
    if (!scope)
        return OTELPROF_E_INVAL;
    if (scope->priv[0] == 0 && scope->priv[1] == 0)
        return OTELPROF_OK; /* the null scope, e.g. after a failed enter */
    struct sstate *st = tls_scopes;
    if (!st || st->id != scope->priv[0])
        return OTELPROF_E_WRONG_THREAD;
    uint32_t d = (uint32_t)(scope->priv[1] >> 48);
    uint64_t seq = scope->priv[1] & SEQ_MASK;
    if (d == 0 || d > st->depth || st->frames[d - 1].seq != seq) {
        memset(scope, 0, sizeof *scope);
        return OTELPROF_E_STALE_TOKEN;
    }
    st->depth = d - 1; /* unwinds any scopes entered inside this one */
    memset(scope, 0, sizeof *scope);
    return OTELPROF_OK;
}

const otelprof_span_context *otelprof_current_span_context(void)
{
    const struct sstate *st = tls_scopes;
    if (!st || !st->depth)
        return NULL;
    const otelprof_span_context *c = &st->frames[st->depth - 1].ctx;
    /* An invalid context entered on purpose hides the outer ones: "no current span". */
    return otelprof_span_context_is_valid(c) ? c : NULL;
}
