/* http-example: the HTTP middleware way in (the one otel-profiling-go recommends).
 *
 * A libmicrohttpd server (port 3000 or --port N) whose handler is wrapped by otelprof_mhd:
 * every request continues the caller's trace with a SERVER span, published on the thread
 * while the handler runs, so the CPU it burns is attributed to that trace by any profiler
 * that reads the thread context.
 *
 *   GET  /fib?n=N   computes fib(N) the naive recursive way (N in [0, 50])
 *   POST /test      the W3C trace-context test service: the body is a JSON array of
 *                   {"url": ..., "arguments": ...}; for each element, POST `arguments` to
 *                   `url` with the context propagated (a CLIENT span, libcurl helper).
 *
 * Spans go to the console exporter unless OTEL_TRACES_EXPORTER says otherwise.
 */
#define _GNU_SOURCE
#include <otelprof/http.h>
#include <otelprof/http_curl.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY       (1u << 20) /* POST /test bodies larger than this are refused */
#define MAX_CASES      64         /* array elements handled per /test request */
#define MAX_URL        2048
#define MAX_JSON_DEPTH 32

static otelprof_tracer *tracer;
static volatile unsigned long long fib_sink; /* keeps fib's result (and its CPU) alive */

static unsigned long long fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* ---- a bounded JSON reader for exactly [{"url": "...", "arguments": <any>}, ...] ---- */

struct json {
    const char *p, *end;
};

static void ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool eat(struct json *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool hex4(struct json *j, unsigned *out)
{
    if (j->end - j->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return true;
}

/* A string at j->p; decoded into out (NUL-terminated, at most cap-1 bytes) when out is
 * non-NULL. */
static bool string(struct json *j, char *out, size_t cap)
{
    size_t n = 0;
    if (!eat(j, '"'))
        return false;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        unsigned cp;
        if (c == '"') {
            if (out)
                out[n] = '\0';
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') { /* raw bytes (UTF-8 included) are copied as they are */
            if (out) {
                if (n + 1 >= cap)
                    return false;
                out[n++] = (char)c;
            }
            continue;
        }
        if (j->p >= j->end)
            return false;
        char e = *j->p++;
        switch (e) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (!hex4(j, &cp))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
                unsigned lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return false;
                j->p += 2;
                if (!hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return false;
            }
            break;
        default:
            return false;
        }
        if (out) {
            char u[4];
            size_t k;
            if (cp < 0x80) {
                u[0] = (char)cp, k = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F)), k = 3;
            } else {
                u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), k = 4;
            }
            if (n + k >= cap)
                return false;
            memcpy(out + n, u, k);
            n += k;
        }
    }
    return false;
}

/* Any value, skipped; depth-bounded so hostile nesting cannot exhaust the stack. */
static bool value(struct json *j, int depth)
{
    if (depth > MAX_JSON_DEPTH)
        return false;
    ws(j);
    if (j->p >= j->end)
        return false;
    char c = *j->p;
    if (c == '"')
        return string(j, NULL, 0);
    if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        j->p++;
        if (eat(j, close))
            return true;
        do {
            if (c == '{' && (!string(j, NULL, 0) || !eat(j, ':')))
                return false;
            if (!value(j, depth + 1))
                return false;
        } while (eat(j, ','));
        return eat(j, close);
    }
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= k && memcmp(j->p, words[i], k) == 0) {
            j->p += k;
            return true;
        }
    }
    const char *start = j->p; /* a number: -?digits(.digits)?([eE][+-]?digits)? */
    if (*j->p == '-')
        j->p++;
    size_t digits = 0;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
                             *j->p == 'E' || *j->p == '+' || *j->p == '-')) {
        digits += *j->p >= '0' && *j->p <= '9';
        j->p++;
    }
    return digits > 0 && j->p > start;
}

struct test_case {
    char url[MAX_URL];
    const char *args; /* raw JSON of "arguments", inside the request body */
    size_t args_len;
};

/* Parse the /test body; returns the number of cases or -1. */
static int parse_cases(const char *body, size_t len, struct test_case *cases, int max)
{
    struct json j = {body, body + len};
    int n = 0;
    if (!eat(&j, '['))
        return -1;
    if (eat(&j, ']'))
        goto done;
    do {
        if (n == max || !eat(&j, '{'))
            return -1;
        struct test_case *tc = &cases[n];
        tc->url[0] = '\0';
        tc->args = NULL;
        if (!eat(&j, '}')) {
            do {
                char key[32];
                if (!string(&j, key, sizeof key) || !eat(&j, ':'))
                    return -1;
                if (strcmp(key, "url") == 0) {
                    if (!string(&j, tc->url, sizeof tc->url))
                        return -1;
                } else if (strcmp(key, "arguments") == 0) {
                    ws(&j);
                    const char *s = j.p;
                    if (!value(&j, 1))
                        return -1;
                    tc->args = s;
                    tc->args_len = (size_t)(j.p - s);
                } else if (!value(&j, 1)) {
                    return -1;
                }
            } while (eat(&j, ','));
            if (!eat(&j, '}'))
                return -1;
        }
        if (!tc->url[0])
            return -1;
        n++;
    } while (eat(&j, ','));
    if (!eat(&j, ']'))
        return -1;
done:
    ws(&j);
    return j.p == j.end ? n : -1;
}

