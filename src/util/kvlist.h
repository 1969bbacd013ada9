/* "key1=value1,key2=value2" lists with percent-encoded keys and values, the format of
 * OTEL_RESOURCE_ATTRIBUTES (W3C-baggage-like). Header-only, so the core (process context)
 * and the SDK (resource) parse the same variable the same way without exporting a
 * symbol from either library. */
#ifndef OTELPROF_UTIL_KVLIST_H
#define OTELPROF_UTIL_KVLIST_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One decoded member; key and value are NUL-terminated and valid during the call. Return
 * false to reject the member (e.g. not UTF-8): the whole list is then malformed. */
typedef bool (*op_kvlist_fn)(void *arg, const char *key, size_t klen, const char *value,
                             size_t vlen);

static inline int op_kvlist_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Trim spaces and tabs around s[0..n), percent-decode into out; false on a bad escape. */
static inline bool op_kvlist_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return false;
        int hi = op_kvlist_hex(s[i + 1]), lo = op_kvlist_hex(s[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    *out_len = o;
    return true;
}

/* Calls fn for each member of s. Blank members (",,", a trailing comma) are skipped;
 * values may be empty. Returns 0, or -1 at the first malformed member (no '=', an empty
 * key, a bad %-escape, fn said no) or when memory runs out: per the OTel SDK spec the
 * caller then discards everything fn was given. */
static inline int op_kvlist_parse(const char *s, op_kvlist_fn fn, void *arg)
{
    size_t len = strlen(s);
    char *key = (char *)malloc(len + 1), *val = (char *)malloc(len + 1);
    int rc = key && val ? 0 : -1;
    while (rc == 0 && *s) {
        size_t m = strcspn(s, ",");
        const char *eq = (const char *)memchr(s, '=', m);
        bool blank = true;
        for (size_t i = 0; i < m && blank; i++)
            blank = s[i] == ' ' || s[i] == '\t';
        size_t kl, vl;
        if (!blank && (!eq || !op_kvlist_decode(s, (size_t)(eq - s), key, &kl) || kl == 0 ||
                       !op_kvlist_decode(eq + 1, m - (size_t)(eq - s) - 1, val, &vl) ||
                       !fn(arg, key, kl, val, vl)))
            rc = -1;
        s += m;
        if (*s == ',')
            s++;
    }
    free(key);
    free(val);
    return rc;
}

#endif
