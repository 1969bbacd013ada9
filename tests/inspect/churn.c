/* Churn target: threads start, attach and detach contexts in a loop, and exit, all the
 * time, while `otelprof inspect` reads the process. Each record is self-describing (the
 * first 4 bytes of trace id and span id and the "seq" attribute carry the same number),
 * so the driver can tell a torn or misplaced read from a good one.
 *
 * Prints {"pid":N} when running; stops when its standard input closes. Built as an
 * executable, or with INSPECT_PLUGIN as a plugin for the dlopen host.
 */
#define _GNU_SOURCE
#include <otelprof/context.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIVE_MAX 8

static uint32_t key_seq;
static atomic_int live;
static atomic_int stop;
static atomic_uint next_seed = 1;

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static otelprof_token attach(uint32_t s)
{
    otelprof_context c;
    for (int i = 0; i < 4; i++)
        c.trace_id[i] = c.span_id[i] = (uint8_t)(s >> (24 - 8 * i));
    for (int i = 4; i < 16; i++)
        c.trace_id[i] = (uint8_t)(0xa5 ^ i);
    for (int i = 4; i < 8; i++)
        c.span_id[i] = 0x5a;
    c.trace_flags = 1;
    char v[16];
    snprintf(v, sizeof v, "%u", (unsigned)s);
    otelprof_attr a = {key_seq, v, OTELPROF_NUL_TERMINATED};
    otelprof_token t;
    if (otelprof_attach(&c, &a, 1, &t) != OTELPROF_OK) {
        fprintf(stderr, "churn: attach failed\n");
        exit(1);
    }
    return t;
}

static void *worker(void *arg)
{
    (void)arg;
    uint32_t base = atomic_fetch_add(&next_seed, 1) * 100;
    otelprof_token outer = attach(base);
    for (uint32_t k = 1; k < 20; k++) {
        otelprof_token t = attach(base + k);
        nap_us(50);
        otelprof_detach(&t);
    }
    nap_us(1000);
    otelprof_detach(&outer);
    atomic_fetch_sub(&live, 1);
    return NULL;
}

static void *stdin_watch(void *arg)
{
    (void)arg;
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    atomic_store(&stop, 1);
    return NULL;
}

#ifdef INSPECT_PLUGIN
int inspect_plugin_run(void);
__attribute__((visibility("default"))) int inspect_plugin_run(void)
#else
static int churn_run(void)
#endif
{
    if (otelprof_init(NULL) != OTELPROF_OK ||
        otelprof_key_register("seq", &key_seq) != OTELPROF_OK) {
        fprintf(stderr, "churn: init failed\n");
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    if (pthread_create(&th, &attr, stdin_watch, NULL) != 0)
        return 1;
    printf("{\"pid\":%ld}\n", (long)getpid());
    fflush(stdout);
    while (!atomic_load(&stop)) {
        if (atomic_load(&live) < LIVE_MAX) {
            atomic_fetch_add(&live, 1);
            if (pthread_create(&th, &attr, worker, NULL) != 0)
                atomic_fetch_sub(&live, 1);
        } else {
            nap_us(100);
        }
    }
    while (atomic_load(&live) > 0)
        nap_us(1000);
    pthread_attr_destroy(&attr);
    return 0;
}

#ifndef INSPECT_PLUGIN
int main(void)
{
    return churn_run();
}
#endif
