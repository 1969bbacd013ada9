/* Shared bits of the libFuzzer targets: a check that aborts (so libFuzzer reports the
 * input) even in builds with NDEBUG. */
#ifndef OTELPROF_FUZZ_COMMON_H
#define OTELPROF_FUZZ_COMMON_H

#include <otelprof/propagation.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
