/* HTTP middleware tests: real servers on 127.0.0.1 (ephemeral ports) in every
 * libmicrohttpd threading mode and CivetWeb, real clients (the curl binary with
 * hand-written headers, raw sockets, the Node.js OpenTelemetry SDK, libcurl through the
 * helper). One case per ctest entry: test-http <case>.
 *
 * What the echo handler reports (response body), read in-process inside the handler:
 *   trace=<hex> span=<hex> flags=<hex> scope=<span hex of trace.h's current> req=<0|1>
 * req=1 when otelprof_http_current_request() publishes exactly what otelprof_current says.
 */
#define _GNU_SOURCE
#include <otelprof/http.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>
#ifdef HTTP_TEST_CIVETWEB
#include <otelprof/http_civetweb.h>
#endif
#ifdef HTTP_TEST_CURL
#include <otelprof/http_curl.h>
#endif

#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static bool unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Run argv, capture stdout (at most cap-1 bytes, NUL-terminated). Returns the exit status,
 * -1 when it could not run. */
static int run_capture(char *const argv[], char *const envp[], char *out, size_t cap,
                       int timeout_ms)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    size_t got = 0;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        int left = (int)(deadline - mono_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(p[0], out + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    out[got] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_program(const char *name)
{
    char out[64];
    char *argv[] = {"sh", "-c", NULL, NULL};
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null", name);
    argv[2] = cmd;
    return run_capture(argv, NULL, out, sizeof out, 5000) == 0;
}

/* GET url with the curl binary and hand-written headers; returns the status code (0 on
 * failure) and the body in out. */
static int curl_get(const char *url, const char *const *headers, size_t n_headers, char *out,
                    size_t cap)
{
    char *argv[64];
    size_t k = 0;
    argv[k++] = "curl";
    argv[k++] = "-s";
    argv[k++] = "--max-time";
    argv[k++] = "10";
    argv[k++] = "-w";
    argv[k++] = "\n%{http_code}";
    for (size_t i = 0; i < n_headers && k < 60; i++) {
        argv[k++] = "-H";
        argv[k++] = (char *)headers[i];
    }
    argv[k++] = (char *)url;
    argv[k] = NULL;
    if (run_capture(argv, NULL, out, cap, 15000) != 0)
        return 0;
    char *nl = strrchr(out, '\n');
    if (!nl)
        return 0;
    int code = atoi(nl + 1);
    *nl = '\0';
    return code;
}

/* ---------------------------------------------------------------------------------------
 * SDK with an in-memory exporter
 * ------------------------------------------------------------------------------------- */

static otelprof_tracer_provider *g_provider;
static otelprof_span_exporter *g_mem;
static otelprof_tracer *g_tracer;

static void sdk_init(void)
{
    ASSERT_OK(otelprof_init(NULL));
    g_mem = otelprof_memory_exporter_new(0);
    otelprof_span_processor *procs[] = {otelprof_simple_processor_new(g_mem)};
    otelprof_sdk_opts so =
        OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_parentbased(otelprof_sampler_always_on(),
                                                                  NULL, NULL, NULL, NULL),
                          .processors = procs, .n_processors = 1);
    otelprof_status err;
    g_provider = otelprof_sdk_provider_new(&so, &err);
    ASSERT_OK(err);
    g_tracer = otelprof_tracer_provider_get_tracer(g_provider, "test-http", NULL, NULL);
}

static void sdk_fini(void)
{
    otelprof_tracer_provider_free(g_provider);
    g_provider = NULL;
}

static const otelprof_kv *attr(const otelprof_span_data *sd, const char *key)
{
    for (size_t i = 0; i < sd->n_attrs; i++)
        if (strcmp(sd->attrs[i].key, key) == 0)
            return &sd->attrs[i];
    return NULL;
}

static void assert_attr_str(const otelprof_span_data *sd, const char *key, const char *want)
{
    const otelprof_kv *kv = attr(sd, key);
    if (!kv)
        TEST_FAIL("span %s: attribute %s missing", sd->name, key);
    ASSERT_EQ(kv->value.type, OTELPROF_VALUE_STRING);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)kv->value.u.str.len, kv->value.u.str.ptr);
    ASSERT_STR_EQ(buf, want);
}

static void assert_attr_int(const otelprof_span_data *sd, const char *key, int64_t want)
{
    const otelprof_kv *kv = attr(sd, key);
    if (!kv)
        TEST_FAIL("span %s: attribute %s missing", sd->name, key);
    ASSERT_EQ(kv->value.type, OTELPROF_VALUE_INT);
    ASSERT_EQ(kv->value.u.i, want);
}

/* The exported span with this trace id and kind; waits for it (the span ends in the
 * completion callback, which may run after the client saw the response). */
static const otelprof_span_data *wait_span(const uint8_t trace_id[16], otelprof_span_kind kind,
                                           int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    do {
        size_t n = otelprof_memory_exporter_count(g_mem);
        for (size_t i = 0; i < n; i++) {
            const otelprof_span_data *sd = otelprof_memory_exporter_get(g_mem, i);
            if (sd && sd->kind == kind && memcmp(sd->context.trace_id, trace_id, 16) == 0)
                return sd;
        }
        usleep(2000);
    } while (mono_ms() < deadline);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * What a handler sees
 * ------------------------------------------------------------------------------------- */

static void describe_context(char *out, size_t cap)
{
    otelprof_context c;
    otelprof_attr attrs[4];
    size_t n_attrs = 0;
    char t[33] = "-", s[17] = "-", sc[17] = "-", route[64] = "-";
    unsigned flags = 0;
    int same = 0;
    if (otelprof_current(&c, attrs, 4, &n_attrs) == OTELPROF_OK) {
        hex(t, c.trace_id, 16);
        hex(s, c.span_id, 8);
        flags = c.trace_flags;
        for (size_t i = 0; i < n_attrs && i < 4; i++) {
            const char *k = otelprof_key_name(attrs[i].key);
            if (k && strcmp(k, "http.route") == 0)
                snprintf(route, sizeof route, "%.*s", (int)attrs[i].value_len, attrs[i].value);
        }
        const otelprof_span_context *rc =
            otelprof_http_request_context(otelprof_http_current_request());
        same = rc && memcmp(rc->trace_id, c.trace_id, 16) == 0 &&
               memcmp(rc->span_id, c.span_id, 8) == 0;
    }
    const otelprof_span_context *cur = otelprof_current_span_context();
    if (cur)
        hex(sc, cur->span_id, 8);
    snprintf(out, cap, "trace=%s span=%s flags=%02x scope=%s req=%d route=%s\n", t, s, flags, sc,
             same, route);
}

struct seen {
    char trace[33], span[17], scope[17], route[64];
    unsigned flags;
    int req;
};

static void parse_seen(const char *body, struct seen *s)
{
    memset(s, 0, sizeof *s);
    if (sscanf(body, "trace=%32s span=%16s flags=%x scope=%16s req=%d route=%63s", s->trace,
               s->span, &s->flags, s->scope, &s->req, s->route) != 6)
        TEST_FAIL("unexpected body: %s", body);
}

/* ---------------------------------------------------------------------------------------
 * libmicrohttpd servers
 * ------------------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result echo_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **req_cls)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)req_cls;
    char body[512];
    if (strncmp(url, "/items/", 7) == 0)
        otelprof_http_set_route("/items/{id}"); /* the application names the route */
    if (strcmp(url, "/fail") == 0)
        return reply(c, 503, "failing on purpose\n");
    if (strcmp(url, "/headers") == 0) { /* what a downstream server received */
        const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
        const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "tracestate");
        snprintf(body, sizeof body, "traceparent=%s\ntracestate=%s\n", tp ? tp : "-",
                 ts ? ts : "-");
        return reply(c, 200, body);
    }
    describe_context(body, sizeof body);
    return reply(c, 200, body);
}

