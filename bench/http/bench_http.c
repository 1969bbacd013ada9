/* HTTP middleware overhead: a hello-world libmicrohttpd server to load with wrk (run.sh).
 *
 *   bench_http bare  --port P [--threads N]   the handler alone
 *   bench_http prop  --port P [--threads N]   the middleware, propagation-only (no tracer)
 *   bench_http sdk   --port P --otlp URL      the middleware + SDK + batch processor + OTLP
 *   bench_http sink  --port P                 an OTLP/HTTP sink: answers 200 to every POST
 *
 * Runs until SIGINT/SIGTERM; the sdk mode then prints the batch processor's counters. One
 * internal polling thread (epoll) by default, or a pool of N.
 */
#define _GNU_SOURCE
#include <otelprof/http.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#ifdef BENCH_HTTP_OTLP
#include <otelprof/exporter_otlp.h>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *hello;

static enum MHD_Result hello_handler(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version, const char *upload,
                                     size_t *upload_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size,
        (void)req_cls;
    return MHD_queue_response(c, 200, hello);
}

/* The sink reads and drops the request body, then answers with an empty (valid)
 * ExportTraceServiceResponse. */
static enum MHD_Result sink_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!*req_cls) {
        *req_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(c, 200, hello);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s bare|prop|sdk|sink --port P [--threads N] [--otlp URL]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1], *otlp = NULL;
    unsigned port = 8080, threads = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--otlp") == 0 && i + 1 < argc)
            otlp = argv[++i];
        else
            return 2;
    }
    static const char body[] = "hello, world\n";
    hello = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_AccessHandlerCallback h = hello_handler;
    void *h_cls = NULL;
    otelprof_mhd *mw = NULL;
    otelprof_tracer_provider *provider = NULL;
    otelprof_span_processor *batch = NULL;
    otelprof_status err = OTELPROF_OK;
    if (strcmp(mode, "sink") == 0) {
        h = sink_handler;
    } else if (strcmp(mode, "prop") == 0 || strcmp(mode, "sdk") == 0) {
        otelprof_init(NULL);
        otelprof_tracer *tracer = NULL;
        if (strcmp(mode, "sdk") == 0) {
#ifdef BENCH_HTTP_OTLP
            otelprof_otlp_opts oo = OTELPROF_OTLP_OPTS(.endpoint = otlp);
            otelprof_span_exporter *e = otelprof_otlp_exporter_new(&oo, &err);
            if (!e) {
                fprintf(stderr, "bench_http: OTLP exporter: %s\n", otelprof_strerror(err));
                return 1;
            }
            /* Sized so that the queue keeps up at tens of thousands of requests per second
             * (the defaults, 2048 spans and 5 s, would drop most spans: cheaper, unfair). */
            otelprof_batch_opts bo =
                OTELPROF_BATCH_OPTS(.max_queue_size = 65536, .schedule_delay_ms = 100,
                                    .max_export_batch_size = 4096);
            batch = otelprof_batch_processor_new(e, &bo);
            otelprof_sdk_opts so = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .processors = &batch, .n_processors = 1);
            provider = otelprof_sdk_provider_new(&so, &err);
            if (!provider)
                return 1;
            tracer = otelprof_tracer_provider_get_tracer(provider, "bench-http", NULL, NULL);
#else
            (void)otlp;
            fprintf(stderr, "bench_http: built without the OTLP exporter\n");
            return 77;
#endif
        }
        otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = tracer);
        otelprof_mhd_opts mo = OTELPROF_MHD_OPTS(.handler = hello_handler);
        mw = otelprof_mhd_new(&ho, &mo, &err);
        if (!mw)
            return 1;
        h = otelprof_mhd_access_handler;
        h_cls = mw;
    } else if (strcmp(mode, "bare") != 0) {
        return 2;
    }
    static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, h, h_cls,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
                         threads > 1 ? threads : 0, MHD_OPTION_CONNECTION_LIMIT, 1000u,
                         MHD_OPTION_ARRAY, mw ? otelprof_mhd_options(mw) : none, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_http: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "bench_http %s: listening on 127.0.0.1:%u\n", mode, port);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    otelprof_mhd_free(mw);
    if (provider) {
        otelprof_tracer_provider_force_flush(provider, 10000);
        otelprof_batch_stats st;
        if (otelprof_batch_processor_stats(batch, &st) == OTELPROF_OK)
            printf(
                "batch: enqueued %llu exported %llu dropped_queue_full %llu export_failures %llu\n",
                (unsigned long long)st.enqueued, (unsigned long long)st.exported,
                (unsigned long long)st.dropped_queue_full, (unsigned long long)st.export_failures);
        otelprof_tracer_provider_free(provider);
    }
    MHD_destroy_response(hello);
    return 0;
}
