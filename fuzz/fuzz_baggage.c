/* libFuzzer target: otelprof_baggage_*.
 * Invariants: whatever parse returns, the kept entries stay within 64 members and 8192
 * encoded bytes, hold valid UTF-8 values, and parse(format(x)) == x with format stable;
 * set() of the raw input as a value succeeds exactly when it is valid UTF-8 that fits, and
 * get() gives the bytes back. The UTF-8 check and the encoded size are computed here
 * independently of the library. */
#include "fuzz_common.h"

#include <stdbool.h>

/* Well-formed UTF-8 per Unicode Table 3-7. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t j = 2; j <= need; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                return false;
        i += need + 1;
    }
    return true;
}

/* Bytes sent as they are: the spec's baggage-octet minus '%'. */
static size_t encoded_len(const unsigned char *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        bool lit =
            c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\' && c != '%';
        len += lit ? 1 : 3;
    }
    return len;
}

static void check_same(const otelprof_baggage *x, const otelprof_baggage *y)
{
    CHECK(otelprof_baggage_count(x) == otelprof_baggage_count(y));
    for (size_t i = 0; i < otelprof_baggage_count(x); i++) {
        const char *k1, *v1, *m1, *k2, *v2, *m2;
        size_t kl1, vl1, ml1, kl2, vl2, ml2;
        CHECK(otelprof_baggage_at(x, i, &k1, &kl1, &v1, &vl1, &m1, &ml1) == OTELPROF_OK);
        CHECK(otelprof_baggage_at(y, i, &k2, &kl2, &v2, &vl2, &m2, &ml2) == OTELPROF_OK);
        CHECK(kl1 == kl2 && memcmp(k1, k2, kl1) == 0);
        CHECK(vl1 == vl2 && memcmp(v1, v2, vl1) == 0);
        CHECK(ml1 == ml2 && memcmp(m1, m2, ml1) == 0);
    }
}

static char out1[OTELPROF_BAGGAGE_MAX_LEN + 1], out2[OTELPROF_BAGGAGE_MAX_LEN + 1];
static otelprof_baggage bag, back;

static void check_invariants(const otelprof_baggage *b)
{
    size_t n = otelprof_baggage_count(b), l1 = 0, l2 = 0, total = 0;
    CHECK(n <= OTELPROF_BAGGAGE_MAX_MEMBERS);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v, *m;
        size_t kl, vl, ml, gl = 0;
        CHECK(otelprof_baggage_at(b, i, &k, &kl, &v, &vl, &m, &ml) == OTELPROF_OK);
        CHECK(kl > 0);
        CHECK(utf8_ok((const unsigned char *)v, vl));
        CHECK(otelprof_baggage_get(b, k, kl, &gl) == v && gl == vl); /* keys are unique */
        total +=
            (i ? 1 : 0) + kl + 1 + encoded_len((const unsigned char *)v, vl) + (ml ? 1 + ml : 0);
    }
    CHECK(otelprof_baggage_format(b, out1, sizeof out1, &l1) == OTELPROF_OK);
    CHECK(l1 == strlen(out1) && l1 == total && l1 <= OTELPROF_BAGGAGE_MAX_LEN);
    otelprof_baggage_clear(&back);
    CHECK(otelprof_baggage_parse(&back, out1, l1) == OTELPROF_OK);
    check_same(b, &back);
    CHECK(otelprof_baggage_format(&back, out2, sizeof out2, &l2) == OTELPROF_OK);
    CHECK(l1 == l2 && memcmp(out1, out2, l1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otelprof_baggage_clear(&bag);
    otelprof_status st = otelprof_baggage_parse(&bag, (const char *)data, size);
    CHECK(st == OTELPROF_OK || st == OTELPROF_E_PARSE || st == OTELPROF_E_TOO_LARGE);
    check_invariants(&bag);

    /* The raw input as a value of a fresh baggage. */
    otelprof_baggage_clear(&bag);
    bool ok = utf8_ok(data, size);
    bool fits =
        size <= OTELPROF_BAGGAGE_MAX_LEN && 3 + encoded_len(data, size) <= OTELPROF_BAGGAGE_MAX_LEN;
    otelprof_status ss = otelprof_baggage_set(&bag, "fz", 2, (const char *)data, size, NULL, 0);
    if (!fits)
        CHECK(ss == OTELPROF_E_TOO_LARGE || (ss == OTELPROF_E_UTF8 && !ok));
    else
        CHECK(ss == (ok ? OTELPROF_OK : OTELPROF_E_UTF8));
    if (ss == OTELPROF_OK) {
        size_t gl = 0;
        const char *v = otelprof_baggage_get(&bag, "fz", 2, &gl);
        CHECK(v && gl == size && memcmp(v, data, size) == 0);
        check_invariants(&bag);
        CHECK(otelprof_baggage_remove(&bag, "fz", 2) == OTELPROF_OK);
        CHECK(otelprof_baggage_count(&bag) == 0);
    } else {
        CHECK(otelprof_baggage_count(&bag) == 0);
    }
    return 0;
}
