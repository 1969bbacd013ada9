/* OTLP exporter configuration: the options struct and the OTEL_EXPORTER_OTLP_* variables
 * (https://opentelemetry.io/docs/specs/otel/protocol/exporter/). */
#define _POSIX_C_SOURCE 200809L
#include "otlp_internal.h"
#include "util/opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (lower(*s) != *prefix)
            return false;
    return true;
}

bool op_otlp_endpoint_valid(const char *url)
{
    if (!url)
        return false;
    size_t skip;
    if (prefix_ci(url, "http://"))
        skip = 7;
    else if (prefix_ci(url, "https://"))
        skip = 8;
    else
        return false;
    const char *host = url + skip;
    if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return false;
    return true;
}

/* RFC 9110 tchar */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (n + 1 bytes); false on a bad escape or a decoded byte
 * that cannot appear in a header value (controls other than tab, DEL). */
static bool pct_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return true;
}

static bool header_reserved(const char *key, size_t n)
{
    static const char *const names[] = {"content-type",   "content-encoding",
                                        "content-length", "transfer-encoding",
                                        "host",           "expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *nm = names[i];
        if (strlen(nm) != n)
            continue;
        size_t j = 0;
        while (j < n && lower(key[j]) == nm[j])
            j++;
        if (j == n)
            return true;
    }
    return false;
}

otelprof_status op_otlp_parse_headers(const char *s, char ***lines, size_t *n)
{
    if (!s)
        return OTELPROF_OK;
    size_t total = strlen(s);
    size_t b = 0;
    while (b <= total) {
        size_t e = b;
        while (e < total && s[e] != ',')
            e++;
        size_t mb = b, me = e;
        b = e + 1;
        while (mb < me && is_ows(s[mb]))
            mb++;
        while (me > mb && is_ows(s[me - 1]))
            me--;
        if (mb == me)
            continue; /* empty member */
        size_t eq = mb;
        while (eq < me && s[eq] != '=')
            eq++;
        size_t kb = mb, ke = eq;
        while (ke > kb && is_ows(s[ke - 1]))
            ke--;
        bool ok = eq < me && ke > kb;
        for (size_t i = kb; ok && i < ke; i++)
            ok = is_tchar(s[i]);
        if (!ok) {
            op_otlp_log(OTELPROF_LOG_WARN, "otlp: headers: ignoring malformed member \"%.*s\"",
                        (int)(me - mb), s + mb);
            continue;
        }
        if (header_reserved(s + kb, ke - kb)) {
            op_otlp_log(OTELPROF_LOG_WARN, "otlp: headers: ignoring \"%.*s\": the exporter sets it",
                        (int)(ke - kb), s + kb);
            continue;
        }
        size_t vb = eq + 1, ve = me;
        while (vb < ve && is_ows(s[vb]))
            vb++;
        /* "Name: value" + NUL */
        size_t cap = (ke - kb) + 2 + (ve - vb) + 1;
        char *line = malloc(cap);
        char **grown = realloc(*lines, (*n + 1) * sizeof **lines);
        if (!line || !grown) {
            free(line);
            if (grown)
                *lines = grown;
            return OTELPROF_E_NOMEM;
        }
        *lines = grown;
        memcpy(line, s + kb, ke - kb);
        line[ke - kb] = ':';
        line[ke - kb + 1] = ' ';
        size_t vlen;
        if (!pct_decode(s + vb, ve - vb, line + (ke - kb) + 2, &vlen)) {
            op_otlp_log(OTELPROF_LOG_WARN,
                        "otlp: headers: ignoring \"%.*s\": bad percent-encoding or a control "
                        "character in the value",
                        (int)(ke - kb), s + kb);
            free(line);
            continue;
        }
        if (vlen == 0) { /* libcurl: "Name;" sends an empty header, "Name:" removes it */
            line[ke - kb] = ';';
            line[ke - kb + 1] = '\0';
        }
        (*lines)[(*n)++] = line;
    }
    return OTELPROF_OK;
}

