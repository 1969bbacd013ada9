/* A fast 64-bit hash of short byte strings (attribute keys and values), header-only so that
 * the wrapper's cardinality guard and the SDK's attribute lookup share it. Not for hash
 * tables that face untrusted input at scale: it is not seeded. */
#ifndef OTELPROF_UTIL_HASH_H
#define OTELPROF_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t op_hash_mix(uint64_t x)
{
    x *= UINT64_C(0xff51afd7ed558ccd);
    return x ^ (x >> 32);
}

/* Whole words (the last one overlapping) rather than a byte loop, the length folded in.
 * Never 0, so that 0 can mean "empty". */
static inline uint64_t op_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) * (n + 1), w;
    if (n >= 8) {
        for (size_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&w, s + i, 8);
            h = op_hash_mix(h ^ w);
        }
        memcpy(&w, s + n - 8, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        w = a | (uint64_t)b << 32;
    } else {
        w = 0;
        for (size_t i = 0; i < n; i++)
            w = w << 8 | s[i];
    }
    h = op_hash_mix(h ^ w);
    return h ? h : 1;
}

#endif
