/* OTLP/HTTP exporter tests. Each case is its own ctest entry (otlp.<case>.<flavour>).
 *
 * Cases that talk HTTP start tests/otlp/receiver.js (Node.js, the official generated
 * protobuf code of @opentelemetry/otlp-proto-exporter-base@0.51.1) on 127.0.0.1 and
 * compare what it decoded with what was sent, through check.js. They skip (77) when node
 * or the npm packages are missing (the otlp.npm_ci entry installs them).
 *
 * Cases marked "internal" use the private API (src/otlp/otlp_internal.h) and exist only in
 * the static flavour, where those hidden symbols can be linked.
 */
#define _GNU_SOURCE
#include <otelprof/exporter_otlp.h>
#include <otelprof/sdk.h>
#include <otelprof/trace.h>

#include "test.h"

#ifdef OTLP_TEST_STATIC
#include "otlp/otlp_internal.h"
#endif

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

/* test.h's integer comparisons would truncate seconds and milliseconds */
#define ASSERT_DBL_(a, op, b)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(a_ op b_))                                                                           \
            TEST_FAIL("ASSERT(%s %s %s) failed: %g vs %g", #a, #op, #b, a_, b_);                   \
    } while (0)
#define ASSERT_DBL_LT(a, b) ASSERT_DBL_(a, <, b)
#define ASSERT_DBL_GE(a, b) ASSERT_DBL_(a, >=, b)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *tmp_dir(void)
{
    const char *d = getenv("OTLP_TMPDIR");
    return d && *d ? d : "/tmp";
}

/* Remove a scratch file unless OTLP_KEEP_FILES is set (to look at them after a run). */
static void rm_tmp(const char *path)
{
    if (!getenv("OTLP_KEEP_FILES"))
        unlink(path);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Messages from the log callback (reachable in the static flavour only: the core's
 * logger is a hidden symbol of libotelprof.so). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[1 << 16];
static size_t log_len;

static void log_capture(otelprof_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    pthread_mutex_lock(&log_mu);
    int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof log_text - log_len)
        log_len += (size_t)n;
    pthread_mutex_unlock(&log_mu);
    if (getenv("OTLP_TEST_VERBOSE"))
        fprintf(stderr, "log: %s\n", msg);
}

static void log_start(void)
{
    pthread_mutex_lock(&log_mu);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_mu);
    otelprof_set_log(log_capture, NULL, NULL, NULL);
}

static bool log_has(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    bool r = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return r;
}

#ifdef OTLP_TEST_STATIC
#define ASSERT_LOGGED(s)                                                                           \
    do {                                                                                           \
        if (!log_has(s))                                                                           \
            TEST_FAIL("log does not mention \"%s\"; log:\n%s", (s), log_text);                     \
    } while (0)
#else
#define ASSERT_LOGGED(s) ((void)log_has(s)) /* not reachable through libotelprof.so */
#endif

/* ---------------------------------------------------------------------------------------
 * The Node.js receiver
 * ------------------------------------------------------------------------------------- */

typedef struct receiver {
    pid_t pid;
    int port;
    char out[512];
    char url[128];
} receiver;

static const char *node_bin(void)
{
    const char *node = getenv("OTLP_NODE");
    if (!node || !*node || access(node, X_OK) != 0)
        TEST_SKIP("node not found (OTLP_NODE unset: run through ctest, with Node.js installed)");
    const char *mods = getenv("OTLP_NODE_MODULES");
    char path[1024];
    snprintf(path, sizeof path,
             "%s/@opentelemetry/otlp-proto-exporter-base/build/src/generated/root.js",
             mods ? mods : "");
    if (!mods || access(path, R_OK) != 0)
        TEST_SKIP("the receiver's npm packages are not installed (otlp.npm_ci skipped or failed: "
                  "npm registry unreachable?)");
    return node;
}

