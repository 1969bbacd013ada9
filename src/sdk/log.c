/* Warnings from the tracing library go to the core's log callback (otelprof_set_log),
 * through the core's public otelprof_log, so they reach the same place with either
 * library flavour. */
#include "sdk_internal.h"

#include <stdio.h>

void ots_log(otelprof_log_level level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    otelprof_log(level, "%s", buf);
}