otelprof_status op_otlp_config_from_opts(op_otlp_config *cfg, const otelprof_otlp_opts *opts)
{
    memset(cfg, 0, sizeof *cfg);
    otelprof_otlp_opts o;
    memset(&o, 0, sizeof o);
    otelprof_status orc = op_opts_copy(&o, sizeof o, opts);
    if (orc != OTELPROF_OK)
        return orc;
    const char *ep = (o.endpoint && o.endpoint[0]) ? o.endpoint : OTELPROF_OTLP_DEFAULT_ENDPOINT;
    if (!op_otlp_endpoint_valid(ep)) {
        op_otlp_log(OTELPROF_LOG_ERROR, "otlp: endpoint \"%s\" is not an http:// or https:// URL",
                    ep);
        return OTELPROF_E_INVAL;
    }
    if (o.compression != OTELPROF_OTLP_COMPRESSION_DEFAULT &&
        o.compression != OTELPROF_OTLP_COMPRESSION_NONE &&
        o.compression != OTELPROF_OTLP_COMPRESSION_GZIP)
        return OTELPROF_E_INVAL;
    cfg->endpoint = strdup(ep);
    if (!cfg->endpoint)
        return OTELPROF_E_NOMEM;
    if (op_otlp_parse_headers(o.headers, &cfg->headers, &cfg->n_headers) != OTELPROF_OK) {
        op_otlp_config_free(cfg);
        return OTELPROF_E_NOMEM;
    }
    cfg->timeout_ms = o.timeout_ms ? o.timeout_ms : OTELPROF_OTLP_DEFAULT_TIMEOUT_MS;
    cfg->gzip = o.compression == OTELPROF_OTLP_COMPRESSION_GZIP;
    cfg->max_retries = o.max_retries == OTELPROF_OTLP_NO_RETRIES ? 0
                       : o.max_retries                           ? o.max_retries
                                       : OTELPROF_OTLP_DEFAULT_MAX_RETRIES;
    cfg->initial_backoff_ms =
        o.initial_backoff_ms ? o.initial_backoff_ms : OTELPROF_OTLP_DEFAULT_INITIAL_BACKOFF_MS;
    cfg->max_backoff_ms =
        o.max_backoff_ms ? o.max_backoff_ms : OTELPROF_OTLP_DEFAULT_MAX_BACKOFF_MS;
    if (cfg->max_backoff_ms < cfg->initial_backoff_ms)
        cfg->max_backoff_ms = cfg->initial_backoff_ms;
    size_t cap =
        o.max_request_bytes ? o.max_request_bytes : OTELPROF_OTLP_DEFAULT_MAX_REQUEST_BYTES;
    if (cap < OTELPROF_OTLP_MIN_REQUEST_BYTES)
        cap = OTELPROF_OTLP_MIN_REQUEST_BYTES;
    if (cap > OTELPROF_OTLP_MAX_REQUEST_BYTES)
        cap = OTELPROF_OTLP_MAX_REQUEST_BYTES;
    cfg->max_request_bytes = cap;
    return OTELPROF_OK;
}

void op_otlp_config_free(op_otlp_config *cfg)
{
    free(cfg->endpoint);
    for (size_t i = 0; i < cfg->n_headers; i++)
        free(cfg->headers[i]);
    free(cfg->headers);
    memset(cfg, 0, sizeof *cfg);
}

/* ---------------------------------------------------------------------------------------
 * Environment
 * ------------------------------------------------------------------------------------- */

/* The value of the signal-specific variable if set and non-empty, else the general one;
 * *name gets the name of the one used. Surrounding whitespace is not removed here. */
static const char *env2(const char *traces_name, const char *general_name, const char **name)
{
    const char *v = getenv(traces_name);
    if (v && v[0]) {
        *name = traces_name;
        return v;
    }
    v = getenv(general_name);
    if (v && v[0]) {
        *name = general_name;
        return v;
    }
    return NULL;
}

/* A copy of v without surrounding spaces/tabs; NULL on ENOMEM. */
static char *trimmed_copy(const char *v)
{
    while (is_ows(*v))
        v++;
    size_t n = strlen(v);
    while (n && is_ows(v[n - 1]))
        n--;
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, v, n);
        c[n] = '\0';
    }
    return c;
}

