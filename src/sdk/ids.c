/* Trace and span ids: a per-thread xoshiro256** generator seeded from getrandom().
 *
 * Per thread, so generating an id takes no lock. A forked child would otherwise repeat
 * its parent's sequence: a pthread_atfork child handler bumps a generation counter and
 * each thread reseeds when its generation is stale. Ids are never all zero (W3C: invalid),
 * and the 56 right-most bits of trace ids are random, so the SDK sets the W3C random flag.
 */
#define _GNU_SOURCE
#include "sdk_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct rng {
    uint64_t s[4];
    unsigned long gen; /* fork generation the state was seeded in; 0: never seeded */
};

static __thread struct rng tls_rng;
static atomic_ulong fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void seed(struct rng *r, unsigned long gen)
{
    uint64_t s[4] = {0, 0, 0, 0};
    size_t got = 0;
    while (got < sizeof s) {
        ssize_t n = getrandom((char *)s + got, sizeof s - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof s) {
        /* No getrandom (old kernel, seccomp): mix what distinguishes this thread and now. */
        uint64_t x = ots_mono_ns() ^ (ots_now_ns() << 1) ^ ((uint64_t)getpid() << 32) ^
                     (uint64_t)(uintptr_t)r ^ (uint64_t)gettid();
        for (int i = 0; i < 4; i++)
            s[i] ^= splitmix64(&x);
    }
    /* xoshiro's state must not be all zero. */
    if (!(s[0] | s[1] | s[2] | s[3]))
        s[0] = 0x9e3779b97f4a7c15u;
    memcpy(r->s, s, sizeof s);
    r->gen = gen;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(void)
{
    struct rng *r = &tls_rng;
    unsigned long gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    if (r->gen != gen) {
        /* The handler is in place before the first seed, so no fork can go unnoticed. */
        pthread_once(&atfork_once, atfork_register);
        seed(r, atomic_load_explicit(&fork_gen, memory_order_relaxed));
    }
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

void ots_new_trace_id(uint8_t out[16])
{
    uint64_t hi, lo;
    do {
        hi = next_u64();
        lo = next_u64();
    } while (!(hi | lo));
    put_be64(out, hi);
    put_be64(out + 8, lo);
}

void ots_new_span_id(uint8_t out[8])
{
    uint64_t v;
    do {
        v = next_u64();
    } while (!v);
    put_be64(out, v);
}

void otelprof_random_trace_id(uint8_t out[16])
{
    ots_new_trace_id(out);
}

void otelprof_random_span_id(uint8_t out[8])
{
    ots_new_span_id(out);
}