static void receiver_start(receiver *r, const char *const *args)
{
    const char *node = node_bin();
    const char *script = getenv("OTLP_RECEIVER");
    ASSERT_TRUE(script != NULL);
    memset(r, 0, sizeof *r);
    snprintf(r->out, sizeof r->out, "%s/otlp-recv-XXXXXX", tmp_dir());
    int fd = mkstemp(r->out);
    ASSERT_GE(fd, 0);
    close(fd);
    int pfd[2];
    ASSERT_EQ(pipe(pfd), 0);
    const char *argv[32];
    size_t k = 0;
    argv[k++] = node;
    argv[k++] = script;
    argv[k++] = "--out";
    argv[k++] = r->out;
    for (size_t i = 0; args && args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* the receiver dies with the test */
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        setenv("NODE_PATH", getenv("OTLP_NODE_MODULES"), 1);
        execv(node, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    r->pid = pid;
    char line[128];
    size_t n = 0;
    double until = now_s() + 20;
    while (n < sizeof line - 1 && now_s() < until) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t got = read(pfd[0], line + n, 1);
        if (got <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(pfd[0]);
    if (sscanf(line, "PORT %d", &r->port) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        TEST_FAIL("the receiver did not start (said \"%s\")", line);
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/v1/traces", r->port);
}

static void receiver_stop(receiver *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    rm_tmp(r->out);
}

/* Requests logged; with status >= 0 only those answered with it. */
static int recv_count(const receiver *r, int status)
{
    char *s = slurp(r->out);
    ASSERT_TRUE(s != NULL);
    int n = 0;
    char want[32];
    snprintf(want, sizeof want, "\"status\":%d,", status);
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (status < 0 || strstr(line, want))
            n++;
        line = nl + 1;
    }
    free(s);
    return n;
}

/* Arrival time (ms since the receiver started) of request seq. */
static double recv_time_ms(const receiver *r, int seq)
{
    char *s = slurp(r->out);
    ASSERT_TRUE(s != NULL);
    char want[32];
    snprintf(want, sizeof want, "{\"seq\":%d,\"tMs\":", seq);
    char *p = strstr(s, want);
    ASSERT_TRUE(p != NULL);
    double t = strtod(p + strlen(want), NULL);
    free(s);
    return t;
}

static bool recv_contains(const receiver *r, const char *needle)
{
    char *s = slurp(r->out);
    ASSERT_TRUE(s != NULL);
    bool found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* node check.js expected received [extra args] */
static void run_check(const receiver *r, const char *expected, const char *extra)
{
    const char *check = getenv("OTLP_CHECK");
    ASSERT_TRUE(check != NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' %s", node_bin(), check, expected, r->out,
             extra ? extra : "");
    fflush(stdout);
    int rc = system(cmd);
    if (rc != 0)
        TEST_FAIL("check.js found differences (exit %d); received: %s", rc, r->out);
}

/* A TCP port on 127.0.0.1 nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------------------------------
 * Span fixtures, and their expected JSON (written independently of the encoder)
 * ------------------------------------------------------------------------------------- */

static const char *const str_items[] = {"", "ascii", "ünïcödé ✓", "🚀 日本語"};
static const bool bool_items[] = {true, false, true};
static const int64_t int_items[] = {0, -1, INT64_MIN, INT64_MAX, 42};
static const double dbl_items[] = {0.0, -0.0, 1.5, -2.25e-10, 1.7976931348623157e308};

static uint64_t lcg = 0x853c49e6748fea9bULL;
static void fill_id(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (uint8_t)(lcg >> 56);
    }
    p[0] |= 1; /* never all zero */
}

static void js_str(FILE *f, const char *s, size_t n)
{
    if (!s)
        n = 0;
    else if (n == OTELPROF_NUL_TERMINATED)
        n = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void js_hex(FILE *f, const uint8_t *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

static void js_double(FILE *f, double d)
{
    if (isnan(d))
        fputs("\"NaN\"", f);
    else if (isinf(d))
        fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
    else if (d == 0 && signbit(d))
        fputs("\"-0\"", f);
    else
        fprintf(f, "%.17g", d);
}

static void js_scalar(FILE *f, otelprof_value_type t, const void *items, size_t i)
{
    switch (t) {
    case OTELPROF_VALUE_STRING_ARRAY:
        fputs("{\"stringValue\":", f);
        js_str(f, ((const char *const *)items)[i], OTELPROF_NUL_TERMINATED);
        break;
    case OTELPROF_VALUE_BOOL_ARRAY:
        fprintf(f, "{\"boolValue\":%s", ((const bool *)items)[i] ? "true" : "false");
        break;
    case OTELPROF_VALUE_INT_ARRAY:
        fprintf(f, "{\"intValue\":\"%lld\"", (long long)((const int64_t *)items)[i]);
        break;
    default:
        fputs("{\"doubleValue\":", f);
        js_double(f, ((const double *)items)[i]);
        break;
    }
    fputc('}', f);
}

static void js_value(FILE *f, const otelprof_value *v)
{
    switch (v->type) {
    case OTELPROF_VALUE_STRING:
        fputs("{\"stringValue\":", f);
        js_str(f, v->u.str.ptr, v->u.str.len);
        fputc('}', f);
        break;
    case OTELPROF_VALUE_BOOL:
        fprintf(f, "{\"boolValue\":%s}", v->u.b ? "true" : "false");
        break;
    case OTELPROF_VALUE_INT:
        fprintf(f, "{\"intValue\":\"%lld\"}", (long long)v->u.i);
        break;
    case OTELPROF_VALUE_DOUBLE:
        fputs("{\"doubleValue\":", f);
        js_double(f, v->u.d);
        fputc('}', f);
        break;
    default:
        fputs("{\"arrayValue\":[", f);
        for (size_t i = 0; i < v->u.array.n; i++) {
            if (i)
                fputc(',', f);
            js_scalar(f, v->type, v->u.array.items, i);
        }
        fputs("]}", f);
        break;
    }
}

static void js_attrs(FILE *f, const otelprof_kv *a, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        fputs("{\"key\":", f);
        js_str(f, a[i].key, OTELPROF_NUL_TERMINATED);
        fputs(",\"value\":", f);
        js_value(f, &a[i].value);
        fputc('}', f);
    }
    fputc(']', f);
}

#define MAX_SPANS 16

typedef struct fixture {
    otelprof_resource *res_a, *res_b;
    otelprof_scope_info s1, s1_copy, s2, s3;
    otelprof_kv all[32];
    size_t n_all;
    otelprof_kv few[3];
    otelprof_kv link_attrs[2];
    otelprof_event_data events[3];
    otelprof_link_data links[2];
    const char *link_ts[2]; /* expected trace_state of links[i] */
    otelprof_span_data spans[MAX_SPANS];
    const char *ts[MAX_SPANS]; /* expected trace_state of spans[i] */
    const otelprof_span_data *ptrs[MAX_SPANS];
    size_t n;
} fixture;

static void put_res(otelprof_resource *r, otelprof_kv kv)
{
    ASSERT_OK(otelprof_resource_put(r, &kv));
}

static otelprof_span_data *add_span(fixture *fx, const char *name, const otelprof_resource *res,
                                    const otelprof_scope_info *scope)
{
    ASSERT_LT(fx->n, MAX_SPANS);
    otelprof_span_data *s = &fx->spans[fx->n];
    memset(s, 0, sizeof *s);
    fill_id(s->context.trace_id, 16);
    fill_id(s->context.span_id, 8);
    s->context.trace_flags = OTELPROF_FLAG_SAMPLED;
    s->name = name;
    s->kind = OTELPROF_SPAN_KIND_INTERNAL;
    s->start_time_ns = 1700000000123456789ULL + fx->n * 1000;
    s->end_time_ns = s->start_time_ns + 987654321ULL;
    s->resource = res;
    s->scope = scope;
    fx->ts[fx->n] = "";
    fx->ptrs[fx->n] = s;
    fx->n++;
    return s;
}

static void fixture_build(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->res_a = otelprof_resource_new();
    fx->res_b = otelprof_resource_new();
    ASSERT_TRUE(fx->res_a && fx->res_b);
    put_res(fx->res_a, OTELPROF_KV_STR("service.name", "otlp-test-a"));
    put_res(fx->res_a, OTELPROF_KV_INT("process.pid", 4242));
    put_res(fx->res_a, OTELPROF_KV_STR("deployment.environment", "tëst"));
    put_res(fx->res_b, OTELPROF_KV_STR("service.name", "otlp-test-b"));
    put_res(fx->res_b, OTELPROF_KV_BOOL("b.flag", true));
    put_res(fx->res_b, OTELPROF_KV_DOUBLE("b.ratio", 0.25));

    fx->s1 = (otelprof_scope_info){"lib.one", "1.2.3", "https://opentelemetry.io/schemas/1.24.0"};
    fx->s1_copy = fx->s1; /* another pointer, same scope: must share a ScopeSpans */
    fx->s2 = (otelprof_scope_info){"lib.two", NULL, NULL};
    fx->s3 = (otelprof_scope_info){"lib.三", "0.0.1-β", NULL};

    size_t k = 0;
    otelprof_kv *a = fx->all;
    a[k++] = OTELPROF_KV_STR("str", "value");
    a[k++] = OTELPROF_KV_STR("str.empty", "");
    a[k++] = OTELPROF_KV_STR("str.utf8", "héllo wörld ✓ 日本語 🚀");
    a[k++] = OTELPROF_KV_STR("str.escapes", "line1\nline2\t\"q\"\\ \x01");
    a[k++] = (otelprof_kv){"str.len", {.type = OTELPROF_VALUE_STRING, .u.str = {"abcdef", 3}}};
    a[k++] = OTELPROF_KV_STR("ключ", "значение");
    a[k++] = OTELPROF_KV_BOOL("bool.true", true);
    a[k++] = OTELPROF_KV_BOOL("bool.false", false);
    a[k++] = OTELPROF_KV_INT("int.zero", 0);
    a[k++] = OTELPROF_KV_INT("int.neg", -1);
    a[k++] = OTELPROF_KV_INT("int.min", INT64_MIN);
    a[k++] = OTELPROF_KV_INT("int.max", INT64_MAX);
    a[k++] = OTELPROF_KV_DOUBLE("double.half", 0.5);
    a[k++] = OTELPROF_KV_DOUBLE("double.negzero", -0.0);
    a[k++] = OTELPROF_KV_DOUBLE("double.max", 1.7976931348623157e308);
    a[k++] = OTELPROF_KV_DOUBLE("double.denorm", 4.9406564584124654e-324);
    a[k++] = OTELPROF_KV_DOUBLE("double.pi", 3.141592653589793);
    a[k++] = OTELPROF_KV_DOUBLE("double.inf", INFINITY);
    a[k++] =
        (otelprof_kv){"arr.str", {.type = OTELPROF_VALUE_STRING_ARRAY, .u.array = {str_items, 4}}};
    a[k++] =
        (otelprof_kv){"arr.bool", {.type = OTELPROF_VALUE_BOOL_ARRAY, .u.array = {bool_items, 3}}};
    a[k++] =
        (otelprof_kv){"arr.int", {.type = OTELPROF_VALUE_INT_ARRAY, .u.array = {int_items, 5}}};
    a[k++] = (otelprof_kv){"arr.double",
                           {.type = OTELPROF_VALUE_DOUBLE_ARRAY, .u.array = {dbl_items, 5}}};
    a[k++] =
        (otelprof_kv){"arr.empty", {.type = OTELPROF_VALUE_INT_ARRAY, .u.array = {int_items, 0}}};
    fx->n_all = k;

    fx->few[0] = OTELPROF_KV_STR("http.method", "GET");
    fx->few[1] = OTELPROF_KV_INT("http.status_code", 200);
    fx->few[2] = OTELPROF_KV_DOUBLE("ratio", -12.5);
    fx->link_attrs[0] = OTELPROF_KV_STR("link.reason", "fan-in");
    fx->link_attrs[1] = OTELPROF_KV_INT("link.n", 7);

    fx->events[0] = (otelprof_event_data){"exception", 1700000000500000000ULL, fx->few, 3, 2};
    fx->events[1] =
        (otelprof_event_data){"ëvent without attrs", 1700000000600000001ULL, NULL, 0, 0};
    fx->events[2] =
        (otelprof_event_data){"all types", 1700000000700000002ULL, fx->all, fx->n_all, 0};

    memset(fx->links, 0, sizeof fx->links);
    fill_id(fx->links[0].context.trace_id, 16);
    fill_id(fx->links[0].context.span_id, 8);
    fx->links[0].context.trace_flags = OTELPROF_FLAG_SAMPLED;
    fx->links[0].context.is_remote = true;
    ASSERT_OK(otelprof_tracestate_parse(&fx->links[0].context.tracestate, "vendor=v1",
                                        OTELPROF_NUL_TERMINATED));
    fx->link_ts[0] = "vendor=v1";
    fx->links[0].attrs = fx->link_attrs;
    fx->links[0].n_attrs = 2;
    fx->links[0].dropped_attrs = 1;
    fill_id(fx->links[1].context.trace_id, 16);
    fill_id(fx->links[1].context.span_id, 8);
    fx->link_ts[1] = "";

    otelprof_span_data *s;
    s = add_span(fx, "GET /api/items", fx->res_a, &fx->s1);
    s->kind = OTELPROF_SPAN_KIND_SERVER;
    s->attrs = fx->all;
    s->n_attrs = fx->n_all;
    s->events = fx->events;
    s->n_events = 2;
    s->status = OTELPROF_SPAN_STATUS_OK;
    ASSERT_OK(otelprof_tracestate_parse(&s->context.tracestate,
                                        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
                                        OTELPROF_NUL_TERMINATED));
    fx->ts[fx->n - 1] = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    const otelprof_span_data *root = s;

    s = add_span(fx, "chïld ✓", fx->res_a, &fx->s1);
    memcpy(s->context.trace_id, root->context.trace_id, 16);
    memcpy(s->parent_span_id, root->context.span_id, 8);
    s->attrs = fx->few;
    s->n_attrs = 3;
    s->dropped_attrs = 3;
    s->dropped_events = 2;
    s->dropped_links = 1;
    s->links = fx->links;
    s->n_links = 1;
    s->status = OTELPROF_SPAN_STATUS_ERROR;
    s->status_description = "it broke: ünïcödé";

    s = add_span(fx, "", fx->res_b, &fx->s2); /* empty name, remote parent, unsampled */
    fill_id(s->parent_span_id, 8);
    s->parent_is_remote = true;
    s->context.trace_flags = 0;
    s->kind = OTELPROF_SPAN_KIND_CLIENT;

    s = add_span(fx, "produce", fx->res_a, &fx->s2);
    s->kind = OTELPROF_SPAN_KIND_PRODUCER;
    s->context.trace_flags = OTELPROF_FLAG_SAMPLED | OTELPROF_FLAG_RANDOM_TRACE_ID;
    s->end_time_ns = s->start_time_ns;

    s = add_span(fx, "same scope, other pointer", fx->res_a, &fx->s1_copy);
    s->attrs = fx->few;
    s->n_attrs = 1;

    s = add_span(fx, "consume", fx->res_b, &fx->s1);
    s->kind = OTELPROF_SPAN_KIND_CONSUMER;
    s->events = &fx->events[2];
    s->n_events = 1;
    s->links = fx->links;
    s->n_links = 2;

    s = add_span(fx, "no resource, no scope", NULL, NULL);
    s->attrs = fx->few + 1;
    s->n_attrs = 2;

    s = add_span(fx, "third scope", fx->res_a, &fx->s3);
    s->status = OTELPROF_SPAN_STATUS_ERROR;

    s = add_span(fx, "back to the first group", fx->res_a, &fx->s1);
    s->events = fx->events;
    s->n_events = 3;

    s = add_span(fx, "last", fx->res_b, &fx->s2);
    s->attrs = fx->all + 3;
    s->n_attrs = 3;
}

static void fixture_free(fixture *fx)
{
    otelprof_resource_free(fx->res_a);
    otelprof_resource_free(fx->res_b);
}

static void js_span(FILE *f, const otelprof_span_data *s, const char *ts,
                    const char *const *link_ts, const otelprof_link_data *links_base)
{
    static const uint8_t zero8[8];
    fputs("{\"traceId\":", f);
    js_hex(f, s->context.trace_id, 16);
    fputs(",\"spanId\":", f);
    js_hex(f, s->context.span_id, 8);
    fputs(",\"traceState\":", f);
    js_str(f, ts, OTELPROF_NUL_TERMINATED);
    fputs(",\"parentSpanId\":", f);
    if (memcmp(s->parent_span_id, zero8, 8) == 0)
        fputs("\"\"", f);
    else
        js_hex(f, s->parent_span_id, 8);
    fprintf(f, ",\"flags\":%u",
            (unsigned)s->context.trace_flags | 0x100u | (s->parent_is_remote ? 0x200u : 0));
    fputs(",\"name\":", f);
    js_str(f, s->name, OTELPROF_NUL_TERMINATED);
    fprintf(f, ",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\"",
            (int)s->kind, (unsigned long long)s->start_time_ns, (unsigned long long)s->end_time_ns);
    fputs(",\"attributes\":", f);
    js_attrs(f, s->attrs, s->n_attrs);
    fprintf(f, ",\"droppedAttributesCount\":%u,\"events\":[", s->dropped_attrs);
    for (size_t i = 0; i < s->n_events; i++) {
        const otelprof_event_data *e = &s->events[i];
        fprintf(f, "%s{\"timeUnixNano\":\"%llu\",\"name\":", i ? "," : "",
                (unsigned long long)e->time_ns);
        js_str(f, e->name, OTELPROF_NUL_TERMINATED);
        fputs(",\"attributes\":", f);
        js_attrs(f, e->attrs, e->n_attrs);
        fprintf(f, ",\"droppedAttributesCount\":%u}", e->dropped_attrs);
    }
    fprintf(f, "],\"droppedEventsCount\":%u,\"links\":[", s->dropped_events);
    for (size_t i = 0; i < s->n_links; i++) {
        const otelprof_link_data *l = &s->links[i];
        fputs(i ? ",{\"traceId\":" : "{\"traceId\":", f);
        js_hex(f, l->context.trace_id, 16);
        fputs(",\"spanId\":", f);
        js_hex(f, l->context.span_id, 8);
        fputs(",\"traceState\":", f);
        js_str(f, link_ts[l - links_base], OTELPROF_NUL_TERMINATED);
        fputs(",\"attributes\":", f);
        js_attrs(f, l->attrs, l->n_attrs);
        fprintf(f, ",\"droppedAttributesCount\":%u,\"flags\":%u}", l->dropped_attrs,
                (unsigned)l->context.trace_flags | 0x100u | (l->context.is_remote ? 0x200u : 0));
    }
    fprintf(f, "],\"droppedLinksCount\":%u,\"status\":{\"code\":%d,\"message\":", s->dropped_links,
            (int)s->status);
    js_str(f, s->status_description, OTELPROF_NUL_TERMINATED);
    fputs("},\"resource\":", f);
    if (s->resource) {
        size_t n = 0;
        const otelprof_kv *ra = otelprof_resource_attributes(s->resource, &n);
        fputs("{\"attributes\":", f);
        js_attrs(f, ra, n);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"scope\":", f);
    if (s->scope) {
        fputs("{\"name\":", f);
        js_str(f, s->scope->name, OTELPROF_NUL_TERMINATED);
        fputs(",\"version\":", f);
        js_str(f, s->scope->version, OTELPROF_NUL_TERMINATED);
        fputs(",\"schemaUrl\":", f);
        js_str(f, s->scope->schema_url, OTELPROF_NUL_TERMINATED);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputc('}', f);
}

/* Writes the expected JSON of fx (its first n spans); returns the path (static buffer). */
static const char *fixture_expect(const fixture *fx, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/otlp-expect-XXXXXX", tmp_dir());
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    FILE *f = fdopen(fd, "w");
    ASSERT_TRUE(f != NULL);
    fputs("{\"spans\":[", f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(",\n", f);
        js_span(f, &fx->spans[i], fx->ts[i], fx->link_ts, fx->links);
    }
    fputs("]}\n", f);
    fclose(f);
    return path;
}

static otelprof_span_exporter *exporter_for(const receiver *r, otelprof_otlp_opts o)
{
    o.sz = sizeof o;
    if (!o.endpoint)
        o.endpoint = r->url;
    otelprof_status err = OTELPROF_E_INVAL;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(&o, &err);
    ASSERT_OK(err);
    ASSERT_TRUE(e != NULL);
    return e;
}

static otelprof_otlp_stats stats_of(otelprof_span_exporter *e)
{
    otelprof_otlp_stats st;
    ASSERT_OK(otelprof_otlp_exporter_stats(e, &st));
    return st;
}

static otelprof_export_result export_fx(otelprof_span_exporter *e, const fixture *fx, size_t n)
{
    return e->ops->export_spans(e, fx->ptrs, n);
}

/* ---------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------- */

static void roundtrip(otelprof_otlp_compression comp, const char *encoding)
{
    receiver r;
    receiver_start(&r, NULL);
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.compression = comp));
    ASSERT_EQ(export_fx(e, &fx, fx.n), OTELPROF_EXPORT_SUCCESS);
    const char *exp = fixture_expect(&fx, fx.n);
    char extra[128];
    snprintf(extra, sizeof extra, "--encoding %s --path /v1/traces", encoding);
    run_check(&r, exp, extra);
    rm_tmp(exp);
    otelprof_otlp_stats st = stats_of(e);
    char *s = slurp(r.out);
    char *p = strstr(s, "\"rawBytes\":"), *q = strstr(s, "\"bodyBytes\":");
    ASSERT_TRUE(p && q);
    long raw = strtol(p + 11, NULL, 10), body = strtol(q + 12, NULL, 10);
    free(s);
    printf("%s: %ld bytes on the wire for %ld bytes of protobuf (%zu spans)\n", encoding, raw, body,
           fx.n);
    ASSERT_EQ((long)st.bytes_sent, raw);
    if (comp == OTELPROF_OTLP_COMPRESSION_GZIP)
        ASSERT_LT(raw, body);
    else
        ASSERT_EQ(raw, body);

    /* a second batch on the same (reused) handle and buffers */
    ASSERT_EQ(e->ops->export_spans(e, fx.ptrs, 3), OTELPROF_EXPORT_SUCCESS);
    st = stats_of(e);
    ASSERT_EQ(st.requests, 2);
    ASSERT_EQ(st.spans_exported, fx.n + 3);
    ASSERT_EQ(st.spans_failed, 0);
    ASSERT_EQ(recv_count(&r, 200), 2);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

static void test_roundtrip_plain(void)
{
    roundtrip(OTELPROF_OTLP_COMPRESSION_NONE, "identity");
}

static void test_roundtrip_gzip(void)
{
    roundtrip(OTELPROF_OTLP_COMPRESSION_GZIP, "gzip");
}

/* Invalid UTF-8 becomes U+FFFD (one per byte that starts no well-formed sequence), so the
 * collector's decoder (which rejects invalid strings) accepts the request. */
static void test_roundtrip_bad_utf8(void)
{
    receiver r;
    receiver_start(&r, NULL);
    otelprof_kv kv[2] = {OTELPROF_KV_STR("k\xFF", "v\xE2\x82"), OTELPROF_KV_STR("ok", "fine")};
    otelprof_span_data s;
    memset(&s, 0, sizeof s);
    memcpy(s.context.trace_id, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
           16);
    memcpy(s.context.span_id, "\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8", 8);
    s.name = "bad\xC3\x28name\xED\xA0\x80";
    s.kind = OTELPROF_SPAN_KIND_INTERNAL;
    s.start_time_ns = 1;
    s.end_time_ns = 2;
    s.attrs = kv;
    s.n_attrs = 2;
    const otelprof_span_data *p = &s;
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.timeout_ms = 5000));
    ASSERT_EQ(e->ops->export_spans(e, &p, 1), OTELPROF_EXPORT_SUCCESS);
    char path[512];
    snprintf(path, sizeof path, "%s/otlp-expect-XXXXXX", tmp_dir());
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":"
          "\"a1a2a3a4a5a6a7a8\","
          "\"traceState\":\"\",\"parentSpanId\":\"\",\"flags\":256,"
          "\"name\":\"bad\\ufffd(name\\ufffd\\ufffd\\ufffd\",\"kind\":1,"
          "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\",\"attributes\":["
          "{\"key\":\"k\\ufffd\",\"value\":{\"stringValue\":\"v\\ufffd\\ufffd\"}},"
          "{\"key\":\"ok\",\"value\":{\"stringValue\":\"fine\"}}],"
          "\"droppedAttributesCount\":0,\"events\":[],\"droppedEventsCount\":0,\"links\":[],"
          "\"droppedLinksCount\":0,\"status\":{\"code\":0,\"message\":\"\"},"
          "\"resource\":null,\"scope\":null}]}\n",
          f);
    fclose(f);
    run_check(&r, path, NULL);
    rm_tmp(path);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
}

/* A batch larger than max_request_bytes goes out as several requests, each under the cap,
 * every span exactly once and still grouped; a span alone over the cap is dropped. */
static void test_split_requests(void)
{
    receiver r;
    receiver_start(&r, NULL);
    fixture fx;
    fixture_build(&fx);
    enum { N = 300 };
    static otelprof_span_data many[N];
    static const otelprof_span_data *ptrs[N + 1];
    static char names[N][32];
    const otelprof_scope_info *scopes[3] = {&fx.s1, &fx.s2, &fx.s3};
    for (size_t i = 0; i < N; i++) {
        many[i] = fx.spans[i % fx.n];
        fill_id(many[i].context.span_id, 8);
        snprintf(names[i], sizeof names[i], "span %zu", i);
        many[i].name = names[i];
        many[i].resource = (i % 7 == 3) ? fx.res_b : fx.res_a;
        many[i].scope = scopes[i % 3];
        if (many[i].attrs == fx.all) { /* keep requests small and many */
            many[i].attrs = fx.few;
            many[i].n_attrs = 3;
        }
        many[i].events = NULL;
        many[i].n_events = 0;
        ptrs[i] = &many[i];
    }
    /* one span that alone exceeds the cap */
    static char big[8192];
    memset(big, 'x', sizeof big - 1);
    otelprof_kv big_kv = OTELPROF_KV_STR("big", big);
    otelprof_span_data huge = many[0];
    fill_id(huge.context.span_id, 8);
    huge.attrs = &big_kv;
    huge.n_attrs = 1;
    ptrs[N] = &huge;

    enum { CAP = 4096 };
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.max_request_bytes = CAP));
    log_start();
    ASSERT_EQ(e->ops->export_spans(e, ptrs, N + 1), OTELPROF_EXPORT_FAILURE);
    otelprof_otlp_stats st = stats_of(e);
    printf("%d spans -> %llu requests of at most %d bytes\n", N, (unsigned long long)st.requests,
           CAP);
    ASSERT_GT(st.requests, 5);
    ASSERT_EQ(st.spans_exported, N);
    ASSERT_EQ(st.spans_too_large, 1);
    ASSERT_EQ(st.spans_failed, 0);
    ASSERT_LOGGED("alone encode to more than 4096 bytes");

    /* expected: the N spans (not the huge one) */
    char path[512];
    snprintf(path, sizeof path, "%s/otlp-expect-XXXXXX", tmp_dir());
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"spans\":[", f);
    for (size_t i = 0; i < N; i++) {
        if (i)
            fputs(",\n", f);
        size_t src = i % fx.n;
        js_span(f, &many[i], fx.ts[src], fx.link_ts, fx.links);
    }
    fputs("]}\n", f);
    fclose(f);
    char extra[64];
    snprintf(extra, sizeof extra, "--max-body %d", CAP);
    run_check(&r, path, extra);
    rm_tmp(path);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