static const char *route_fn(void *arg, void *conn, const char *method, const char *path)
{
    (void)arg, (void)conn, (void)method;
    return strcmp(path, "/echo") == 0 ? "/echo" : NULL;
}

enum mode { M_SELECT, M_POLL, M_EPOLL, M_POOL, M_TPC, M_EXTERNAL };

struct server {
    struct MHD_Daemon *d;
    otelprof_mhd *mw;
    unsigned port;
    enum mode mode;
    pthread_t loop;
    atomic_bool stop;
    /* external loop: check after every MHD_run that the thread's baseline is back */
    bool check_baseline;
    atomic_int baseline_failures;
    atomic_int runs;
};

static const otelprof_context baseline_ctx = {
    {0xba, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {0xba, 0x5e, 0, 0, 0, 0, 0, 1}, 1};

static bool is_baseline(void)
{
    otelprof_context c;
    return otelprof_current(&c, NULL, 0, NULL) == OTELPROF_OK &&
           memcmp(&c.trace_id, baseline_ctx.trace_id, 16) == 0 &&
           memcmp(&c.span_id, baseline_ctx.span_id, 8) == 0;
}

static void *external_loop(void *arg)
{
    struct server *s = arg;
    otelprof_token base = OTELPROF_TOKEN_INIT;
    if (s->check_baseline)
        ASSERT_OK(otelprof_attach(&baseline_ctx, NULL, 0, &base));
    while (!atomic_load(&s->stop)) {
        fd_set rs, ws, es;
        FD_ZERO(&rs);
        FD_ZERO(&ws);
        FD_ZERO(&es);
        MHD_socket max = 0;
        if (MHD_get_fdset(s->d, &rs, &ws, &es, &max) != MHD_YES)
            break;
        struct timeval tv = {0, 20000};
        if (select((int)max + 1, &rs, &ws, &es, &tv) < 0 && errno != EINTR)
            break;
        MHD_run_from_select(s->d, &rs, &ws, &es);
        atomic_fetch_add(&s->runs, 1);
        if (s->check_baseline && !is_baseline())
            atomic_fetch_add(&s->baseline_failures, 1);
    }
    if (s->check_baseline)
        otelprof_detach(&base);
    return NULL;
}

static unsigned mode_flags(enum mode m)
{
    switch (m) {
    case M_SELECT:
        return MHD_USE_INTERNAL_POLLING_THREAD;
    case M_POLL:
        return MHD_USE_POLL_INTERNAL_THREAD;
    case M_EPOLL:
        return MHD_USE_EPOLL_INTERNAL_THREAD;
    case M_POOL:
        return MHD_USE_INTERNAL_POLLING_THREAD;
    case M_TPC:
        return MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    case M_EXTERNAL:
        return 0;
    }
    return 0;
}

/* Start a daemon on 127.0.0.1:<ephemeral> with the middleware around `handler`. */
static void server_start(struct server *s, enum mode mode, const otelprof_http_opts *ho,
                         MHD_AccessHandlerCallback handler, MHD_AccessHandlerCallback outer,
                         MHD_RequestCompletedCallback done, unsigned extra_flags)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    otelprof_status err;
    otelprof_mhd_opts mo = OTELPROF_MHD_OPTS(.handler = handler, .notify_completed = done);
    s->mw = otelprof_mhd_new(ho, &mo, &err);
    ASSERT_OK(err);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(
        mode_flags(mode) | extra_flags, 0, NULL, NULL, outer ? outer : otelprof_mhd_access_handler,
        s->mw, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(mode == M_POOL ? 4 : 0), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)3,
        MHD_OPTION_ARRAY, otelprof_mhd_options(s->mw), MHD_OPTION_END);
    if (!s->d)
        TEST_FAIL("MHD_start_daemon failed in mode %d", (int)mode);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    ASSERT_TRUE(di && di->port);
    s->port = di->port;
    if (mode == M_EXTERNAL)
        ASSERT_EQ(pthread_create(&s->loop, NULL, external_loop, s), 0);
}

static void server_stop(struct server *s)
{
    if (s->mode == M_EXTERNAL) {
        atomic_store(&s->stop, true);
        pthread_join(s->loop, NULL);
    }
    MHD_stop_daemon(s->d);
    otelprof_mhd_free(s->mw);
}

/* ---------------------------------------------------------------------------------------
 * traceparent scenarios, through the curl binary
 * ------------------------------------------------------------------------------------- */

#define PARENT "00f067aa0ba902b7"

struct scenario {
    const char *name;
    const char *fmt[2]; /* traceparent values, %s = this scenario's trace id */
    int n;
    bool valid;
    unsigned flags; /* incoming flags when valid */
    const char *tracestate;
};

