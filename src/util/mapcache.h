/* A handful of released per-thread mappings kept for the next threads (header-only, shared
 * by the core's thread states and the trace library's scope stacks).
 *
 * Servers that start and end threads all the time (grpc++'s sync server makes one every few
 * calls) would otherwise pay an mmap, a munmap and the first-touch page faults per thread for
 * each per-thread state. Slots are taken and filled with single atomic operations (no lock,
 * no ABA: a slot holds a pointer or NULL, and whoever exchanges it out owns it), so both
 * ends stay async-signal-safe. A mapping that finds no free slot is unmapped as before. */
#ifndef OTELPROF_UTIL_MAPCACHE_H
#define OTELPROF_UTIL_MAPCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define OP_MAPCACHE_SLOTS 16

typedef struct op_mapcache {
    _Atomic(void *) slot[OP_MAPCACHE_SLOTS];
} op_mapcache;

/* A cached mapping (its previous owner is gone), or NULL. */
static inline void *op_mapcache_take(op_mapcache *c)
{
    for (size_t i = 0; i < OP_MAPCACHE_SLOTS; i++) {
        if (!atomic_load_explicit(&c->slot[i], memory_order_relaxed))
            continue;
        void *p = atomic_exchange_explicit(&c->slot[i], NULL, memory_order_acquire);
        if (p)
            return p;
    }
    return NULL;
}

/* Keep p for a later thread; false when the cache is full (the caller unmaps it). */
static inline bool op_mapcache_put(op_mapcache *c, void *p)
{
    for (size_t i = 0; i < OP_MAPCACHE_SLOTS; i++) {
        void *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&c->slot[i], &expected, p, memory_order_release,
                                                    memory_order_relaxed))
            return true;
    }
    return false;
}

#endif
