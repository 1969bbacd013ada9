/* libFuzzer target: otelprof_tracestate_*.
 * The input is split at '\n' into header fields. Invariants: parsing the fields equals
 * parsing them joined with ','; a failure leaves the tracestate empty; a success stays
 * within 32 members and 512 characters, has unique keys that get() finds, and
 * parse(format(x)) == x. set() then puts its member in front within the same limits, and
 * remove() takes it out. */
#include "fuzz_common.h"

#define MAX_FIELDS 8

static void check_same(const otelprof_tracestate *x, const otelprof_tracestate *y)
{
    CHECK(otelprof_tracestate_count(x) == otelprof_tracestate_count(y));
    for (size_t i = 0; i < otelprof_tracestate_count(x); i++) {
        const char *k1, *v1, *k2, *v2;
        size_t kl1, vl1, kl2, vl2;
        CHECK(otelprof_tracestate_at(x, i, &k1, &kl1, &v1, &vl1) == OTELPROF_OK);
        CHECK(otelprof_tracestate_at(y, i, &k2, &kl2, &v2, &vl2) == OTELPROF_OK);
        CHECK(kl1 == kl2 && memcmp(k1, k2, kl1) == 0);
        CHECK(vl1 == vl2 && memcmp(v1, v2, vl1) == 0);
    }
}

static void check_invariants(const otelprof_tracestate *ts)
{
    size_t n = otelprof_tracestate_count(ts);
    CHECK(n <= OTELPROF_TRACESTATE_MAX_MEMBERS);
    char out[OTELPROF_TRACESTATE_MAX_LEN + 1];
    size_t len = 0;
    CHECK(otelprof_tracestate_format(ts, out, sizeof out, &len) == OTELPROF_OK);
    CHECK(len == strlen(out) && len <= OTELPROF_TRACESTATE_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl, gl = 0;
        CHECK(otelprof_tracestate_at(ts, i, &k, &kl, &v, &vl) == OTELPROF_OK);
        CHECK(kl >= 1 && kl <= 256 && vl >= 1 && vl <= 256);
        CHECK(v[vl - 1] != ' ');
        /* get() finds the first member with a key: unique keys mean it is this one. */
        CHECK(otelprof_tracestate_get(ts, k, kl, &gl) == v && gl == vl);
    }
    otelprof_tracestate back;
    CHECK(otelprof_tracestate_parse(&back, out, len) == OTELPROF_OK);
    check_same(ts, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *fields[MAX_FIELDS];
    size_t lens[MAX_FIELDS], nf = 0, start = 0;
    for (size_t i = 0; i < size; i++) {
        if (s[i] == '\n' && nf < MAX_FIELDS - 1) {
            fields[nf] = s + start;
            lens[nf++] = i - start;
            start = i + 1;
        }
    }
    fields[nf] = s + start;
    lens[nf++] = size - start;
    otelprof_tracestate ts, joined_ts;
    otelprof_status st = otelprof_tracestate_parse_fields(&ts, fields, lens, nf);
    CHECK(st == OTELPROF_OK || st == OTELPROF_E_PARSE || st == OTELPROF_E_TOO_LARGE);

    /* The same header as one field. */
    char *joined = malloc(size + 1);
    CHECK(joined);
    size_t jl = 0;
    for (size_t f = 0; f < nf; f++) {
        if (f)
            joined[jl++] = ',';
        memcpy(joined + jl, fields[f], lens[f]);
        jl += lens[f];
    }
    CHECK(otelprof_tracestate_parse(&joined_ts, joined, jl) == st);
    free(joined);

    if (st != OTELPROF_OK) {
        CHECK(otelprof_tracestate_count(&ts) == 0);
        return 0;
    }
    check_same(&ts, &joined_ts);
    check_invariants(&ts);

    /* set: a key from the input's first byte, a value from its tail. */
    char key[8];
    snprintf(key, sizeof key, "k%u", size ? (unsigned)(data[0] % 40) : 0u);
    size_t vl = size > 1 ? (size - 1) % 300 : 0;
    const char *val = s + (size - vl);
    size_t before = otelprof_tracestate_count(&ts);
    otelprof_status ss = otelprof_tracestate_set(&ts, key, strlen(key), val, vl);
    if (ss == OTELPROF_OK) {
        const char *k, *v;
        size_t kl, gl;
        CHECK(otelprof_tracestate_at(&ts, 0, &k, &kl, &v, &gl) == OTELPROF_OK);
        CHECK(kl == strlen(key) && memcmp(k, key, kl) == 0);
        CHECK(gl == vl && memcmp(v, val, vl) == 0);
        check_invariants(&ts);
        CHECK(otelprof_tracestate_remove(&ts, key, strlen(key)) == OTELPROF_OK);
        CHECK(otelprof_tracestate_get(&ts, key, strlen(key), NULL) == NULL);
        check_invariants(&ts);
    } else {
        CHECK(ss == OTELPROF_E_INVAL || ss == OTELPROF_E_TOO_LARGE);
        CHECK(otelprof_tracestate_count(&ts) == before);
    }
    return 0;
}