static otelprof_status env_endpoint(op_otlp_env *env)
{
    const char *name = NULL;
    const char *v =
        env2("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", &name);
    if (!v)
        return OTELPROF_OK;
    char *url = trimmed_copy(v);
    if (!url)
        return OTELPROF_E_NOMEM;
    if (strcmp(name, "OTEL_EXPORTER_OTLP_ENDPOINT") == 0 && url[0]) {
        /* a base URL: the signal path is appended */
        size_t n = strlen(url);
        const char *suffix = (url[n - 1] == '/') ? "v1/traces" : "/v1/traces";
        char *full = malloc(n + strlen(suffix) + 1);
        if (!full) {
            free(url);
            return OTELPROF_E_NOMEM;
        }
        memcpy(full, url, n);
        strcpy(full + n, suffix);
        free(url);
        url = full;
    }
    if (!op_otlp_endpoint_valid(url)) {
        op_otlp_log(OTELPROF_LOG_WARN,
                    "otlp: %s=\"%s\" is not an http:// or https:// URL; using %s", name, v,
                    OTELPROF_OTLP_DEFAULT_ENDPOINT);
        free(url);
        return OTELPROF_OK;
    }
    env->endpoint = url;
    env->opts.endpoint = url;
    return OTELPROF_OK;
}

static void env_timeout(op_otlp_env *env)
{
    const char *name = NULL;
    const char *v = env2("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", &name);
    if (!v)
        return;
    const char *p = v;
    while (is_ows(*p))
        p++;
    uint64_t ms = 0;
    bool ok = *p >= '0' && *p <= '9';
    while (ok && *p >= '0' && *p <= '9') {
        ms = ms * 10 + (uint64_t)(*p - '0');
        ok = ms <= UINT32_MAX;
        p++;
    }
    while (is_ows(*p))
        p++;
    if (!ok || *p != '\0' || ms == 0) {
        op_otlp_log(
            OTELPROF_LOG_WARN,
            "otlp: %s=\"%s\" is not a timeout in milliseconds (a positive integer); using %u", name,
            v, OTELPROF_OTLP_DEFAULT_TIMEOUT_MS);
        return;
    }
    env->opts.timeout_ms = (uint32_t)ms;
}

static void env_compression(op_otlp_env *env)
{
    const char *name = NULL;
    const char *v =
        env2("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", &name);
    if (!v)
        return;
    const char *p = v;
    while (is_ows(*p))
        p++;
    size_t n = strlen(p);
    while (n && is_ows(p[n - 1]))
        n--;
    char word[8];
    if (n < sizeof word) {
        for (size_t i = 0; i < n; i++)
            word[i] = lower(p[i]);
        word[n] = '\0';
        if (strcmp(word, "gzip") == 0) {
            env->opts.compression = OTELPROF_OTLP_COMPRESSION_GZIP;
            return;
        }
        if (strcmp(word, "none") == 0) {
            env->opts.compression = OTELPROF_OTLP_COMPRESSION_NONE;
            return;
        }
    }
    op_otlp_log(OTELPROF_LOG_WARN, "otlp: %s=\"%s\" is not gzip or none; using none", name, v);
}

otelprof_status op_otlp_env_read(op_otlp_env *env)
{
    memset(env, 0, sizeof *env);
    env->opts.sz = sizeof env->opts;
    if (env_endpoint(env) != OTELPROF_OK)
        return OTELPROF_E_NOMEM;
    const char *name = NULL;
    const char *h = env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &name);
    if (h) {
        env->headers = strdup(h);
        if (!env->headers) {
            op_otlp_env_free(env);
            return OTELPROF_E_NOMEM;
        }
        env->opts.headers = env->headers;
    }
    env_timeout(env);
    env_compression(env);
    return OTELPROF_OK;
}

void op_otlp_env_free(op_otlp_env *env)
{
    free(env->endpoint);
    free(env->headers);
    memset(env, 0, sizeof *env);
}
