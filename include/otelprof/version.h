/* otelprof version, at compile time and at run time (curl style). */
#ifndef OTELPROF_VERSION_H
#define OTELPROF_VERSION_H

#include <otelprof/common.h>

#define OTELPROF_VERSION_MAJOR  0
#define OTELPROF_VERSION_MINOR  1
#define OTELPROF_VERSION_PATCH  0
#define OTELPROF_VERSION_STRING "0.1.0"
/* 0xMMmmpp, comparable with < and >. */
#define OTELPROF_VERSION_NUM                                                                       \
    ((OTELPROF_VERSION_MAJOR << 16) | (OTELPROF_VERSION_MINOR << 8) | OTELPROF_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string, e.g. "0.1.0". Thread-safe, async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_version(void);

#ifdef __cplusplus
}
#endif
#endif