/* ---------------------------------------------------------------------------------------
 * Retries
 * ------------------------------------------------------------------------------------- */

static void test_retry_503(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--plan", "503,503", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e =
        exporter_for(&r, OTELPROF_OTLP_OPTS(.initial_backoff_ms = 50, .max_backoff_ms = 200,
                                            .timeout_ms = 10000));
    double t = now_s();
    ASSERT_EQ(export_fx(e, &fx, fx.n), OTELPROF_EXPORT_SUCCESS);
    t = now_s() - t;
    otelprof_otlp_stats st = stats_of(e);
    ASSERT_EQ(st.requests, 3);
    ASSERT_EQ(st.retries, 2);
    ASSERT_EQ(st.spans_exported, fx.n);
    ASSERT_EQ(recv_count(&r, 503), 2);
    ASSERT_EQ(recv_count(&r, 200), 1);
    /* backoff: 50 then 100 ms steps, each jittered to [0.5, 1) of the step */
    double gap1 = recv_time_ms(&r, 1) - recv_time_ms(&r, 0);
    double gap2 = recv_time_ms(&r, 2) - recv_time_ms(&r, 1);
    printf("retry gaps %.1f ms, %.1f ms; export took %.3f s\n", gap1, gap2, t);
    ASSERT_DBL_GE(gap1, 20);
    ASSERT_DBL_GE(gap2, 45);
    const char *exp = fixture_expect(&fx, fx.n);
    run_check(&r, exp, NULL); /* delivered once, intact */
    rm_tmp(exp);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

static void test_no_retry_400(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--default", "400", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e =
        exporter_for(&r, OTELPROF_OTLP_OPTS(.initial_backoff_ms = 20, .max_backoff_ms = 50));
    log_start();
    ASSERT_EQ(export_fx(e, &fx, 3), OTELPROF_EXPORT_FAILURE);
    sleep_ms(200);
    ASSERT_EQ(recv_count(&r, -1), 1);
    otelprof_otlp_stats st = stats_of(e);
    ASSERT_EQ(st.requests, 1);
    ASSERT_EQ(st.retries, 0);
    ASSERT_EQ(st.spans_failed, 3);
    /* the google.rpc.Status message of the response is decoded for the log */
    ASSERT_LOGGED("HTTP 400: test receiver answered 400");
    ASSERT_LOGGED("not retried");
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

static void test_retry_after_429(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--plan", "429:ra=1", NULL});
    fixture fx;
    fixture_build(&fx);
    /* a backoff of 10 ms would retry at once: the 1 s comes from Retry-After */
    otelprof_span_exporter *e = exporter_for(
        &r, OTELPROF_OTLP_OPTS(.initial_backoff_ms = 10, .max_backoff_ms = 10, .timeout_ms = 5000));
    ASSERT_EQ(export_fx(e, &fx, 4), OTELPROF_EXPORT_SUCCESS);
    ASSERT_EQ(recv_count(&r, 429), 1);
    ASSERT_EQ(recv_count(&r, 200), 1);
    double gap = recv_time_ms(&r, 1) - recv_time_ms(&r, 0);
    printf("Retry-After: 1 -> retried after %.1f ms\n", gap);
    ASSERT_DBL_GE(gap, 950);
    ASSERT_DBL_LT(gap, 3000);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

/* A Retry-After longer than what is left of the export timeout ends the export at once. */
static void test_retry_after_bounded(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--default", "429:ra=30", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.timeout_ms = 1500));
    log_start();
    double t = now_s();
    ASSERT_EQ(export_fx(e, &fx, 4), OTELPROF_EXPORT_FAILURE);
    t = now_s() - t;
    printf("Retry-After: 30 with a 1500 ms timeout: gave up after %.3f s\n", t);
    ASSERT_DBL_LT(t, 1.5);
    ASSERT_EQ(recv_count(&r, -1), 1);
    ASSERT_LOGGED("would pass the 1500 ms timeout");
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

static void test_retries_exhausted(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--default", "503", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(
        &r, OTELPROF_OTLP_OPTS(.max_retries = 3, .initial_backoff_ms = 10, .max_backoff_ms = 40));
    ASSERT_EQ(export_fx(e, &fx, 2), OTELPROF_EXPORT_FAILURE);
    otelprof_otlp_stats st = stats_of(e);
    ASSERT_EQ(st.requests, 4);
    ASSERT_EQ(st.retries, 3);
    ASSERT_EQ(st.spans_failed, 2);
    ASSERT_EQ(recv_count(&r, 503), 4);
    otelprof_span_exporter_free(e);

    /* OTELPROF_OTLP_NO_RETRIES: one attempt */
    e = exporter_for(&r, OTELPROF_OTLP_OPTS(.max_retries = OTELPROF_OTLP_NO_RETRIES));
    ASSERT_EQ(export_fx(e, &fx, 2), OTELPROF_EXPORT_FAILURE);
    ASSERT_EQ(stats_of(e).requests, 1);
    ASSERT_EQ(recv_count(&r, 503), 5);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

static void test_partial_success(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--partial", "2:two spans were bad", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.timeout_ms = 5000));
    log_start();
    ASSERT_EQ(export_fx(e, &fx, 5), OTELPROF_EXPORT_SUCCESS);
    otelprof_otlp_stats st = stats_of(e);
    ASSERT_EQ(st.spans_rejected, 2);
    ASSERT_EQ(st.spans_exported, 5);
    ASSERT_EQ(st.requests, 1); /* a partial success is not retried */
    ASSERT_LOGGED("rejected 2 of 5 spans: two spans were bad");
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

/* Nothing listens: connection errors are retried until the timeout, then the batch is
 * dropped; the call takes about the timeout. */
static void test_collector_down(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", closed_port());
    fixture fx;
    fixture_build(&fx);
    otelprof_status err;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(
        &OTELPROF_OTLP_OPTS(.endpoint = url, .timeout_ms = 1000, .initial_backoff_ms = 50,
                            .max_backoff_ms = 200),
        &err);
    ASSERT_TRUE(e != NULL);
    log_start();
    double t = now_s();
    ASSERT_EQ(export_fx(e, &fx, fx.n), OTELPROF_EXPORT_FAILURE);
    t = now_s() - t;
    otelprof_otlp_stats st = stats_of(e);
    printf("collector down: %llu attempts in %.3f s\n", (unsigned long long)st.requests, t);
    ASSERT_GE(st.requests, 3);
    ASSERT_DBL_LT(t, 1.3);
    ASSERT_EQ(st.spans_failed, fx.n);
    ASSERT_LOGGED("Couldn't connect");
    otelprof_span_exporter_free(e);
    fixture_free(&fx);
}

/* The collector answers after 3 s; the export gives up at its 800 ms timeout. */
static void test_collector_slow(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--delay-ms", "3000", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.timeout_ms = 800));
    double t = now_s();
    ASSERT_EQ(export_fx(e, &fx, fx.n), OTELPROF_EXPORT_FAILURE);
    t = now_s() - t;
    printf("slow collector: export gave up after %.3f s\n", t);
    ASSERT_DBL_GE(t, 0.7);
    ASSERT_DBL_LT(t, 1.3);
    /* The next flush reports that the export ran out of time, once. */
    ASSERT_STATUS(e->ops->force_flush(e, 100), OTELPROF_E_TIMEOUT);
    ASSERT_OK(e->ops->force_flush(e, 100));
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

typedef struct export_job {
    otelprof_span_exporter *e;
    const fixture *fx;
    otelprof_export_result res;
    double took;
} export_job;

static void *export_thread(void *arg)
{
    export_job *j = arg;
    double t = now_s();
    j->res = export_fx(j->e, j->fx, j->fx->n);
    j->took = now_s() - t;
    return NULL;
}

/* shutdown from another thread stops an export stuck on a slow collector: it waits its own
 * timeout, then aborts the transfer. */
static void test_shutdown_aborts(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--delay-ms", "10000", NULL});
    fixture fx;
    fixture_build(&fx);
    otelprof_span_exporter *e = exporter_for(&r, OTELPROF_OTLP_OPTS(.timeout_ms = 20000));
    export_job j = {e, &fx, OTELPROF_EXPORT_SUCCESS, 0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, export_thread, &j), 0);
    sleep_ms(300);
    /* force_flush waits for the running export up to its timeout, then says it gave up. */
    double t = now_s();
    ASSERT_STATUS(e->ops->force_flush(e, 150), OTELPROF_E_TIMEOUT);
    ASSERT_DBL_GE(now_s() - t, 0.14);
    t = now_s();
    ASSERT_STATUS(e->ops->shutdown(e, 200), OTELPROF_E_TIMEOUT); /* it aborted the export */
    t = now_s() - t;
    pthread_join(th, NULL);
    printf("shutdown took %.3f s; the export returned after %.3f s\n", t, j.took);
    ASSERT_EQ(j.res, OTELPROF_EXPORT_FAILURE);
    ASSERT_DBL_LT(t, 1.6);
    ASSERT_DBL_LT(j.took, 2.5);
    /* after shutdown every export fails at once */
    ASSERT_EQ(export_fx(e, &fx, 1), OTELPROF_EXPORT_FAILURE);
    otelprof_span_exporter_free(e);
    receiver_stop(&r);
    fixture_free(&fx);
}

/* The exporter keeps nothing when exports fail: heap in use stays flat. */
static void test_exporter_memory_bounded(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", closed_port());
    fixture fx;
    fixture_build(&fx);
    enum { N = 512 };
    static const otelprof_span_data *ptrs[N];
    for (size_t i = 0; i < N; i++)
        ptrs[i] = &fx.spans[i % fx.n];
    otelprof_status err;
    otelprof_span_exporter *e =
        otelprof_otlp_exporter_new(&OTELPROF_OTLP_OPTS(.endpoint = url, .timeout_ms = 50,
                                                       .max_retries = OTELPROF_OTLP_NO_RETRIES),
                                   &err);
    ASSERT_TRUE(e != NULL);
    ASSERT_EQ(e->ops->export_spans(e, ptrs, N), OTELPROF_EXPORT_FAILURE); /* warm up */
    struct mallinfo2 m0 = mallinfo2();
    size_t peak = 0;
    for (int round = 0; round < 200; round++) {
        ASSERT_EQ(e->ops->export_spans(e, ptrs, N), OTELPROF_EXPORT_FAILURE);
        struct mallinfo2 m = mallinfo2();
        if (m.uordblks > peak)
            peak = m.uordblks;
    }
    otelprof_otlp_stats st = stats_of(e);
    ASSERT_EQ(st.spans_failed, 201 * N);
    printf("heap in use: %zu KiB before, peak %zu KiB over 200 failed batches of %d spans\n",
           m0.uordblks >> 10, peak >> 10, N);
    if (UNDER_ASAN)
        printf("(heap bound not checked under ASan)\n");
    else
        ASSERT_LT(peak, m0.uordblks + ((size_t)2 << 20));
    otelprof_span_exporter_free(e);
    fixture_free(&fx);
}

/* ---------------------------------------------------------------------------------------
 * With the SDK: tracer provider + batch processor + OTLP exporter, collector in trouble.
 * Application threads must never wait for the exporter; memory must stay bounded; drops
 * must be counted.
 * ------------------------------------------------------------------------------------- */

enum { PRODUCERS = 2, SPANS_PER_THREAD = 50000 };

typedef struct producer {
    otelprof_tracer *tracer;
    double max_end_s, max_start_s;
    size_t peak_heap;
    bool sample_heap;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    char payload[201];
    memset(payload, 'p', 200);
    payload[200] = '\0';
    otelprof_kv attrs[4] = {OTELPROF_KV_STR("payload", payload), OTELPROF_KV_INT("i", 0),
                            OTELPROF_KV_BOOL("b", true), OTELPROF_KV_DOUBLE("d", 1.5)};
    for (int i = 0; i < SPANS_PER_THREAD; i++) {
        attrs[1].value.u.i = i;
        otelprof_span_start_opts so =
            OTELPROF_SPAN_START_OPTS(.root = true, .attrs = attrs, .n_attrs = 4);
        double t0 = now_s();
        otelprof_span *s = otelprof_tracer_start_span(p->tracer, "work", &so);
        double t1 = now_s();
        otelprof_span_end(s, 0);
        double t2 = now_s();
        if (t1 - t0 > p->max_start_s)
            p->max_start_s = t1 - t0;
        if (t2 - t1 > p->max_end_s)
            p->max_end_s = t2 - t1;
        if (p->sample_heap && i % 500 == 0) {
            struct mallinfo2 m = mallinfo2();
            if (m.uordblks > p->peak_heap)
                p->peak_heap = m.uordblks;
        }
    }
    return NULL;
}

static void sdk_pressure(const char *what, const char *endpoint, uint32_t timeout_ms)
{
    otelprof_status err;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(
        &OTELPROF_OTLP_OPTS(.endpoint = endpoint, .timeout_ms = timeout_ms,
                            .initial_backoff_ms = 50, .max_backoff_ms = 200),
        &err);
    ASSERT_TRUE(e != NULL);
    otelprof_span_processor *bp = otelprof_batch_processor_new(
        e, &OTELPROF_BATCH_OPTS(.max_queue_size = 1024, .schedule_delay_ms = 100,
                                .export_timeout_ms = 3000, .max_export_batch_size = 256));
    ASSERT_TRUE(bp != NULL);
    struct mallinfo2 m0 = mallinfo2();
    otelprof_tracer_provider *tp =
        otelprof_sdk_provider_new(&OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .resource = otelprof_resource_new(),
                                                     .processors = &bp, .n_processors = 1),
                                  &err);
    ASSERT_TRUE(tp != NULL);
    otelprof_tracer *tr = otelprof_tracer_provider_get_tracer(tp, "otlp-test", "1.0", NULL);
    ASSERT_TRUE(tr != NULL);
    producer prod[PRODUCERS];
    pthread_t th[PRODUCERS];
    memset(prod, 0, sizeof prod);
    double t = now_s();
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i].tracer = tr;
        prod[i].sample_heap = i == 0;
        ASSERT_EQ(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    t = now_s() - t;
    double max_end = 0, max_start = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        if (prod[i].max_end_s > max_end)
            max_end = prod[i].max_end_s;
        if (prod[i].max_start_s > max_start)
            max_start = prod[i].max_start_s;
    }
    otelprof_batch_stats bs;
    ASSERT_OK(otelprof_batch_processor_stats(bp, &bs));
    /* Generous: the provider must not free the resource while a timed-out batch processor
     * still exports spans that point at it (see the report); the queue's last exports
     * fail after timeout_ms each. */
    double ts = now_s();
    otelprof_tracer_provider_shutdown(tp, 15000);
    ts = now_s() - ts;
    otelprof_otlp_stats es = stats_of(e);
    otelprof_batch_stats bs2;
    ASSERT_OK(otelprof_batch_processor_stats(bp, &bs2));
    uint64_t total = (uint64_t)PRODUCERS * SPANS_PER_THREAD;
    printf("%s: %llu spans in %.3f s; max span end %.3f ms, max span start %.3f ms\n", what,
           (unsigned long long)total, t, max_end * 1e3, max_start * 1e3);
    printf("%s: batch processor: enqueued %llu, dropped (queue full) %llu, exported %llu, "
           "export failures %llu; exporter: %llu requests, %llu spans failed\n",
           what, (unsigned long long)bs2.enqueued, (unsigned long long)bs2.dropped_queue_full,
           (unsigned long long)bs2.exported, (unsigned long long)bs2.export_failures,
           (unsigned long long)es.requests, (unsigned long long)es.spans_failed);
    printf("%s: heap in use %zu KiB before, peak %zu KiB while producing; shutdown %.3f s\n", what,
           m0.uordblks >> 10, prod[0].peak_heap >> 10, ts);
    /* a span end that waited for an export would take about the export timeout */
    ASSERT_DBL_LT(max_end, 0.25);
    ASSERT_GT(bs.dropped_queue_full, 0);
    ASSERT_EQ(bs.enqueued + bs.dropped_queue_full, total);
    ASSERT_GT(bs2.export_failures, 0);
    ASSERT_EQ(es.spans_exported, 0);
    ASSERT_GT(es.spans_failed, 0);
    ASSERT_DBL_LT(ts, 15.5);
    if (UNDER_ASAN)
        printf("(heap bound not checked under ASan)\n");
    else /* the queue (1024 spans) and one request buffer; 100000 spans would be ~40 MiB */
        ASSERT_LT(prod[0].peak_heap, m0.uordblks + ((size_t)16 << 20));
    otelprof_tracer_provider_free(tp);
}

static void test_sdk_collector_down(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", closed_port());
    sdk_pressure("down", url, 500);
}

static void test_sdk_collector_slow(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--delay-ms", "5000", "--brief", NULL});
    sdk_pressure("slow", r.url, 500);
    receiver_stop(&r);
}

static void test_sdk_collector_503(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--default", "503", "--brief", NULL});
    sdk_pressure("503", r.url, 500);
    receiver_stop(&r);
}

/* OTLP export timeouts as the application sees them through the provider's force_flush:
 * OTELPROF_E_TIMEOUT when the export gives up at its own timeout within the flush, and when
 * the flush's timeout ends first. */
static void test_sdk_flush_timeout(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--delay-ms", "4000", "--brief", NULL});
    otelprof_status err;
    otelprof_span_exporter *e = exporter_for(
        &r, OTELPROF_OTLP_OPTS(.timeout_ms = 400, .max_retries = OTELPROF_OTLP_NO_RETRIES));
    otelprof_span_processor *bp = otelprof_batch_processor_new(
        e, &OTELPROF_BATCH_OPTS(.max_queue_size = 64, .schedule_delay_ms = 60000,
                                .max_export_batch_size = 64));
    ASSERT_TRUE(bp != NULL);
    otelprof_tracer_provider *tp =
        otelprof_sdk_provider_new(&OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .resource = otelprof_resource_new(),
                                                     .processors = &bp, .n_processors = 1),
                                  &err);
    ASSERT_TRUE(tp != NULL);
    otelprof_tracer *tr = otelprof_tracer_provider_get_tracer(tp, "otlp-test", "1.0", NULL);
    otelprof_span_end(otelprof_tracer_start_span(tr, "late", NULL), 0);
    /* The export (400 ms) ends well inside the flush's 5 s, but it did not deliver. */
    double t = now_s();
    ASSERT_STATUS(otelprof_tracer_provider_force_flush(tp, 5000), OTELPROF_E_TIMEOUT);
    t = now_s() - t;
    printf("flush with an export that timed out: %.3f s\n", t);
    ASSERT_DBL_GE(t, 0.35);
    ASSERT_DBL_LT(t, 2.5);
    ASSERT_EQ(stats_of(e).spans_failed, 1);
    /* Nothing new since: the next flush succeeds. */
    ASSERT_OK(otelprof_tracer_provider_force_flush(tp, 5000));
    /* The flush's own timeout is shorter than the export's: the processor gives up. */
    otelprof_span_end(otelprof_tracer_start_span(tr, "later", NULL), 0);
    t = now_s();
    ASSERT_STATUS(otelprof_tracer_provider_force_flush(tp, 100), OTELPROF_E_TIMEOUT);
    ASSERT_DBL_LT(now_s() - t, 0.35);
    /* The export goes on in the background and runs out of time too. That flush already
     * reported it, so shutdown, which waits for it, does not report it again. */
    ASSERT_OK(otelprof_tracer_provider_shutdown(tp, 5000));
    ASSERT_EQ(stats_of(e).spans_failed, 2);
    ASSERT_STR_EQ(otelprof_status_name(OTELPROF_E_TIMEOUT), "OTELPROF_E_TIMEOUT");
    otelprof_tracer_provider_free(tp);
    receiver_stop(&r);
}

/* The normal path end to end: provider -> batch processor -> exporter -> receiver. */
static void test_sdk_delivers(void)
{
    receiver r;
    receiver_start(&r, (const char *const[]){"--brief", NULL});
    otelprof_status err;
    otelprof_span_exporter *e =
        exporter_for(&r, OTELPROF_OTLP_OPTS(.compression = OTELPROF_OTLP_COMPRESSION_GZIP));
    otelprof_span_processor *bp = otelprof_batch_processor_new(
        e, &OTELPROF_BATCH_OPTS(.max_queue_size = 4096, .schedule_delay_ms = 50,
                                .max_export_batch_size = 512));
    ASSERT_TRUE(bp != NULL);
    otelprof_tracer_provider *tp =
        otelprof_sdk_provider_new(&OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .resource = otelprof_resource_new(),
                                                     .processors = &bp, .n_processors = 1),
                                  &err);
    ASSERT_TRUE(tp != NULL);
    otelprof_tracer *tr = otelprof_tracer_provider_get_tracer(tp, "otlp-test", "1.0", NULL);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        otelprof_kv kv = OTELPROF_KV_INT("i", i);
        otelprof_span_start_opts so =
            OTELPROF_SPAN_START_OPTS(.root = true, .attrs = &kv, .n_attrs = 1);
        otelprof_span *s = otelprof_tracer_start_span(tr, "delivered", &so);
        otelprof_span_end(s, 0);
        if (i % 1000 == 999)
            sleep_ms(20); /* let the queue drain: this case checks delivery, not drops */
    }
    ASSERT_OK(otelprof_tracer_provider_force_flush(tp, 10000));
    otelprof_otlp_stats st = stats_of(e);
    otelprof_batch_stats bs;
    ASSERT_OK(otelprof_batch_processor_stats(bp, &bs));
    printf("delivered %llu spans in %llu requests (%llu dropped by the queue)\n",
           (unsigned long long)st.spans_exported, (unsigned long long)st.requests,
           (unsigned long long)bs.dropped_queue_full);
    ASSERT_EQ(st.spans_exported + bs.dropped_queue_full, N);
    ASSERT_EQ(st.spans_failed, 0);
    /* the receiver counted the same spans */
    char *s = slurp(r.out);
    long seen = 0;
    for (char *p = s; (p = strstr(p, "\"spans\":")) != NULL; p += 8)
        seen += strtol(p + 8, NULL, 10);
    free(s);
    ASSERT_EQ(seen, (long)st.spans_exported);
    otelprof_tracer_provider_free(tp);
    receiver_stop(&r);
}

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