static const struct scenario scenarios[] = {
    {"valid", {"00-%s-" PARENT "-01"}, 1, true, 0x01, NULL},
    {"valid_tracestate",
     {"00-%s-" PARENT "-01"},
     1,
     true,
     0x01,
     "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
    {"valid_unsampled", {"00-%s-" PARENT "-00"}, 1, true, 0x00, NULL},
    {"valid_random_flag", {"00-%s-" PARENT "-03"}, 1, true, 0x03, NULL},
    {"future_version", {"cc-%s-" PARENT "-01-what-the-future-holds"}, 1, true, 0x01, NULL},
    {"uppercase", {"00-%s-00F067AA0BA902B7-01"}, 1, false, 0, NULL},
    {"version_ff", {"ff-%s-" PARENT "-01"}, 1, false, 0, NULL},
    {"short_trace_id", {"00-%.30s-" PARENT "-01"}, 1, false, 0, NULL},
    {"zero_trace_id", {"00-00000000000000000000000000000000-" PARENT "-01%.0s"}, 1, false, 0, NULL},
    {"zero_parent_id", {"00-%s-0000000000000000-01"}, 1, false, 0, NULL},
    {"v00_extra_data", {"00-%s-" PARENT "-01-extra"}, 1, false, 0, NULL},
    {"bad_flags", {"00-%s-" PARENT "-0g"}, 1, false, 0, NULL},
    {"garbage", {"not a traceparent %s"}, 1, false, 0, NULL},
    {"duplicate_same", {"00-%s-" PARENT "-01", "00-%s-" PARENT "-01"}, 2, false, 0, NULL},
    {"duplicate_different",
     {"00-%s-" PARENT "-01", "00-%s-00f067aa0ba902b8-01"},
     2,
     false,
     0,
     NULL},
    {"absent", {NULL}, 0, false, 0, NULL},
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

static void run_scenarios(unsigned port, bool sdk, const char *server_desc)
{
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        const struct scenario *sc = &scenarios[i];
        char tid[33], hdr[2][256], tsh[300];
        uint8_t tid_b[16];
        snprintf(tid, sizeof tid, "4bf92f3577b34da6a3ce929d0e0e%02x%02x",
                 (unsigned)(getpid() & 0xff), (unsigned)i);
        unhex(tid, tid_b, 16);
        const char *headers[4];
        size_t nh = 0;
        for (int k = 0; k < sc->n; k++) {
            char v[200];
            snprintf(v, sizeof v, sc->fmt[k], tid);
            snprintf(hdr[k], sizeof hdr[k], "traceparent: %s", v);
            headers[nh++] = hdr[k];
        }
        if (sc->tracestate) {
            snprintf(tsh, sizeof tsh, "tracestate: %s", sc->tracestate);
            headers[nh++] = tsh;
        }
        char url[128], body[1024];
        snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", port);
        size_t before = otelprof_memory_exporter_count(g_mem);
        int code = curl_get(url, headers, nh, body, sizeof body);
        if (code != 200)
            TEST_FAIL("%s %s: status %d", server_desc, sc->name, code);
        struct seen s;
        parse_seen(body, &s);
        printf("%-10s %-20s -> %s", server_desc, sc->name, body);
        ASSERT_EQ(s.req, 1);
        ASSERT_STR_EQ(s.scope, s.span); /* trace.h's current span is the published one */
        ASSERT_STR_EQ(s.route, "/echo");
        uint8_t got_trace[16];
        ASSERT_TRUE(unhex(s.trace, got_trace, 16));
        if (sc->valid) {
            ASSERT_STR_EQ(s.trace, tid);
            if (strcmp(s.span, PARENT) == 0)
                TEST_FAIL("%s: the published span id is the caller's", sc->name);
            ASSERT_EQ(s.flags & 1u, sc->flags & 1u);
        } else {
            if (strcmp(s.trace, tid) == 0)
                TEST_FAIL("%s: invalid traceparent was continued", sc->name);
        }
        if (!sdk) {
            /* Propagation-only: the caller's flags, or a new trace flagged random, and
             * no span at all. */
            ASSERT_EQ(s.flags, sc->valid ? sc->flags : OTELPROF_FLAG_RANDOM_TRACE_ID);
            usleep(20000);
            ASSERT_EQ(otelprof_memory_exporter_count(g_mem), before);
            continue;
        }
        bool sampled = sc->valid ? (sc->flags & 1u) != 0 : true;
        const otelprof_span_data *sd =
            wait_span(got_trace, OTELPROF_SPAN_KIND_SERVER, sampled ? 3000 : 100);
        if (!sampled) {
            ASSERT_NULL(sd);
            continue;
        }
        if (!sd)
            TEST_FAIL("%s %s: no SERVER span exported", server_desc, sc->name);
        char sid[17], pid[17];
        hex(sid, sd->context.span_id, 8);
        hex(pid, sd->parent_span_id, 8);
        ASSERT_STR_EQ(sid, s.span);
        if (sc->valid) {
            ASSERT_STR_EQ(pid, PARENT);
            ASSERT_TRUE(sd->parent_is_remote);
        } else {
            ASSERT_STR_EQ(pid, "0000000000000000");
        }
        if (sc->tracestate) {
            char ts[600];
            ASSERT_OK(otelprof_tracestate_format(&sd->context.tracestate, ts, sizeof ts, NULL));
            ASSERT_STR_EQ(ts, sc->tracestate);
        }
        ASSERT_STR_EQ(sd->name, "GET /echo");
        assert_attr_str(sd, "http.request.method", "GET");
        assert_attr_str(sd, "url.path", "/echo");
        assert_attr_str(sd, "url.scheme", "http");
        assert_attr_str(sd, "http.route", "/echo");
        assert_attr_str(sd, "server.address", "127.0.0.1");
        assert_attr_int(sd, "server.port", port);
        assert_attr_str(sd, "client.address", "127.0.0.1");
        assert_attr_str(sd, "network.protocol.version", "1.1");
        assert_attr_int(sd, "http.response.status_code", 200);
        const otelprof_kv *ua = attr(sd, "user_agent.original");
        ASSERT_TRUE(ua && strncmp(ua->value.u.str.ptr, "curl/", 5) == 0);
        ASSERT_EQ(sd->status, OTELPROF_SPAN_STATUS_UNSET);
    }
}

static void need_curl_binary(void)
{
    if (!have_program("curl"))
        TEST_SKIP("the curl binary is not installed (apt-get install curl)");
}

static void mhd_case(enum mode mode, bool sdk)
{
    need_curl_binary();
    sdk_init();
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = sdk ? g_tracer : NULL, .route = route_fn);
    struct server s;
    server_start(&s, mode, &ho, echo_handler, NULL, NULL, 0);
    static const char *const names[] = {"select", "poll", "epoll", "pool", "tpc", "external"};
    run_scenarios(s.port, sdk, names[mode]);
    if (sdk) {
        /* 5xx: status ERROR and error.type. */
        char url[128], body[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%u/fail", s.port);
        const char *h = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        ASSERT_EQ(curl_get(url, &h, 1, body, sizeof body), 503);
        uint8_t t[16];
        unhex("0af7651916cd43dd8448eb211c80319c", t, 16);
        const otelprof_span_data *sd = wait_span(t, OTELPROF_SPAN_KIND_SERVER, 3000);
        ASSERT_TRUE(sd != NULL);
        ASSERT_STR_EQ(sd->name, "GET"); /* no route for /fail */
        assert_attr_int(sd, "http.response.status_code", 503);
        assert_attr_str(sd, "error.type", "503");
        ASSERT_EQ(sd->status, OTELPROF_SPAN_STATUS_ERROR);
    }
    server_stop(&s);
    sdk_fini();
}

static void t_mhd_select(void)
{
    mhd_case(M_SELECT, true);
}
static void t_mhd_poll(void)
{
    mhd_case(M_POLL, true);
}
static void t_mhd_epoll(void)
{
    mhd_case(M_EPOLL, true);
}
static void t_mhd_pool(void)
{
    mhd_case(M_POOL, true);
}
static void t_mhd_tpc(void)
{
    mhd_case(M_TPC, true);
}
static void t_mhd_external(void)
{
    mhd_case(M_EXTERNAL, true);
}
static void t_mhd_prop_select(void)
{
    mhd_case(M_SELECT, false);
}
static void t_mhd_prop_poll(void)
{
    mhd_case(M_POLL, false);
}
static void t_mhd_prop_epoll(void)
{
    mhd_case(M_EPOLL, false);
}
static void t_mhd_prop_pool(void)
{
    mhd_case(M_POOL, false);
}
static void t_mhd_prop_tpc(void)
{
    mhd_case(M_TPC, false);
}
static void t_mhd_prop_external(void)
{
    mhd_case(M_EXTERNAL, false);
}

/* The application names the route during the request: span renamed, attribute set, and
 * the thread context republished with it at once. */
static void t_route_api(void)
{
    need_curl_binary();
    sdk_init();
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = g_tracer, .route = route_fn);
    struct server s;
    server_start(&s, M_SELECT, &ho, echo_handler, NULL, NULL, 0);
    char url[128], body[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/items/42", s.port);
    ASSERT_EQ(curl_get(url, NULL, 0, body, sizeof body), 200);
    struct seen seen;
    parse_seen(body, &seen);
    ASSERT_STR_EQ(seen.route, "/items/{id}");
    uint8_t t[16];
    unhex(seen.trace, t, 16);
    const otelprof_span_data *sd = wait_span(t, OTELPROF_SPAN_KIND_SERVER, 3000);
    ASSERT_TRUE(sd != NULL);
    ASSERT_STR_EQ(sd->name, "GET /items/{id}");
    assert_attr_str(sd, "http.route", "/items/{id}");
    assert_attr_str(sd, "url.path", "/items/42");
    server_stop(&s);
    /* Outside any request: no current request. */
    ASSERT_NULL(otelprof_http_current_request());
    ASSERT_STATUS(otelprof_http_set_route("/x"), OTELPROF_E_NO_CONTEXT);
    sdk_fini();
}

static enum MHD_Result noop_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size,
        (void)req_cls;
    return reply(c, 200, "ok\n");
}