/* POST args to url with the current context propagated under a CLIENT span. */
static void call_out(const struct test_case *tc)
{
    CURL *h = curl_easy_init();
    if (!h)
        return;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    const char *body = tc->args ? tc->args : "[]";
    size_t blen = tc->args ? tc->args_len : 2;
    curl_easy_setopt(h, CURLOPT_URL, tc->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    otelprof_curl_call *call = NULL;
    otelprof_curl_opts co = OTELPROF_CURL_OPTS(.tracer = tracer, .method = "POST");
    if (otelprof_curl_begin(h, tc->url, hdrs, &co, &call) == OTELPROF_OK) {
        CURLcode rc = curl_easy_perform(h);
        otelprof_curl_end(call, rc);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

/* ---- the handler (wrapped by the middleware) ---- */

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

struct upload {
    char *buf;
    size_t len;
    bool too_large;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    (void)cls, (void)version;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/test") == 0) {
        struct upload *u = *req_cls;
        if (!u) { /* first call: headers only */
            if (!(u = calloc(1, sizeof *u)))
                return MHD_NO;
            *req_cls = u;
            return MHD_YES;
        }
        if (*upload_size) {
            if (u->len + *upload_size > MAX_BODY) {
                u->too_large = true;
            } else if (!u->too_large) {
                char *nb = realloc(u->buf, u->len + *upload_size + 1);
                if (!nb)
                    return MHD_NO;
                memcpy(nb + u->len, upload, *upload_size);
                u->buf = nb;
                u->len += *upload_size;
                u->buf[u->len] = '\0';
            }
            *upload_size = 0;
            return MHD_YES;
        }
        if (u->too_large)
            return reply(c, 413, "body too large\n");
        static __thread struct test_case cases[MAX_CASES];
        int n = u->buf ? parse_cases(u->buf, u->len, cases, MAX_CASES) : -1;
        if (n < 0)
            return reply(c, MHD_HTTP_BAD_REQUEST,
                         "expected [{\"url\": ..., \"arguments\": ...}]\n");
        for (int i = 0; i < n; i++)
            call_out(&cases[i]);
        return reply(c, MHD_HTTP_OK, "");
    }
    if (strcmp(method, "GET") != 0 || strcmp(url, "/fib") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found\n");
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    char *end = NULL;
    long n = arg ? strtol(arg, &end, 10) : -1;
    if (!arg || *end || n < 0 || n > 50)
        return reply(c, MHD_HTTP_BAD_REQUEST, "n must be an integer in [0, 50]\n");
    unsigned long long v = fib((unsigned)n); /* the CPU this burns carries the request's ids */
    fib_sink = v;
    otelprof_span *span = otelprof_http_request_span(otelprof_http_current_request());
    otelprof_kv attrs[] = {OTELPROF_KV_INT("fib.n", n), OTELPROF_KV_INT("fib.result", (int64_t)v)};
    otelprof_span_set_attributes(span, attrs, 2);
    char trace[33] = "";
    otelprof_context cur;
    if (otelprof_current(&cur, NULL, 0, NULL) == OTELPROF_OK)
        for (int i = 0; i < 16; i++)
            sprintf(trace + 2 * i, "%02x", cur.trace_id[i]);
    char body[128];
    snprintf(body, sizeof body, "fib(%ld) = %llu\ntrace_id %s\n", n, v, trace);
    return reply(c, MHD_HTTP_OK, body);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct upload *u = *req_cls;
    if (u) {
        free(u->buf);
        free(u);
        *req_cls = NULL;
    }
}

static const char *route(void *arg, void *conn, const char *method, const char *path)
{
    (void)arg, (void)conn, (void)method;
    return strcmp(path, "/fib") == 0 || strcmp(path, "/test") == 0 ? path : NULL;
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
        setenv("OTEL_SERVICE_NAME", "http-example", 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    otelprof_status rc = otelprof_init(NULL);
    /* Unwrapped: the middleware publishes the request's context itself, per call. */
    otelprof_tracer_provider *provider =
        rc == OTELPROF_OK ? otelprof_sdk_provider_new_from_env(&rc) : NULL;
    if (!provider) {
        fprintf(stderr, "http-example: %s\n", otelprof_strerror(rc));
        return 1;
    }
    tracer = otelprof_tracer_provider_get_tracer(provider, "http-example", "0.1.0", NULL);
    otelprof_http_opts ho = OTELPROF_HTTP_OPTS(.tracer = tracer, .route = route);
    otelprof_mhd_opts mo = OTELPROF_MHD_OPTS(.handler = handle, .notify_completed = completed);
    otelprof_mhd *mw = otelprof_mhd_new(&ho, &mo, &rc);
    if (!mw) {
        fprintf(stderr, "http-example: %s\n", otelprof_strerror(rc));
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, otelprof_mhd_access_handler, mw, MHD_OPTION_ARRAY,
        otelprof_mhd_options(mw), MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "http-example: cannot listen on port %u\n", port);
        otelprof_mhd_free(mw);
        otelprof_tracer_provider_free(provider);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "http-example: pid %d listening on http://127.0.0.1:%u/fib?n=30\n",
            (int)getpid(), port);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    otelprof_mhd_free(mw);
    otelprof_tracer_provider_shutdown(provider, 5000);
    otelprof_tracer_provider_free(provider);
    otelprof_shutdown();
    curl_global_cleanup();
    return 0;
}