static const char *const otlp_env_vars[] = {"OTEL_EXPORTER_OTLP_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_HEADERS",
                                            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                            "OTEL_EXPORTER_OTLP_TIMEOUT",
                                            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                                            "OTEL_EXPORTER_OTLP_COMPRESSION",
                                            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                                            NULL};

static void env_clear(void)
{
    for (size_t i = 0; otlp_env_vars[i]; i++)
        unsetenv(otlp_env_vars[i]);
}

static void test_opts_validation(void)
{
    otelprof_status err = OTELPROF_OK;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new(NULL, &err); /* all defaults */
    ASSERT_OK(err);
    ASSERT_TRUE(e != NULL);
    otelprof_span_exporter_free(e);

    otelprof_otlp_opts o = OTELPROF_OTLP_OPTS(.timeout_ms = 5);
    o.sz = 4;
    ASSERT_NULL(otelprof_otlp_exporter_new(&o, &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);

    /* a newer caller's struct: unknown bytes must be zero */
    struct {
        otelprof_otlp_opts o;
        uint64_t future;
    } big;
    memset(&big, 0, sizeof big);
    big.o.sz = sizeof big;
    big.future = 1;
    ASSERT_NULL(otelprof_otlp_exporter_new(&big.o, &err));
    ASSERT_STATUS(err, OTELPROF_E_OPTS);
    big.future = 0;
    e = otelprof_otlp_exporter_new(&big.o, &err);
    ASSERT_TRUE(e != NULL);
    otelprof_span_exporter_free(e);

    /* an older caller's struct (only sz and endpoint) */
    o = OTELPROF_OTLP_OPTS(.endpoint = "http://127.0.0.1:9/v1/traces", .timeout_ms = 77);
    o.sz = offsetof(otelprof_otlp_opts, headers);
    e = otelprof_otlp_exporter_new(&o, &err);
    ASSERT_TRUE(e != NULL);
    otelprof_span_exporter_free(e);

    const char *bad[] = {"ftp://x/v1/traces", "localhost:4318", "http://", "http://a b/",
                         "https:///x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_NULL(otelprof_otlp_exporter_new(&OTELPROF_OTLP_OPTS(.endpoint = bad[i]), &err));
        ASSERT_STATUS(err, OTELPROF_E_INVAL);
    }
    ASSERT_NULL(otelprof_otlp_exporter_new(
        &OTELPROF_OTLP_OPTS(.compression = (otelprof_otlp_compression)7), &err));
    ASSERT_STATUS(err, OTELPROF_E_INVAL);

    /* stats: only for OTLP exporters */
    otelprof_otlp_stats st;
    ASSERT_STATUS(otelprof_otlp_exporter_stats(NULL, &st), OTELPROF_E_INVAL);
    otelprof_span_exporter *mem = otelprof_memory_exporter_new(4);
    ASSERT_TRUE(mem != NULL);
    ASSERT_STATUS(otelprof_otlp_exporter_stats(mem, &st), OTELPROF_E_INVAL);
    otelprof_span_exporter_free(mem);

    /* an empty batch sends nothing */
    e = otelprof_otlp_exporter_new(&OTELPROF_OTLP_OPTS(.endpoint = "http://127.0.0.1:9/v1/traces"),
                                   &err);
    ASSERT_EQ(e->ops->export_spans(e, NULL, 0), OTELPROF_EXPORT_SUCCESS);
    ASSERT_EQ(stats_of(e).requests, 0);
    ASSERT_OK(e->ops->force_flush(e, 100));
    ASSERT_OK(e->ops->shutdown(e, 100));
    otelprof_span_exporter_free(e);
}

/* Environment end to end: endpoint (+ /v1/traces), headers (percent-decoded), gzip and
 * timeout reach the receiver. */
static void test_env_e2e(void)
{
    receiver r;
    receiver_start(&r, NULL);
    env_clear();
    char base[96];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", r.port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base, 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc%3D%3D , x-tenant=t1,broken",
           1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4000", 1);
    otelprof_status err;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new_from_env(&err);
    ASSERT_OK(err);
    fixture fx;
    fixture_build(&fx);
    ASSERT_EQ(export_fx(e, &fx, fx.n), OTELPROF_EXPORT_SUCCESS);
    ASSERT_TRUE(recv_contains(&r, "\"path\":\"/v1/traces\""));
    ASSERT_TRUE(recv_contains(&r, "\"authorization\":\"Bearer abc==\""));
    ASSERT_TRUE(recv_contains(&r, "\"x-tenant\":\"t1\""));
    ASSERT_TRUE(recv_contains(&r, "\"content-encoding\":\"gzip\""));
    ASSERT_TRUE(recv_contains(&r, "\"content-type\":\"application/x-protobuf\""));
    ASSERT_TRUE(recv_contains(&r, "\"user-agent\":\"OTel-OTLP-Exporter-C/"));
    ASSERT_TRUE(!recv_contains(&r, "broken"));
    const char *exp = fixture_expect(&fx, fx.n);
    run_check(&r, exp, "--encoding gzip --path /v1/traces");
    rm_tmp(exp);
    otelprof_span_exporter_free(e);

    /* the TRACES_ variants win and the endpoint is used as is */
    char full[128];
    snprintf(full, sizeof full, "http://127.0.0.1:%d/custom/path", r.port);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full, 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=t2", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none", 1);
    e = otelprof_otlp_exporter_new_from_env(&err);
    ASSERT_OK(err);
    ASSERT_EQ(export_fx(e, &fx, 1), OTELPROF_EXPORT_SUCCESS);
    char *s = slurp(r.out);
    char *second = strstr(s, "{\"seq\":1,");
    ASSERT_TRUE(second != NULL);
    ASSERT_TRUE(strstr(second, "\"path\":\"/custom/path\"") != NULL);
    ASSERT_TRUE(strstr(second, "\"x-tenant\":\"t2\"") != NULL);
    ASSERT_TRUE(strstr(second, "authorization") == NULL);
    ASSERT_TRUE(strstr(second, "content-encoding") == NULL);
    free(s);
    otelprof_span_exporter_free(e);
    env_clear();
    receiver_stop(&r);
    fixture_free(&fx);
}