static void t_opts_validation(void)
{
    otelprof_status err = OTELPROF_OK;
    ASSERT_NULL(otelprof_mhd_new(NULL, NULL, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    otelprof_mhd_opts mo = OTELPROF_MHD_OPTS(.handler = NULL);
    ASSERT_NULL(otelprof_mhd_new(NULL, &mo, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    /* A newer caller's struct with a non-zero field we do not know. */
    struct {
        otelprof_http_opts o;
        uint64_t future;
    } big = {OTELPROF_HTTP_OPTS(), 1};
    big.o.sz = sizeof big;
    mo = OTELPROF_MHD_OPTS(.handler = noop_handler);
    ASSERT_NULL(otelprof_mhd_new(&big.o, &mo, &err));
    ASSERT_STATUS(err, OTELPROF_E_OPTS);
    big.future = 0;
    otelprof_mhd *m = otelprof_mhd_new(&big.o, &mo, &err);
    ASSERT_OK(err);
    ASSERT_TRUE(otelprof_mhd_options(m) != NULL);
    otelprof_mhd_free(m);
    otelprof_mhd_free(NULL);
    /* An older caller's smaller struct: the fields it lacks take their defaults. */
    otelprof_http_opts small = OTELPROF_HTTP_OPTS();
    small.sz = offsetof(otelprof_http_opts, route);
    m = otelprof_mhd_new(&small, &mo, &err);
    ASSERT_OK(err);
    otelprof_mhd_free(m);
    ASSERT_STATUS(otelprof_http_request_enter(NULL, NULL), OTELPROF_E_INVAL);
    otelprof_http_call call;
    memset(&call, 0, sizeof call);
    ASSERT_STATUS(otelprof_http_request_leave(&call), OTELPROF_E_INVAL);
    ASSERT_NULL(otelprof_http_request_context(NULL));
    ASSERT_NULL(otelprof_http_request_span(NULL));
    ASSERT_NULL(otelprof_http_request_ref(NULL));
    otelprof_http_request_unref(NULL);
#ifdef HTTP_TEST_CIVETWEB
    ASSERT_NULL(otelprof_civetweb_new(NULL, NULL, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);
    struct mg_callbacks cb[9];
    otelprof_civetweb *cw[9];
    memset(cb, 0, sizeof cb);
    for (int i = 0; i < 8; i++) {
        cw[i] = otelprof_civetweb_new(NULL, &cb[i], &err);
        ASSERT_OK(err);
        ASSERT_TRUE(cb[i].begin_request && cb[i].end_request);
    }
    ASSERT_NULL(otelprof_civetweb_new(NULL, &cb[8], &err));
    ASSERT_STATUS(err, OTELPROF_E_TOO_LARGE);
    for (int i = 0; i < 8; i++)
        otelprof_civetweb_free(cw[i]);
#endif
}

/* ---------------------------------------------------------------------------------------
 * Raw socket clients (interleaving and hostile input)
 * ------------------------------------------------------------------------------------- */

struct rawc {
    int fd;
    char *req;
    size_t req_len, sent;
    char resp[16384];
    size_t got;
    bool done;
};

static int connect_local(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send every request, read every response until the server closes; bounded by timeout_ms.
 * Returns the number of connections that completed. */
static int raw_run(unsigned port, struct rawc *c, int n, int timeout_ms)
{
    for (int i = 0; i < n; i++) {
        c[i].fd = connect_local(port);
        c[i].sent = c[i].got = 0;
        c[i].done = c[i].fd < 0;
    }
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    int done = 0;
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    while (mono_ms() < deadline) {
        int k = 0, map[1024];
        for (int i = 0; i < n && k < 1024; i++) {
            if (c[i].done)
                continue;
            pf[k] =
                (struct pollfd){c[i].fd, (short)(c[i].sent < c[i].req_len ? POLLOUT : POLLIN), 0};
            map[k++] = i;
        }
        if (!k)
            break;
        if (poll(pf, (nfds_t)k, 50) < 0)
            break;
        for (int j = 0; j < k; j++) {
            struct rawc *r = &c[map[j]];
            if (!pf[j].revents)
                continue;
            if (r->sent < r->req_len) {
                ssize_t w = send(r->fd, r->req + r->sent, r->req_len - r->sent, MSG_NOSIGNAL);
                if (w > 0)
                    r->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    r->done = true;
                continue;
            }
            char tmp[4096];
            ssize_t got = recv(r->fd, tmp, sizeof tmp, 0);
            if (got > 0) {
                size_t room = sizeof r->resp - 1 - r->got,
                       take = (size_t)got < room ? (size_t)got : room;
                memcpy(r->resp + r->got, tmp, take);
                r->got += take;
                r->resp[r->got] = '\0';
            } else if (got == 0 || errno != EAGAIN) {
                r->done = true;
                done++;
            }
        }
    }
    free(pf);
    for (int i = 0; i < n; i++)
        if (c[i].fd >= 0)
            close(c[i].fd);
    return done;
}

static int resp_status(const struct rawc *r)
{
    int code = 0;
    if (sscanf(r->resp, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

/* ---------------------------------------------------------------------------------------
 * Interleaving: many slow requests on ONE thread
 * ------------------------------------------------------------------------------------- */

#define N_SLOW      24
#define SLOW_CHUNKS 40

static atomic_int check_failures, reader_calls, switches, last_k = -1;
static __thread bool thread_has_baseline;

struct slow {
    int k;
    otelprof_context want;
    int chunks;
    /* suspend/resume */
    int phase;
    otelprof_http_request *req;
    struct MHD_Connection *conn;
};

static bool current_is(const otelprof_context *want)
{
    otelprof_context c;
    if (otelprof_current(&c, NULL, 0, NULL) != OTELPROF_OK)
        return false;
    const otelprof_span_context *sc = otelprof_current_span_context();
    return memcmp(c.trace_id, want->trace_id, 16) == 0 &&
           memcmp(c.span_id, want->span_id, 8) == 0 && sc &&
           memcmp(sc->span_id, want->span_id, 8) == 0;
}

static void check(bool ok, const char *what)
{
    if (!ok && atomic_fetch_add(&check_failures, 1) < 5)
        fprintf(stderr, "check failed: %s\n", what);
}

static ssize_t slow_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct slow *st = cls;
    check(current_is(&st->want), "reader runs with its own request's context");
    atomic_fetch_add(&reader_calls, 1);
    int prev = atomic_exchange(&last_k, st->k);
    if (prev != st->k)
        atomic_fetch_add(&switches, 1);
    if (st->chunks++ >= SLOW_CHUNKS)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (max < 8)
        return 0;
    usleep(100); /* slow producer: the others get their turn on this thread */
    memcpy(buf, "chunk..\n", 8);
    return 8;
}

static void slow_free(void *cls)
{
    struct slow *st = cls;
    check(current_is(&st->want), "reader free runs with its request's context");
    free(st);
}

/* The handler: first call headers only, second call queues a slow callback response. */
static enum MHD_Result slow_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **req_cls)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size;
    otelprof_http_request *r = otelprof_http_current_request();
    const otelprof_span_context *rc = otelprof_http_request_context(r);
    check(rc != NULL, "a current request inside the handler");
    if (!rc)
        return MHD_NO;
    otelprof_context want;
    memcpy(want.trace_id, rc->trace_id, 16);
    memcpy(want.span_id, rc->span_id, 8);
    want.trace_flags = rc->trace_flags;
    check(current_is(&want), "handler runs with its request's context");
    if (!*req_cls) {
        *req_cls = (void *)1;
        return MHD_YES;
    }
    struct slow *st = calloc(1, sizeof *st);
    st->want = want;
    const char *k = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
    st->k = k ? atoi(k) : -1;
    (void)url;
    struct MHD_Response *resp =
        otelprof_mhd_response_from_callback(MHD_SIZE_UNKNOWN, 64, slow_reader, st, slow_free);
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* What MHD calls: checks the thread's baseline before and after the middleware's call. */
static enum MHD_Result outer_handler(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version, const char *upload,
                                     size_t *upload_size, void **req_cls)
{
    if (!thread_has_baseline) { /* published for the thread's life, never detached */
        otelprof_token t;
        ASSERT_OK(otelprof_attach(&baseline_ctx, NULL, 0, &t));
        thread_has_baseline = true;
    }
    check(is_baseline(), "baseline before the middleware's handler call");
    enum MHD_Result ret =
        otelprof_mhd_access_handler(cls, c, url, method, version, upload, upload_size, req_cls);
    check(is_baseline(), "baseline back after the middleware's handler call");
    return ret;
}

static void slow_requests(struct rawc *c, int n, const char *path, char tids[][33])
{
    for (int i = 0; i < n; i++) {
        snprintf(tids[i], 33, "%08x%08x%08x%08x", 0x11111111u, (unsigned)getpid(), 0x22222222u,
                 (unsigned)i + 1);
        c[i].req = malloc(512);
        c[i].req_len =
            (size_t)snprintf(c[i].req, 512,
                             "GET %s?k=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                             "traceparent: 00-%s-%016x-01\r\n\r\n",
                             path, i, tids[i], (unsigned)i + 1);
    }
}

static void interleave_with(enum mode mode, bool sdk, otelprof_tracer *tracer)
{
    atomic_store(&check_failures, 0);
    atomic_store(&reader_calls, 0);
    atomic_store(&switches, 0);
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = sdk ? tracer : NULL);
    struct server s;
    memset(&s, 0, sizeof s);
    if (mode == M_EXTERNAL) {
        /* The loop thread holds the baseline and checks it after every MHD_run. */
        server_start(&s, mode, &ho, slow_handler, NULL, NULL, 0);
        /* server_start already started the loop without checks: restart it with them */
        atomic_store(&s.stop, true);
        pthread_join(s.loop, NULL);
        atomic_store(&s.stop, false);
        s.check_baseline = true;
        ASSERT_EQ(pthread_create(&s.loop, NULL, external_loop, &s), 0);
    } else {
        server_start(&s, mode, &ho, slow_handler, outer_handler, NULL, 0);
    }
    static struct rawc c[N_SLOW];
    char tids[N_SLOW][33];
    slow_requests(c, N_SLOW, "/slow", tids);
    int done = raw_run(s.port, c, N_SLOW, 30000);
    ASSERT_EQ(done, N_SLOW);
    for (int i = 0; i < N_SLOW; i++) {
        ASSERT_EQ(resp_status(&c[i]), 200);
        free(c[i].req);
    }
    if (sdk) {
        for (int i = 0; i < N_SLOW; i++) {
            uint8_t t[16];
            unhex(tids[i], t, 16);
            ASSERT_TRUE(wait_span(t, OTELPROF_SPAN_KIND_SERVER, 3000) != NULL);
        }
    }
    printf("%d reader calls, %d switches between requests, %d external loop runs\n",
           atomic_load(&reader_calls), atomic_load(&switches), atomic_load(&s.runs));
    server_stop(&s);
    ASSERT_EQ(atomic_load(&check_failures), 0);
    ASSERT_EQ(atomic_load(&s.baseline_failures), 0);
    ASSERT_GE(atomic_load(&reader_calls), N_SLOW * SLOW_CHUNKS);
    ASSERT_GE(atomic_load(&switches), N_SLOW * 2); /* they really interleaved */
}

static void interleave(enum mode mode, bool sdk)
{
    sdk_init();
    interleave_with(mode, sdk, g_tracer);
    sdk_fini();
}

/* A tracer of a WRAPPED provider (a misuse the middleware guards against): the wrapper
 * would keep each SERVER span published on the polling thread between calls; the
 * baseline checks around every call show nothing stays. */
static void t_interleave_wrapped_tracer(void)
{
    sdk_init();
    otelprof_status err;
    otelprof_wrap_opts wo = OTELPROF_WRAP_OPTS(.take_ownership = false);
    otelprof_tracer_provider *w = otelprof_tracer_provider_wrap(g_provider, &wo, &err);
    ASSERT_OK(err);
    interleave_with(M_SELECT, true, otelprof_tracer_provider_get_tracer(w, "wrapped", NULL, NULL));
    otelprof_tracer_provider_free(w);
    sdk_fini();
}

static void t_interleave_select(void)
{
    interleave(M_SELECT, true);
}
static void t_interleave_epoll(void)
{
    interleave(M_EPOLL, false);
}
static void t_interleave_external(void)
{
    interleave(M_EXTERNAL, true);
}

/* Suspended connections resumed from worker threads, which work under the request's
 * context in between; the polling thread is one (internal select). */
static void *resume_worker(void *arg)
{
    struct slow *st = arg;
    usleep((useconds_t)(2000 + (st->k * 7919) % 20000));
    check(otelprof_current(NULL, NULL, 0, NULL) == OTELPROF_E_NO_CONTEXT, "worker starts empty");
    otelprof_http_call call;
    ASSERT_OK(otelprof_http_request_enter(st->req, &call));
    check(current_is(&st->want), "worker publishes the suspended request's context");
    check(otelprof_http_current_request() == st->req, "worker's current request");
    ASSERT_OK(otelprof_http_request_leave(&call));
    check(otelprof_current(NULL, NULL, 0, NULL) == OTELPROF_E_NO_CONTEXT, "worker empty again");
    st->phase = 2;
    otelprof_mhd_resume(st->conn, st->req);
    return NULL;
}

static enum MHD_Result suspend_handler(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version, const char *upload,
                                       size_t *upload_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    otelprof_http_request *r = otelprof_http_current_request();
    const otelprof_span_context *rc = otelprof_http_request_context(r);
    if (!rc)
        return MHD_NO;
    struct slow *st = *req_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        memcpy(st->want.trace_id, rc->trace_id, 16);
        memcpy(st->want.span_id, rc->span_id, 8);
        const char *k = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
        st->k = k ? atoi(k) : 0;
        st->conn = c;
        *req_cls = st;
    }
    check(current_is(&st->want), "handler runs with its request's context");
    if (st->phase == 0) {
        st->phase = 1;
        st->req = otelprof_mhd_suspend(c);
        check(st->req == r, "suspend returns the current request");
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        ASSERT_EQ(pthread_create(&t, &a, resume_worker, st), 0);
        pthread_attr_destroy(&a);
        return MHD_YES;
    }
    check(st->phase == 2, "called again only after the resume");
    return reply(c, 200, "resumed\n");
}

static void suspend_done(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct slow *st = *req_cls;
    if (st)
        check(current_is(&st->want), "completion callback runs with its request's context");
    free(st);
    *req_cls = NULL;
}

static void t_interleave_suspend(void)
{
    sdk_init();
    atomic_store(&check_failures, 0);
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = g_tracer);
    struct server s;
    server_start(&s, M_SELECT, &ho, suspend_handler, outer_handler, suspend_done,
                 MHD_ALLOW_SUSPEND_RESUME);
    static struct rawc c[N_SLOW];
    char tids[N_SLOW][33];
    slow_requests(c, N_SLOW, "/suspend", tids);
    ASSERT_EQ(raw_run(s.port, c, N_SLOW, 30000), N_SLOW);
    for (int i = 0; i < N_SLOW; i++) {
        ASSERT_EQ(resp_status(&c[i]), 200);
        free(c[i].req);
        uint8_t t[16];
        unhex(tids[i], t, 16);
        ASSERT_TRUE(wait_span(t, OTELPROF_SPAN_KIND_SERVER, 3000) != NULL);
    }
    server_stop(&s);
    ASSERT_EQ(atomic_load(&check_failures), 0);
    sdk_fini();
}

/* ---------------------------------------------------------------------------------------
 * Hostile input (127.0.0.1 only, bounded in count and time)
 * ------------------------------------------------------------------------------------- */

static char *repeat(const char *prefix, const char *unit, size_t times, const char *suffix)
{
    size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix);
    char *s = malloc(pl + ul * times + sl + 1);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * times, suffix, sl + 1);
    return s;
}

/* A normal request must still be served, with its trace continued. */
static void assert_serving(unsigned port)
{
    struct rawc c;
    memset(&c, 0, sizeof c);
    char req[256];
    snprintf(req, sizeof req,
             "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n");
    c.req = req;
    c.req_len = strlen(req);
    ASSERT_EQ(raw_run(port, &c, 1, 5000), 1);
    ASSERT_EQ(resp_status(&c), 200);
    const char *body = strstr(c.resp, "\r\n\r\n");
    ASSERT_TRUE(body && strstr(body, "trace=0af7651916cd43dd8448eb211c80319c"));
}

static void hostile(unsigned port, int slowloris)
{
    assert_serving(port);
    const size_t big = 200 * 1024;
    char *reqs[] = {
        /* one oversized header */
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ", "a", big,
               "\r\nConnection: close\r\n\r\n"),
        /* an oversized traceparent */
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\ntraceparent: 00-", "f", 20000,
               "\r\nConnection: close\r\n\r\n"),
        /* thousands of headers */
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", "X-N: v\r\n", 5000,
               "\r\n"),
        /* hundreds of traceparent / tracestate fields (fit in MHD's memory) */
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
               "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n", 300,
               "\r\n"),
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n",
               "tracestate: a=1,,b=2,\r\n", 400, "\r\n"),
        /* malformed lines */
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\nno colon here\r\n: empty name\r\ntraceparent\r\n"
               "tracestate:\r\n\x01\x02\xff: \xfe\r\n",
               "", 0, "Connection: close\r\n\r\n"),
        repeat("GARBAGE\r\n\r\n", "", 0, ""),
        repeat("GET /echo HTTP/9.9\r\n\r\n", "", 0, ""),
        repeat("GET /echo HTTP/1.1\r\nHost: x\r\n traceparent: folded\r\nConnection: close\r\n\r\n",
               "", 0, ""),
        repeat("GET ", "/", 100000, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        repeat("\r\n\r\n\r\n", "", 0, ""),
    };
    const int nreq = (int)(sizeof reqs / sizeof reqs[0]);
    static struct rawc c[16];
    memset(c, 0, sizeof c);
    for (int i = 0; i < nreq; i++) {
        c[i].req = reqs[i];
        c[i].req_len = strlen(reqs[i]);
    }
    int done = raw_run(port, c, nreq, 10000);
    for (int i = 0; i < nreq; i++) {
        printf("hostile request %d (%zu bytes): status %d\n", i, c[i].req_len, resp_status(&c[i]));
        free(reqs[i]);
    }
    printf("%d of %d hostile connections closed by the server\n", done, nreq);
    assert_serving(port);

    /* Slowloris: connections that send a header line now and then, never finishing;
     * the server must keep serving others meanwhile. Bounded: count and 2 s. */
    int fds[64];
    for (int i = 0; i < slowloris; i++) {
        fds[i] = connect_local(port);
        if (fds[i] >= 0)
            (void)!send(fds[i], "GET /echo HTTP/1.1\r\nHost: x\r\n", 29, MSG_NOSIGNAL);
    }
    uint64_t end = mono_ms() + 2000;
    int served = 0;
    while (mono_ms() < end) {
        for (int i = 0; i < slowloris; i++)
            if (fds[i] >= 0)
                (void)!send(fds[i], "X-a: b\r\n", 8, MSG_NOSIGNAL | MSG_DONTWAIT);
        assert_serving(port);
        served++;
        usleep(200000);
    }
    for (int i = 0; i < slowloris; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("served %d normal requests during slowloris with %d connections\n", served, slowloris);
    ASSERT_GE(served, 3);
    assert_serving(port);
}

