/* A small multi-threaded "service": worker threads take fake requests, each with its own
 * trace context and attributes, nest a child span for part of the work, and burn CPU.
 * `make demo` runs it and shows what `otelprof inspect` reads from outside. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint32_t key_route, key_tenant;
static volatile int stop;
static volatile unsigned long sink; /* keeps the compiler from deleting the work */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void random_ids(otelprof_context *c, uint64_t *seed)
{
    uint64_t a = splitmix(seed), b = splitmix(seed), s = splitmix(seed) | 1;
    memcpy(c->trace_id, &a, 8);
    memcpy(c->trace_id + 8, &b, 8);
    memcpy(c->span_id, &s, 8);
    c->trace_flags = OTELPROF_FLAG_SAMPLED | OTELPROF_FLAG_RANDOM_TRACE_ID;
}

static unsigned long fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void *worker(void *arg)
{
    static const char *const routes[] = {"/checkout", "/cart/{id}", "/search"};
    static const char *const tenants[] = {"acme", "globex", "initech", "umbrella"};
    uint64_t seed = (uint64_t)(uintptr_t)arg * 7919u + (uint64_t)time(NULL);
    char name[16];
    snprintf(name, sizeof name, "worker-%u", (unsigned)(uintptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    while (!stop) {
        otelprof_context req;
        random_ids(&req, &seed);
        otelprof_attr attrs[] = {
            {key_route, routes[splitmix(&seed) % 3], OTELPROF_NUL_TERMINATED},
            {key_tenant, tenants[splitmix(&seed) % 4], OTELPROF_NUL_TERMINATED},
        };
        otelprof_token t_req, t_child;
        if (otelprof_attach(&req, attrs, 2, &t_req) != OTELPROF_OK)
            abort();
        sink = fib(37);               /* the request's own work */
        otelprof_context child = req; /* same trace, a child span for the "database call" */
        uint64_t s = splitmix(&seed) | 1;
        memcpy(child.span_id, &s, 8);
        otelprof_attach(&child, attrs, 1, &t_child);
        sink = fib(39);
        otelprof_detach(&t_child);
        otelprof_detach(&t_req);
        usleep(10 * 1000); /* idle between requests: no context */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    otelprof_init_opts opts = OTELPROF_INIT_OPTS(.service_name = "otelprof-demo");
    otelprof_status rc = otelprof_init(&opts);
    if (rc == OTELPROF_OK)
        rc = otelprof_key_register("http.route", &key_route);
    if (rc == OTELPROF_OK)
        rc = otelprof_key_register("tenant", &key_tenant);
    if (rc != OTELPROF_OK) {
        fprintf(stderr, "demo: %s\n", otelprof_strerror(rc));
        return 1;
    }
    otelprof_resource_set("deployment.environment.name", "demo");
    pthread_t th[3];
    for (unsigned i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    printf("demo: pid %d, 3 workers, running for %d s\n", (int)getpid(), seconds);
    fflush(stdout);
    sleep((unsigned)seconds);
    stop = 1;
    for (unsigned i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    otelprof_shutdown();
    return 0;
}