/* A malformed variable is logged and its default kept (checked end to end: the exporter is
 * still created, and sends uncompressed). */
static void test_env_bad_values_e2e(void)
{
    receiver r;
    receiver_start(&r, NULL);
    env_clear();
    char full[128];
    snprintf(full, sizeof full, "http://127.0.0.1:%d/v1/traces", r.port);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full, 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", 1);
    log_start();
    otelprof_status err;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new_from_env(&err);
    ASSERT_OK(err);
    ASSERT_TRUE(e != NULL);
    ASSERT_LOGGED("OTEL_EXPORTER_OTLP_COMPRESSION=\"brotli\" is not gzip or none");
    ASSERT_LOGGED("OTEL_EXPORTER_OTLP_TIMEOUT=\"soon\"");
    fixture fx;
    fixture_build(&fx);
    ASSERT_EQ(export_fx(e, &fx, 2), OTELPROF_EXPORT_SUCCESS);
    ASSERT_TRUE(!recv_contains(&r, "content-encoding"));
    otelprof_span_exporter_free(e);
    env_clear();
    receiver_stop(&r);
    fixture_free(&fx);
}

#ifdef OTLP_TEST_STATIC
/* internal: the resolved configuration */
static op_otlp_config cfg_from_env(void)
{
    op_otlp_env env;
    ASSERT_OK(op_otlp_env_read(&env));
    op_otlp_config cfg;
    ASSERT_OK(op_otlp_config_from_opts(&cfg, &env.opts));
    op_otlp_env_free(&env);
    return cfg;
}

