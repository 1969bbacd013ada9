/* A live server for `otelprof inspect` (http_inspect.py): the libmicrohttpd middleware with
 * the SDK; GET /spin burns CPU until a line arrives on stdin. Prints {"pid","port"} at
 * start and, from inside the handler, what the handling thread publishes. Mode (argv[1]):
 * "select" (one internal polling thread) or "tpc" (thread per connection). */
#define _GNU_SOURCE
#include <otelprof/http.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_bool release_spin;
static volatile unsigned long long sink;

static void hexs(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size,
        (void)req_cls;
    otelprof_context cur;
    char t[33] = "", s[17] = "";
    if (otelprof_current(&cur, NULL, 0, NULL) == OTELPROF_OK) {
        hexs(t, cur.trace_id, 16);
        hexs(s, cur.span_id, 8);
    }
    printf("{\"tid\":%d,\"trace_id\":\"%s\",\"span_id\":\"%s\",\"route\":\"/spin\"}\n",
           (int)gettid(), t, s);
    fflush(stdout);
    unsigned long long x = 0;
    while (!atomic_load_explicit(&release_spin, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            x += (unsigned long long)i * 2654435761u; /* the CPU a profiler attributes */
    sink = x;
    static const char body[] = "done\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *route(void *arg, void *conn, const char *method, const char *path)
{
    (void)arg, (void)conn, (void)method;
    return strcmp(path, "/spin") == 0 ? "/spin" : NULL;
}

int main(int argc, char **argv)
{
    bool tpc = argc > 1 && strcmp(argv[1], "tpc") == 0;
    otelprof_init(NULL);
    otelprof_span_processor *procs[] = {
        otelprof_simple_processor_new(otelprof_memory_exporter_new(100))};
    otelprof_sdk_opts so = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                             .processors = procs, .n_processors = 1);
    otelprof_status err;
    otelprof_tracer_provider *p = otelprof_sdk_provider_new(&so, &err);
    if (!p)
        return 1;
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = otelprof_tracer_provider_get_tracer(
                                                   p, "http-target", NULL, NULL),
                                               .route = route);
    otelprof_mhd_opts mo = OTELPROF_MHD_OPTS(.handler = handler);
    otelprof_mhd *mw = otelprof_mhd_new(&ho, &mo, &err);
    if (!mw)
        return 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (tpc ? MHD_USE_THREAD_PER_CONNECTION : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, otelprof_mhd_access_handler, mw, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_ARRAY, otelprof_mhd_options(mw), MHD_OPTION_END);
    if (!d)
        return 1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("{\"pid\":%d,\"port\":%u}\n", (int)getpid(), di ? di->port : 0);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin))
        if (strncmp(line, "go", 2) == 0)
            atomic_store(&release_spin, true);
    atomic_store(&release_spin, true);
    MHD_stop_daemon(d);
    otelprof_mhd_free(mw);
    otelprof_tracer_provider_free(p);
    return 0;
}
