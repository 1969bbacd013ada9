/* tracer-example: the C counterpart of otel-profiling-go's tracer example.
 *
 * An HTTP server (libmicrohttpd, port 3000 or --port N). GET /fib?n=N starts a span
 * through the profiling wrapper around the SDK's provider and computes fib(N) the naive
 * recursive way, so the CPU it burns is attributed to that span's trace by any profiler
 * that reads the thread context. Spans go to the console exporter unless
 * OTEL_TRACES_EXPORTER says otherwise.
 */
#define _GNU_SOURCE
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static otelprof_tracer *tracer;

static unsigned long long fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)req_cls;
    if (strcmp(method, "GET") != 0 || strcmp(url, "/fib") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found\n");
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    char *end = NULL;
    long n = arg ? strtol(arg, &end, 10) : -1;
    if (!arg || *end || n < 0 || n > 50)
        return reply(c, MHD_HTTP_BAD_REQUEST, "n must be an integer in [0, 50]\n");

    otelprof_kv attrs[] = {OTELPROF_KV_STR("http.route", "/fib"), OTELPROF_KV_INT("fib.n", n)};
    otelprof_span_start_opts o =
        OTELPROF_SPAN_START_OPTS(.kind = OTELPROF_SPAN_KIND_SERVER, .attrs = attrs, .n_attrs = 2);
    otelprof_span *span = otelprof_tracer_start_span(tracer, "GET /fib", &o);
    unsigned long long v = fib((unsigned)n); /* the CPU this burns carries the span's ids */
    otelprof_kv result = OTELPROF_KV_INT("fib.result", (int64_t)v);
    otelprof_span_set_attributes(span, &result, 1);
    char trace[33] = {0};
    const otelprof_span_context *sc = otelprof_span_get_context(span);
    for (int i = 0; i < 16; i++)
        sprintf(trace + 2 * i, "%02x", sc->trace_id[i]);
    otelprof_span_end(span, 0);

    char body[128];
    snprintf(body, sizeof body, "fib(%ld) = %llu\ntrace_id %s\n", n, v, trace);
    return reply(c, MHD_HTTP_OK, body);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    unsigned port = 3000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
            return 2;
        }
    }
    setenv("OTEL_TRACES_EXPORTER", "console", 0); /* console unless told otherwise */
    if (!getenv("OTEL_SERVICE_NAME"))
        setenv("OTEL_SERVICE_NAME", "tracer-example", 0);
    otelprof_status rc = otelprof_init(NULL);
    otelprof_tracer_provider *sdk =
        rc == OTELPROF_OK ? otelprof_sdk_provider_new_from_env(&rc) : NULL;
    static const char *const keys[] = {"http.route"};
    otelprof_wrap_opts wo =
        OTELPROF_WRAP_OPTS(.attribute_keys = keys, .n_attribute_keys = 1, .take_ownership = true);
    otelprof_tracer_provider *provider = sdk ? otelprof_tracer_provider_wrap(sdk, &wo, &rc) : NULL;
    if (!provider) {
        fprintf(stderr, "tracer-example: %s\n", otelprof_strerror(rc));
        return 1;
    }
    tracer = otelprof_tracer_provider_get_tracer(provider, "tracer-example", "0.1.0", NULL);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "tracer-example: cannot listen on port %u\n", port);
        otelprof_tracer_provider_free(provider);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "tracer-example: pid %d listening on http://127.0.0.1:%u/fib?n=30\n",
            (int)getpid(), port);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    otelprof_tracer_provider_shutdown(provider, 5000);
    otelprof_tracer_provider_free(provider);
    otelprof_shutdown();
    return 0;
}