static void test_env_parsing(void)
{
    env_clear();
    log_start();
    op_otlp_config c = cfg_from_env();
    ASSERT_STR_EQ(c.endpoint, "http://localhost:4318/v1/traces");
    ASSERT_EQ(c.n_headers, 0);
    ASSERT_EQ(c.timeout_ms, 10000);
    ASSERT_TRUE(!c.gzip);
    ASSERT_EQ(c.max_retries, 5);
    ASSERT_EQ(c.max_request_bytes, (size_t)4 << 20);
    op_otlp_config_free(&c);

    /* endpoint: the base URL gets /v1/traces (no double slash); TRACES_ wins, as is */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
    c = cfg_from_env();
    ASSERT_STR_EQ(c.endpoint, "http://collector:4318/v1/traces");
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", " https://collector.example:443/prefix/ ", 1);
    c = cfg_from_env();
    ASSERT_STR_EQ(c.endpoint, "https://collector.example:443/prefix/v1/traces");
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:1234/custom", 1);
    c = cfg_from_env();
    ASSERT_STR_EQ(c.endpoint, "http://other:1234/custom");
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", 1); /* empty = unset */
    c = cfg_from_env();
    ASSERT_STR_EQ(c.endpoint, "https://collector.example:443/prefix/v1/traces");
    op_otlp_config_free(&c);

    /* bad endpoints keep the default */
    const char *bad_ep[] = {"collector:4318", "ftp://collector", "http://", "http://a b"};
    for (size_t i = 0; i < 4; i++) {
        setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad_ep[i], 1);
        log_start();
        c = cfg_from_env();
        ASSERT_STR_EQ(c.endpoint, "http://localhost:4318/v1/traces");
        ASSERT_LOGGED("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        op_otlp_config_free(&c);
    }
    env_clear();

    /* headers: trimmed, percent-decoded; malformed members skipped */
    setenv("OTEL_EXPORTER_OTLP_HEADERS",
           " api-key = secret%20value ,tenant=a%2Cb%3Dc,, =novalue,noequals, bad key=1,"
           "k2=%zz,k3=%0A,empty=,utf8=%C3%A9t%C3%A9,content-type=text/plain",
           1);
    log_start();
    c = cfg_from_env();
    ASSERT_EQ(c.n_headers, 4);
    ASSERT_STR_EQ(c.headers[0], "api-key: secret value");
    ASSERT_STR_EQ(c.headers[1], "tenant: a,b=c");
    ASSERT_STR_EQ(c.headers[2], "empty;");
    ASSERT_STR_EQ(c.headers[3], "utf8: \xC3\xA9t\xC3\xA9");
    ASSERT_LOGGED("malformed member \"=novalue\"");
    ASSERT_LOGGED("malformed member \"noequals\"");
    ASSERT_LOGGED("malformed member \"bad key=1\"");
    ASSERT_LOGGED("ignoring \"k2\": bad percent-encoding");
    ASSERT_LOGGED("ignoring \"k3\"");
    ASSERT_LOGGED("ignoring \"content-type\": the exporter sets it");
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "only=this", 1);
    c = cfg_from_env();
    ASSERT_EQ(c.n_headers, 1);
    ASSERT_STR_EQ(c.headers[0], "only: this");
    op_otlp_config_free(&c);
    env_clear();

    /* timeout */
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
    c = cfg_from_env();
    ASSERT_EQ(c.timeout_ms, 2500);
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", " 1200 ", 1);
    c = cfg_from_env();
    ASSERT_EQ(c.timeout_ms, 1200);
    op_otlp_config_free(&c);
    const char *bad_to[] = {"abc", "-5", "0", "99999999999", "12ms", "1.5"};
    for (size_t i = 0; i < 6; i++) {
        setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", bad_to[i], 1);
        setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "", 1);
        log_start();
        c = cfg_from_env();
        ASSERT_EQ(c.timeout_ms, 10000);
        ASSERT_LOGGED("is not a timeout in milliseconds");
        op_otlp_config_free(&c);
    }
    env_clear();

    /* compression */
    const char *gz[] = {"gzip", "GZIP", " gzip "};
    for (size_t i = 0; i < 3; i++) {
        setenv("OTEL_EXPORTER_OTLP_COMPRESSION", gz[i], 1);
        c = cfg_from_env();
        ASSERT_TRUE(c.gzip);
        op_otlp_config_free(&c);
    }
    setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none", 1);
    c = cfg_from_env();
    ASSERT_TRUE(!c.gzip);
    op_otlp_config_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd", 1);
    log_start();
    c = cfg_from_env();
    ASSERT_TRUE(!c.gzip); /* the default (none), not the general variable's gzip */
    ASSERT_LOGGED("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\" is not gzip or none");
    op_otlp_config_free(&c);
    env_clear();
}

