/* OTLP/HTTP exporter throughput: spans per second through otelprof_otlp_exporter to a
 * local sink on 127.0.0.1 (a forked child that reads each HTTP/1.1 request and answers
 * 200), without and with gzip, plus the encoder alone.
 *
 *   bench-otlp [--spans N] [--batch B] [--attrs K]
 *
 * Each span: K attributes (strings, ints, a double, a bool), one event with two attributes,
 * a parent, a tracestate; the shape of an instrumented HTTP handler's span.
 */
#define _GNU_SOURCE
#include <otelprof/exporter_otlp.h>
#include <otelprof/sdk.h>

#include "otlp/otlp_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#include "../sink.h"

/* ---- spans ---- */

static const otelprof_span_data **make_spans(size_t n, size_t n_attrs, otelprof_resource *res,
                                             const otelprof_scope_info *scope)
{
    otelprof_span_data *spans = calloc(n, sizeof *spans);
    const otelprof_span_data **ptrs = calloc(n, sizeof *ptrs);
    otelprof_kv *attrs = calloc(n_attrs ? n_attrs : 1, sizeof *attrs);
    static otelprof_kv ev_attrs[2];
    static otelprof_event_data ev;
    if (!spans || !ptrs || !attrs)
        exit(1);
    static const char *const keys[] = {"http.request.method", "url.path",
                                       "server.address",      "http.response.status_code",
                                       "network.peer.port",   "user_agent.original",
                                       "client.address",      "http.route"};
    for (size_t i = 0; i < n_attrs; i++) {
        const char *k = keys[i % 8];
        switch (i % 4) {
        case 0:
            attrs[i] = OTELPROF_KV_STR(k, "GET");
            break;
        case 1:
            attrs[i] = OTELPROF_KV_STR(k, "/api/v1/items/12345?expand=details");
            break;
        case 2:
            attrs[i] = OTELPROF_KV_INT(k, 200 + (int64_t)i);
            break;
        default:
            attrs[i] = OTELPROF_KV_DOUBLE(k, 0.125 * (double)i);
            break;
        }
    }
    ev_attrs[0] = OTELPROF_KV_STR("exception.type", "Timeout");
    ev_attrs[1] = OTELPROF_KV_BOOL("retry", true);
    ev = (otelprof_event_data){"retry", 1700000000500000000ULL, ev_attrs, 2, 0};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        otelprof_span_data *s = &spans[i];
        for (int b = 0; b < 16; b++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            s->context.trace_id[b] = (uint8_t)(x >> 56);
            if (b < 8) {
                s->context.span_id[b] = (uint8_t)(x >> 48);
                s->parent_span_id[b] = (uint8_t)(x >> 40);
            }
        }
        s->context.trace_flags = OTELPROF_FLAG_SAMPLED;
        otelprof_tracestate_parse(&s->context.tracestate, "vendor=abc123", OTELPROF_NUL_TERMINATED);
        s->name = "GET /api/v1/items/{id}";
        s->kind = OTELPROF_SPAN_KIND_SERVER;
        s->start_time_ns = 1700000000000000000ULL + i * 1000;
        s->end_time_ns = s->start_time_ns + 1234567;
        s->attrs = attrs;
        s->n_attrs = n_attrs;
        s->events = &ev;
        s->n_events = 1;
        s->status = OTELPROF_SPAN_STATUS_OK;
        s->scope = scope;
        s->resource = res;
        ptrs[i] = s;
    }
    return ptrs;
}

static void run_export(const char *label, const char *url, otelprof_otlp_compression comp,
                       const otelprof_span_data **ptrs, size_t batch, size_t total)
{
    otelprof_status err;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(
        &OTELPROF_OTLP_OPTS(.endpoint = url, .compression = comp, .timeout_ms = 30000), &err);
    if (!e) {
        fprintf(stderr, "exporter: %s\n", otelprof_strerror(err));
        exit(1);
    }
    e->ops->export_spans(e, ptrs, batch); /* connect, warm up */
    otelprof_otlp_stats s0;
    otelprof_otlp_exporter_stats(e, &s0);
    size_t done = 0;
    double t = now_s();
    while (done < total) {
        if (e->ops->export_spans(e, ptrs, batch) != OTELPROF_EXPORT_SUCCESS) {
            fprintf(stderr, "%s: export failed\n", label);
            exit(1);
        }
        done += batch;
    }
    t = now_s() - t;
    otelprof_otlp_stats s1;
    otelprof_otlp_exporter_stats(e, &s1);
    uint64_t req = s1.requests - s0.requests;
    double wire = (double)(s1.bytes_sent - s0.bytes_sent);
    printf("  %-24s %10.0f spans/s  %6llu requests  %7.1f MB/s on the wire  (%.0f B/span)\n", label,
           (double)done / t, (unsigned long long)req, wire / t / 1e6, wire / (double)done);
    otelprof_span_exporter_free(e);
}

int main(int argc, char **argv)
{
    size_t total = 200000, batch = 512, n_attrs = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--spans") == 0)
            total = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--attrs") == 0)
            n_attrs = strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--spans N] [--batch B] [--attrs K]\n", argv[0]);
            return 2;
        }
    }
    if (batch == 0 || total < batch) {
        fprintf(stderr, "need --spans >= --batch > 0\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    otelprof_resource *res = otelprof_resource_new();
    otelprof_kv svc = OTELPROF_KV_STR("service.name", "bench-otlp");
    otelprof_resource_put(res, &svc);
    otelprof_scope_info scope = {"bench", "1.0.0", NULL};
    const otelprof_span_data **ptrs = make_spans(batch, n_attrs, res, &scope);

    int port = 0;
    pid_t sink = sink_start(&port);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);

    printf("OTLP/HTTP export throughput: %zu spans in batches of %zu (%zu attributes + 1 event "
           "each), to a sink on 127.0.0.1 answering 200\n",
           total, batch, n_attrs);

    /* the encoder alone */
    op_pbw w;
    op_pbw_init(&w, OTELPROF_OTLP_DEFAULT_MAX_REQUEST_BYTES);
    size_t done = 0, bytes = 0;
    double t = now_s();
    while (done < total) {
        op_otlp_batch *b = op_otlp_batch_new(ptrs, batch);
        size_t k = 0, big = 0;
        while (b && op_otlp_batch_next(b, &w, &k, &big) == OTELPROF_OK && k > 0)
            bytes += op_pbw_len(&w);
        op_otlp_batch_free(b);
        done += batch;
    }
    t = now_s() - t;
    op_pbw_free(&w);
    printf("  %-24s %10.0f spans/s  %7.1f MB/s of protobuf  (%.0f B/span)\n", "encode only",
           (double)done / t, (double)bytes / t / 1e6, (double)bytes / (double)done);

    run_export("export, no compression", url, OTELPROF_OTLP_COMPRESSION_NONE, ptrs, batch, total);
    run_export("export, gzip", url, OTELPROF_OTLP_COMPRESSION_GZIP, ptrs, batch, total);

    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    otelprof_resource_free(res);
    free((void *)ptrs[0]->attrs);
    free((void *)ptrs[0]); /* the spans array */
    free((void *)ptrs);
    return 0;
}
