/* The exporter's log messages go to the core's log callback (otelprof_set_log) through
 * the public otelprof_log, with either library flavour. */
#include "otlp_internal.h"

#include <stdarg.h>
#include <stdio.h>

void op_otlp_log(otelprof_log_level level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    otelprof_log(level, "%s", buf);
}