/* internal: the wire bytes of a small request, derived by hand from the .proto files. */
static void test_encode_golden(void)
{
    otelprof_kv kv = OTELPROF_KV_INT("n", -2);
    otelprof_scope_info scope = {"s", "v", NULL};
    otelprof_span_data s;
    memset(&s, 0, sizeof s);
    memset(s.context.trace_id, 0x11, 16);
    memset(s.context.span_id, 0x22, 8);
    s.context.trace_flags = 1;
    s.name = "x";
    s.kind = OTELPROF_SPAN_KIND_SERVER;
    s.start_time_ns = 0x0102030405060708ULL;
    s.attrs = &kv;
    s.n_attrs = 1;
    s.status = OTELPROF_SPAN_STATUS_ERROR;
    s.scope = &scope;
    const otelprof_span_data *p = &s;

    static const uint8_t want[] = {
        0x0A, 0x52,                                    /* resource_spans (1), 82 bytes */
        0x12, 0x50,                                    /* ResourceSpans.scope_spans (2), 80 */
        0x0A, 0x06, 0x0A, 0x01, 's',  0x12, 0x01, 'v', /* scope {name "s", version "v"} */
        0x12, 0x46,                                    /* ScopeSpans.spans (2), 70 */
        0x0A, 0x10, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11,                               /* trace_id (1) */
        0x12, 0x08, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* span_id (2) */
        0x2A, 0x01, 'x',                                            /* name (5) */
        0x30, 0x02,                                                 /* kind (6) SERVER */
        0x39, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,       /* start (7) fixed64 */
        0x4A, 0x10,                                                 /* attributes (9) */
        0x0A, 0x01, 'n',                                            /* key */
        0x12, 0x0B, 0x18, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, /* int -2 */
        0x7A, 0x02, 0x18, 0x02,             /* status (15) {code (3) ERROR} */
        0x85, 0x01, 0x01, 0x01, 0x00, 0x00, /* flags (16) fixed32 0x101 */
    };
    op_otlp_batch *b = op_otlp_batch_new(&p, 1);
    ASSERT_TRUE(b != NULL);
    op_pbw w;
    op_pbw_init(&w, 1 << 20);
    size_t n = 0, big = 0;
    ASSERT_OK(op_otlp_batch_next(b, &w, &n, &big));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(big, 0);
    ASSERT_EQ(op_pbw_len(&w), sizeof want);
    ASSERT_MEM_EQ(w.buf + w.pos, want, sizeof want);
    ASSERT_OK(op_otlp_batch_next(b, &w, &n, &big));
    ASSERT_EQ(n, 0);
    op_otlp_batch_free(b);
    op_pbw_free(&w);

    /* varints */
    uint8_t buf[16];
    op_pbw_init(&w, 64);
    op_pbw_varint(&w, 300);
    ASSERT_EQ(op_pbw_len(&w), 2);
    memcpy(buf, w.buf + w.pos, 2);
    ASSERT_MEM_EQ(buf, "\xAC\x02", 2);
    op_pbw_reset(&w);
    op_pbw_varint(&w, UINT64_MAX);
    ASSERT_EQ(op_pbw_len(&w), 10);
    /* the limit holds */
    op_pbw_reset(&w);
    uint8_t junk[65] = {0};
    op_pbw_bytes(&w, junk, 65);
    ASSERT_TRUE(w.overflow);
    op_pbw_free(&w);

    /* response decoding: partial_success {rejected_spans 3, error_message "m"} */
    static const uint8_t resp[] = {0x0A, 0x05, 0x08, 0x03, 0x12, 0x01, 'm'};
    int64_t rej = 0;
    const char *msg = NULL;
    size_t ml = 0;
    ASSERT_TRUE(op_otlp_decode_response(resp, sizeof resp, &rej, &msg, &ml));
    ASSERT_EQ(rej, 3);
    ASSERT_EQ(ml, 1);
    ASSERT_EQ(msg[0], 'm');
    ASSERT_TRUE(op_otlp_decode_response(resp, 0, &rej, &msg, &ml));
    ASSERT_EQ(rej, 0);
    ASSERT_TRUE(!op_otlp_decode_response(resp, 4, &rej, &msg, &ml)); /* truncated */
    static const uint8_t st[] = {0x08, 0x03, 0x12, 0x02, 'n', 'o'};
    ASSERT_TRUE(op_otlp_decode_status_message(st, sizeof st, &msg, &ml));
    ASSERT_EQ(ml, 2);
}

