/* The log callback: details a status code cannot carry. Silent unless installed. */
#define _GNU_SOURCE
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static otelprof_log_fn log_fn;
static void *log_arg;
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

static void log_stderr(otelprof_log_level level, const char *msg, void *arg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)arg;
    fprintf(stderr, "otelprof %s: %s\n", names[level & 3], msg);
}

static void log_env_init(void)
{
    const char *v = getenv("OTELPROF_LOG");
    if (v && strcmp(v, "stderr") == 0) {
        pthread_mutex_lock(&log_lock);
        if (!log_fn)
            log_fn = log_stderr;
        pthread_mutex_unlock(&log_lock);
    }
}

void otelprof_set_log(otelprof_log_fn fn, void *arg, otelprof_log_fn *prev_fn, void **prev_arg)
{
    pthread_once(&log_env_once, log_env_init);
    pthread_mutex_lock(&log_lock);
    if (prev_fn)
        *prev_fn = log_fn;
    if (prev_arg)
        *prev_arg = log_arg;
    log_fn = fn;
    log_arg = arg;
    pthread_mutex_unlock(&log_lock);
}

static void log_v(otelprof_log_level level, const char *fmt, va_list ap)
{
    pthread_once(&log_env_once, log_env_init);
    pthread_mutex_lock(&log_lock);
    otelprof_log_fn fn = log_fn;
    void *arg = log_arg;
    pthread_mutex_unlock(&log_lock);
    if (!fn)
        return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    fn(level, buf, arg);
}

void op_log(otelprof_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}

void otelprof_log(otelprof_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}