static void hostile_mhd(enum mode mode)
{
    sdk_init();
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = g_tracer, .route = route_fn);
    struct server s;
    server_start(&s, mode, &ho, echo_handler, NULL, NULL, 0);
    hostile(s.port, 40);
    server_stop(&s);
    sdk_fini();
}

static void t_hostile_mhd_select(void)
{
    hostile_mhd(M_SELECT);
}
static void t_hostile_mhd_tpc(void)
{
    hostile_mhd(M_TPC);
}

/* ---------------------------------------------------------------------------------------
 * CivetWeb
 * ------------------------------------------------------------------------------------- */
#ifdef HTTP_TEST_CIVETWEB
static int cw_echo(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    char body[512];
    describe_context(body, sizeof body);
    mg_send_http_ok(conn, "text/plain", (long long)strlen(body));
    mg_write(conn, body, strlen(body));
    return 200;
}

static atomic_int cw_user_begin, cw_user_end;

static int user_begin(struct mg_connection *conn)
{
    (void)conn;
    /* The application's own begin_request runs under the request's context. */
    check(otelprof_http_current_request() != NULL,
          "civetweb user begin_request inside the request");
    atomic_fetch_add(&cw_user_begin, 1);
    return 0;
}

static void user_end(const struct mg_connection *conn, int status)
{
    (void)conn, (void)status;
    check(otelprof_http_current_request() != NULL, "civetweb user end_request inside the request");
    atomic_fetch_add(&cw_user_end, 1);
}