static void test_utf8_sanitize(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"h\xC3\xA9", "h\xC3\xA9"},
        {"\xF0\x9F\x9A\x80", "\xF0\x9F\x9A\x80"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"a\xC3", "a\xEF\xBF\xBD"},
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                                 /* overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"\xE2\x82(", "\xEF\xBF\xBD\xEF\xBF\xBD("},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        size_t m = op_utf8_sanitized_len((const uint8_t *)cases[i].in, n);
        ASSERT_EQ(m, strlen(cases[i].out));
        char out[64];
        op_utf8_sanitize((const uint8_t *)cases[i].in, n, (uint8_t *)out);
        ASSERT_MEM_EQ(out, cases[i].out, m);
    }
}
#endif

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep what was printed when an assertion aborts */
    static const test_case cases[] = {
        {"roundtrip_plain", test_roundtrip_plain},
        {"roundtrip_gzip", test_roundtrip_gzip},
        {"roundtrip_bad_utf8", test_roundtrip_bad_utf8},
        {"split_requests", test_split_requests},
        {"retry_503", test_retry_503},
        {"no_retry_400", test_no_retry_400},
        {"retry_after_429", test_retry_after_429},
        {"retry_after_bounded", test_retry_after_bounded},
        {"retries_exhausted", test_retries_exhausted},
        {"partial_success", test_partial_success},
        {"collector_down", test_collector_down},
        {"collector_slow", test_collector_slow},
        {"shutdown_aborts", test_shutdown_aborts},
        {"exporter_memory_bounded", test_exporter_memory_bounded},
        {"sdk_delivers", test_sdk_delivers},
        {"sdk_collector_down", test_sdk_collector_down},
        {"sdk_collector_slow", test_sdk_collector_slow},
        {"sdk_flush_timeout", test_sdk_flush_timeout},
        {"sdk_collector_503", test_sdk_collector_503},
        {"opts_validation", test_opts_validation},
        {"env_e2e", test_env_e2e},
        {"env_bad_values_e2e", test_env_bad_values_e2e},
#ifdef OTLP_TEST_STATIC
        {"env_parsing", test_env_parsing},
        {"encode_golden", test_encode_golden},
        {"utf8_sanitize", test_utf8_sanitize},
#endif
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
