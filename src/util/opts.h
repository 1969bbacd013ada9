/* Options structs that grow without breaking the ABI (libbpf OPTS convention): the first
 * field is `size_t sz`, set by the caller to the size of the struct it was compiled with.
 * Header-only, so libotelprof and libotelprof-trace share it without exporting it. */
#ifndef OTELPROF_UTIL_OPTS_H
#define OTELPROF_UTIL_OPTS_H

#include <otelprof/common.h>

#include <string.h>

/* Check a caller's options struct against ours (ours_size bytes): refuses a size that
 * cannot even hold `sz`, and non-zero bytes beyond what we know (a newer caller asking
 * for something this library cannot do). */
static inline otelprof_status op_opts_check(const void *src, size_t ours_size)
{
    size_t sz;
    memcpy(&sz, src, sizeof sz);
    if (sz < sizeof(size_t))
        return OTELPROF_E_INVAL;
    const unsigned char *b = (const unsigned char *)src;
    for (size_t i = ours_size; i < sz; i++)
        if (b[i])
            return OTELPROF_E_OPTS;
    return OTELPROF_OK;
}

/* op_opts_check, then copy the part of the caller's struct that both know into *dst,
 * whose other fields keep their defaults. src NULL: nothing to copy. */
static inline otelprof_status op_opts_copy(void *dst, size_t dst_size, const void *src)
{
    if (!src)
        return OTELPROF_OK;
    otelprof_status rc = op_opts_check(src, dst_size);
    if (rc != OTELPROF_OK)
        return rc;
    size_t sz;
    memcpy(&sz, src, sizeof sz);
    memcpy(dst, src, sz < dst_size ? sz : dst_size);
    return OTELPROF_OK;
}

#endif