struct cw_server {
    struct mg_context *ctx;
    otelprof_civetweb *cw;
    unsigned port;
};

static void cw_start(struct cw_server *s, const otelprof_http_opts *ho)
{
    mg_init_library(0);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.begin_request = user_begin;
    cb.end_request = user_end;
    otelprof_status err;
    s->cw = otelprof_civetweb_new(ho, &cb, &err);
    ASSERT_OK(err);
    const char *options[] = {
        "listening_ports",  "127.0.0.1:0", "num_threads", "16", "request_timeout_ms", "1000",
        "max_request_size", "65536",       NULL};
    s->ctx = mg_start(&cb, NULL, options);
    ASSERT_TRUE(s->ctx != NULL);
    mg_set_request_handler(s->ctx, "/", cw_echo, NULL);
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(s->ctx, 4, ports);
    ASSERT_GE(n, 1);
    s->port = (unsigned)ports[0].port;
}

static void cw_stop(struct cw_server *s)
{
    mg_stop(s->ctx);
    otelprof_civetweb_free(s->cw);
    mg_exit_library();
}

static void civetweb_case(bool sdk)
{
    need_curl_binary();
    sdk_init();
    atomic_store(&check_failures, 0);
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = sdk ? g_tracer : NULL, .route = route_fn);
    struct cw_server s;
    cw_start(&s, &ho);
    run_scenarios(s.port, sdk, "civetweb");
    cw_stop(&s);
    ASSERT_EQ(atomic_load(&check_failures), 0);
    ASSERT_GE(atomic_load(&cw_user_begin), (int)N_SCENARIOS);
    ASSERT_EQ(atomic_load(&cw_user_end), atomic_load(&cw_user_begin));
    sdk_fini();
}

