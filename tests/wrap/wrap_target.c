/* A live process for `otelprof inspect`: threads with spans opened through the profiling
 * wrapper, nested and partly ended. Prints one JSON line with what each thread must
 * publish, then waits for a line on stdin. */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT 4

static otelprof_tracer *tracer;
static pthread_barrier_t ready, done;
static char expect[NT][160];

static void hexs(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static otelprof_span *start(const char *name, const otelprof_span *parent, const char *route)
{
    otelprof_kv kv = OTELPROF_KV_STR("http.route", route);
    otelprof_span_start_opts o =
        OTELPROF_SPAN_START_OPTS(.parent = parent ? otelprof_span_get_context(parent) : NULL,
                                 .root = parent == NULL, .attrs = &kv, .n_attrs = 1);
    return otelprof_tracer_start_span(tracer, name, &o);
}

static void describe(int i, const otelprof_span *s, const char *route)
{
    char t[33], sp[17];
    if (!s) {
        snprintf(expect[i], sizeof expect[i], "{\"tid\":%d,\"span\":null}", (int)gettid());
        return;
    }
    hexs(t, otelprof_span_get_context(s)->trace_id, 16);
    hexs(sp, otelprof_span_get_context(s)->span_id, 8);
    snprintf(expect[i], sizeof expect[i],
             "{\"tid\":%d,\"span\":{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"route\":\"%s\"}}",
             (int)gettid(), t, sp, route);
}

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    otelprof_span *a = start("a", NULL, "/a"), *b = NULL, *c = NULL;
    switch (i) {
    case 0: /* three deep: the innermost is published */
        b = start("b", a, "/b");
        c = start("c", b, "/c");
        describe(i, c, "/c");
        break;
    case 1: /* child ended: the parent is back */
        b = start("b", a, "/b");
        otelprof_span_end(b, 0);
        b = NULL;
        describe(i, a, "/a");
        break;
    case 2: /* everything ended: nothing */
        otelprof_span_end(a, 0);
        a = NULL;
        describe(i, NULL, NULL);
        break;
    default: /* two siblings one after the other */
        b = start("b1", a, "/b1");
        otelprof_span_end(b, 0);
        b = start("b2", a, "/b2");
        describe(i, b, "/b2");
        break;
    }
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&done);
    if (c)
        otelprof_span_end(c, 0);
    if (b)
        otelprof_span_end(b, 0);
    if (a)
        otelprof_span_end(a, 0);
    return NULL;
}

int main(void)
{
    otelprof_init(NULL);
    otelprof_span_processor *procs[] = {
        otelprof_simple_processor_new(otelprof_memory_exporter_new(100))};
    otelprof_sdk_opts so = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                             .processors = procs, .n_processors = 1);
    otelprof_status err;
    otelprof_tracer_provider *sdk = otelprof_sdk_provider_new(&so, &err);
    static const char *const keys[] = {"http.route"};
    otelprof_wrap_opts wo =
        OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 1, .take_ownership = true);
    otelprof_tracer_provider *p = sdk ? otelprof_tracer_provider_wrap(sdk, &wo, &err) : NULL;
    if (!p) {
        fprintf(stderr, "wrap_target: %s\n", otelprof_strerror(err));
        return 1;
    }
    tracer = otelprof_tracer_provider_get_tracer(p, "wrap-target", NULL, NULL);
    pthread_barrier_init(&ready, NULL, NT + 1);
    pthread_barrier_init(&done, NULL, NT + 1);
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    pthread_barrier_wait(&ready);
    printf("{\"pid\":%d,\"threads\":[", (int)getpid());
    for (int i = 0; i < NT; i++)
        printf("%s%s", i ? "," : "", expect[i]);
    printf("]}\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    pthread_barrier_wait(&done);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    otelprof_tracer_provider_free(p);
    return 0;
}