static void t_civetweb(void)
{
    civetweb_case(true);
}
static void t_civetweb_prop(void)
{
    civetweb_case(false);
}

static void t_hostile_civetweb(void)
{
    sdk_init();
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = g_tracer, .route = route_fn);
    struct cw_server s;
    cw_start(&s, &ho);
    hostile(s.port, 8); /* fewer than its 16 worker threads: each slow connection holds one */
    cw_stop(&s);
    sdk_fini();
}
#else
static void t_civetweb(void)
{
    TEST_SKIP("built without CivetWeb (apt-get install libcivetweb-dev)");
}
static void t_civetweb_prop(void)
{
    t_civetweb();
}
static void t_hostile_civetweb(void)
{
    t_civetweb();
}
#endif

/* ---------------------------------------------------------------------------------------
 * libcurl helper: outgoing propagation
 * ------------------------------------------------------------------------------------- */
#ifdef HTTP_TEST_CURL
static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = size * n;
    if (have + add >= 1024)
        add = 1023 - have;
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
    return size * n;
}

/* GET /headers through the helper; the body says what the server received. */
static void helper_get(unsigned port, otelprof_tracer *tracer, struct curl_slist *user, char *body,
                       const otelprof_span_context **sent_out, otelprof_span_context *sent_copy)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/headers", port);
    CURL *h = curl_easy_init();
    ASSERT_TRUE(h != NULL);
    body[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    otelprof_curl_call *call = NULL;
    otelprof_curl_opts co = OTELPROF_CURL_OPTS(.tracer = tracer);
    ASSERT_OK(otelprof_curl_begin(h, url, user, &co, &call));
    const otelprof_span_context *sent = otelprof_curl_call_context(call);
    if (sent)
        *sent_copy = *sent;
    *sent_out = sent ? sent_copy : NULL;
    CURLcode rc = curl_easy_perform(h);
    ASSERT_EQ(rc, CURLE_OK);
    otelprof_curl_end(call, rc);
    curl_easy_cleanup(h);
}

static void t_curl_inject(void)
{
    sdk_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = NULL);
    struct server s;
    server_start(&s, M_SELECT, &ho, echo_handler, NULL, NULL, 0);
    char body[1024];
    const otelprof_span_context *sent;
    otelprof_span_context copy;

    /* 1. No current context, no tracer: nothing injected. */
    helper_get(s.port, NULL, NULL, body, &sent, &copy);
    ASSERT_NULL(sent);
    ASSERT_TRUE(strstr(body, "traceparent=-\n") != NULL);

    /* 2. The core's published context (no trace.h scope): its ids and flags. */
    otelprof_context pub = {{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                            {0xbb, 1, 2, 3, 4, 5, 6, 7},
                            0x03};
    otelprof_token tok;
    ASSERT_OK(otelprof_attach(&pub, NULL, 0, &tok));
    helper_get(s.port, NULL, NULL, body, &sent, &copy);
    ASSERT_TRUE(
        strstr(body, "traceparent=00-aa0102030405060708090a0b0c0d0e0f-bb01020304050607-03\n") !=
        NULL);
    ASSERT_OK(otelprof_detach(&tok));

    /* 3. A trace.h scope wins, with its tracestate; a stale traceparent of the caller's
     *    list is replaced and the caller's list is left as it was. */
    otelprof_span_context sc;
    memset(&sc, 0, sizeof sc);
    ASSERT_OK(otelprof_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                         OTELPROF_NUL_TERMINATED, &sc));
    ASSERT_OK(otelprof_tracestate_parse(&sc.tracestate, "k1=v1,k2=v2", OTELPROF_NUL_TERMINATED));
    otelprof_scope scope;
    ASSERT_OK(otelprof_scope_enter(&sc, &scope));
    ASSERT_OK(otelprof_attach(&pub, NULL, 0, &tok));
    struct curl_slist *user = curl_slist_append(
        NULL, "traceparent: 00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01");
    user = curl_slist_append(user, "X-Kept: yes");
    helper_get(s.port, NULL, user, body, &sent, &copy);
    ASSERT_TRUE(
        strstr(body, "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n") !=
        NULL);
    ASSERT_TRUE(strstr(body, "tracestate=k1=v1,k2=v2\n") != NULL);
    ASSERT_STR_EQ(user->data,
                  "traceparent: 00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01");
    ASSERT_STR_EQ(user->next->data, "X-Kept: yes");
    ASSERT_NULL(user->next->next);

    /* 4. With a tracer: a CLIENT span, child of the current context, is what is sent. */
    helper_get(s.port, g_tracer, user, body, &sent, &copy);
    ASSERT_TRUE(sent != NULL);
    char want[128], sid[17];
    hex(sid, sent->span_id, 8);
    snprintf(want, sizeof want, "traceparent=00-0af7651916cd43dd8448eb211c80319c-%s-01\n", sid);
    ASSERT_TRUE(strstr(body, want) != NULL);
    uint8_t t[16];
    unhex("0af7651916cd43dd8448eb211c80319c", t, 16);
    const otelprof_span_data *sd = wait_span(t, OTELPROF_SPAN_KIND_CLIENT, 3000);
    ASSERT_TRUE(sd != NULL);
    char pid[17];
    hex(pid, sd->parent_span_id, 8);
    ASSERT_STR_EQ(pid, "b7ad6b7169203331");
    assert_attr_str(sd, "http.request.method", "GET");
    assert_attr_str(sd, "server.address", "127.0.0.1");
    assert_attr_int(sd, "server.port", s.port);
    assert_attr_int(sd, "http.response.status_code", 200);
    char full[128];
    snprintf(full, sizeof full, "http://127.0.0.1:%u/headers", s.port);
    assert_attr_str(sd, "url.full", full);
    ASSERT_OK(otelprof_detach(&tok));
    ASSERT_OK(otelprof_scope_leave(&scope));
    curl_slist_free_all(user);

    /* 5. Inside a request of the middleware, the helper propagates the request's context:
     *    the echo server (propagation-only) continues a trace whose parent it published. */
    struct curl_slist *list = NULL;
    ASSERT_OK(otelprof_curl_inject(NULL, &sc, &list));
    ASSERT_STR_EQ(list->data,
                  "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    ASSERT_STR_EQ(list->next->data, "tracestate: k1=v1,k2=v2");
    curl_slist_free_all(list);
    list = NULL;
    ASSERT_OK(otelprof_curl_inject(NULL, NULL, &list)); /* no context: nothing */
    ASSERT_NULL(list);
    ASSERT_STATUS(otelprof_curl_inject(NULL, NULL, NULL), OTELPROF_E_INVAL);
    otelprof_curl_end(NULL, CURLE_OK);

    server_stop(&s);
    curl_global_cleanup();
    sdk_fini();
}
#else
static void t_curl_inject(void)
{
    TEST_SKIP("built without libcurl (apt-get install libcurl4-openssl-dev)");
}
#endif

/* ---------------------------------------------------------------------------------------
 * Node.js client with the OpenTelemetry JS SDK
 * ------------------------------------------------------------------------------------- */

static bool json_str(const char *doc, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(doc, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap)
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void node_case(enum mode mode)
{
    const char *node = getenv("HTTP_NODE"), *mods = getenv("HTTP_NODE_MODULES"),
               *client = getenv("HTTP_NODE_CLIENT");
    if (!node || !*node)
        TEST_SKIP("node not found");
    if (!mods || !client)
        TEST_SKIP("HTTP_NODE_MODULES / HTTP_NODE_CLIENT not set (run through ctest)");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/@opentelemetry/sdk-trace-base/package.json", mods);
    if (access(probe, R_OK) != 0)
        TEST_SKIP("npm packages not installed in %s (http.npm_ci skipped: registry unreachable?)",
                  mods);
    sdk_init();
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = g_tracer, .route = route_fn);
    struct server s;
    server_start(&s, mode, &ho, echo_handler, NULL, NULL, 0);
    for (int round = 0; round < 3; round++) {
        char url[128], out[4096], env_path[4200];
        snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", s.port);
        snprintf(env_path, sizeof env_path, "NODE_PATH=%s", mods);
        char *argv[] = {(char *)node, (char *)client, url, NULL};
        char *envp[] = {env_path, "PATH=/usr/bin:/bin", NULL};
        int rc = run_capture(argv, envp, out, sizeof out, 30000);
        if (rc != 0)
            TEST_FAIL("node client exited %d: %s", rc, out);
        printf("node: %s", out);
        char trace[40], span[24], body[600];
        ASSERT_TRUE(json_str(out, "traceId", trace, sizeof trace));
        ASSERT_TRUE(json_str(out, "spanId", span, sizeof span));
        ASSERT_TRUE(json_str(out, "body", body, sizeof body));
        ASSERT_TRUE(strstr(out, "\"status\":200") != NULL);
        struct seen seen;
        parse_seen(body, &seen);
        /* (a) published in the handler: the client's trace id, a span id of the server's */
        ASSERT_STR_EQ(seen.trace, trace);
        if (strcmp(seen.span, span) == 0)
            TEST_FAIL("server published the client's span id");
        /* (b) exported SERVER span: parent == the client's CLIENT span */
        uint8_t t[16];
        unhex(trace, t, 16);
        const otelprof_span_data *sd = wait_span(t, OTELPROF_SPAN_KIND_SERVER, 3000);
        ASSERT_TRUE(sd != NULL);
        char pid[17], sid[17];
        hex(pid, sd->parent_span_id, 8);
        hex(sid, sd->context.span_id, 8);
        ASSERT_STR_EQ(pid, span);
        ASSERT_STR_EQ(sid, seen.span);
        ASSERT_TRUE(sd->parent_is_remote);
        assert_attr_str(sd, "http.route", "/echo");
    }
    server_stop(&s);
    sdk_fini();
}

static void t_node_client(void)
{
    node_case(M_SELECT);
}
static void t_node_client_tpc(void)
{
    node_case(M_TPC);
}

static const test_case cases[] = {
    {"mhd_select", t_mhd_select},
    {"mhd_poll", t_mhd_poll},
    {"mhd_epoll", t_mhd_epoll},
    {"mhd_pool", t_mhd_pool},
    {"mhd_tpc", t_mhd_tpc},
    {"mhd_external", t_mhd_external},
    {"mhd_prop_select", t_mhd_prop_select},
    {"mhd_prop_poll", t_mhd_prop_poll},
    {"mhd_prop_epoll", t_mhd_prop_epoll},
    {"mhd_prop_pool", t_mhd_prop_pool},
    {"mhd_prop_tpc", t_mhd_prop_tpc},
    {"mhd_prop_external", t_mhd_prop_external},
    {"route_api", t_route_api},
    {"opts_validation", t_opts_validation},
    {"interleave_select", t_interleave_select},
    {"interleave_epoll_prop", t_interleave_epoll},
    {"interleave_external", t_interleave_external},
    {"interleave_suspend", t_interleave_suspend},
    {"interleave_wrapped_tracer", t_interleave_wrapped_tracer},
    {"hostile_mhd_select", t_hostile_mhd_select},
    {"hostile_mhd_tpc", t_hostile_mhd_tpc},
    {"civetweb", t_civetweb},
    {"civetweb_prop", t_civetweb_prop},
    {"hostile_civetweb", t_hostile_civetweb},
    {"curl_inject", t_curl_inject},
    {"node_client", t_node_client},
    {"node_client_tpc", t_node_client_tpc},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return test_main(cases, argc, argv);
}
