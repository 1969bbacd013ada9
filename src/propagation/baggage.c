/* W3C Baggage: the baggage header, kept in a fixed-size list of decoded entries. */
#include "prop_internal.h"

/* RFC 9110 tchar: the characters of a token (baggage keys and property keys). */
static bool tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool valid_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tchar(s[i]))
            return false;
    return true;
}

/* baggage-octet: printable ASCII except space, '"', ',', ';' and '\'. */
static bool octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

/* Bytes written literally by the encoder; '%' is always encoded so that decoding is
 * unambiguous. */
static bool literal(unsigned char c)
{
    return octet(c) && c != '%';
}

static int hex_any(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A raw header value: baggage-octets, each '%' followed by two hex digits. */
static bool valid_encoded(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!octet((unsigned char)s[i]))
            return false;
        if (s[i] == '%') {
            if (i + 2 >= n || hex_any(s[i + 1]) < 0 || hex_any(s[i + 2]) < 0)
                return false;
            i += 2;
        }
    }
    return true;
}

/* A byte source: either raw bytes or a validated percent-encoded string. */
typedef struct src {
    const char *s;
    size_t n, pos;
    bool pct;
} src;

static bool src_more(const src *r)
{
    return r->pos < r->n;
}

static unsigned char src_peek(const src *r, size_t *adv)
{
    if (r->pct && r->s[r->pos] == '%') {
        *adv = 3;
        return (unsigned char)(hex_any(r->s[r->pos + 1]) << 4 | hex_any(r->s[r->pos + 2]));
    }
    *adv = 1;
    return (unsigned char)r->s[r->pos];
}

/* Sink for decoded bytes: counts them, their encoded length, and copies them when out
 * is set. */
typedef struct sink {
    char *out;
    size_t len, enc_len;
    bool replaced;
} sink;

static void sink_put(sink *k, unsigned char c)
{
    if (k->out)
        k->out[k->len] = (char)c;
    k->len++;
    k->enc_len += literal(c) ? 1 : 3;
}

/* Walk r as UTF-8, copying well-formed sequences and replacing each maximal ill-formed
 * subpart with U+FFFD (Unicode's "best practice", which the Baggage spec's "replace with
 * the replacement code point" leaves open). */
static void utf8_walk(src *r, sink *k)
{
    while (src_more(r)) {
        size_t adv;
        unsigned char b0 = src_peek(r, &adv);
        r->pos += adv;
        if (b0 < 0x80) {
            sink_put(k, b0);
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (b0 >= 0xc2 && b0 <= 0xdf) {
            need = 1;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            need = 2;
            if (b0 == 0xe0)
                lo = 0xa0; /* no overlongs */
            else if (b0 == 0xed)
                hi = 0x9f; /* no surrogates */
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            need = 3;
            if (b0 == 0xf0)
                lo = 0x90;
            else if (b0 == 0xf4)
                hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            need = 0; /* 0x80..0xc1, 0xf5..0xff never start a character */
        }
        unsigned char seq[4] = {b0};
        size_t got = 0;
        bool ok = need > 0;
        while (ok && got < need) {
            if (!src_more(r)) {
                ok = false;
                break;
            }
            unsigned char c = src_peek(r, &adv);
            if (c < lo || c > hi) {
                ok = false; /* leave c for the next round */
                break;
            }
            r->pos += adv;
            seq[++got] = c;
            lo = 0x80;
            hi = 0xbf;
        }
        if (ok) {
            for (size_t i = 0; i <= need; i++)
                sink_put(k, seq[i]);
        } else {
            sink_put(k, 0xef);
            sink_put(k, 0xbf);
            sink_put(k, 0xbd);
            k->replaced = true;
        }
    }
}

/* Properties after the first ';' of a member: validate and normalise to
 * "k1;k2=v2" (no whitespace, empty properties skipped). Returns the normalised length, or
 * SIZE_MAX when malformed. out may be NULL to measure. */
static size_t props_scan(const char *s, size_t n, char *out)
{
    size_t len = 0;
    for (size_t pos = 0; pos <= n;) {
        size_t end = pos;
        while (end < n && s[end] != ';')
            end++;
        size_t b = pos, e = end;
        pos = end + 1;
        prop_trim(s, &b, &e);
        if (b == e)
            continue;
        const char *eq = memchr(s + b, '=', e - b);
        size_t kb = b, ke = eq ? (size_t)(eq - s) : e;
        prop_trim(s, &kb, &ke);
        if (!valid_token(s + kb, ke - kb))
            return SIZE_MAX;
        size_t vb = 0, ve = 0;
        if (eq) {
            vb = (size_t)(eq - s) + 1;
            ve = e;
            prop_trim(s, &vb, &ve);
            for (size_t i = vb; i < ve; i++)
                if (!octet((unsigned char)s[i]))
                    return SIZE_MAX;
        }
        size_t piece = (len ? 1 : 0) + (ke - kb) + (eq ? 1 + (ve - vb) : 0);
        if (out) {
            char *o = out + len;
            if (len)
                *o++ = ';';
            memcpy(o, s + kb, ke - kb);
            o += ke - kb;
            if (eq) {
                *o++ = '=';
                memcpy(o, s + vb, ve - vb);
            }
        }
        len += piece;
    }
    return len;
}

/* Encoded length of entry i as formatted, without the separating comma. */
static size_t entry_enc_len(const otelprof_baggage *bag, size_t i)
{
    size_t m = bag->ent[i].meta_len;
    return bag->ent[i].key_len + 1u + bag->ent[i].value_enc_len + (m ? 1 + m : 0);
}

/* Input inside bag->buf would move under add_entry's compaction; refuse it rather than
 * spend 8 KiB of stack on a copy. */
static bool inside(const otelprof_baggage *bag, const char *p, size_t n)
{
    uintptr_t lo = (uintptr_t)bag->buf, hi = lo + sizeof bag->buf, a = (uintptr_t)p;
    return p && a < hi && a + n > lo;
}

static size_t find(const otelprof_baggage *bag, const char *key, size_t key_len)
{
    for (size_t i = 0; i < bag->count; i++)
        if (bag->ent[i].key_len == key_len && memcmp(bag->buf + bag->ent[i].off, key, key_len) == 0)
            return i;
    return SIZE_MAX;
}

/* Encoded header length without entry `skip` (SIZE_MAX: none). */
static size_t total_without(const otelprof_baggage *bag, size_t skip)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; i < bag->count; i++) {
        if (i == skip)
            continue;
        total += entry_enc_len(bag, i);
        n++;
    }
    return total + (n ? n - 1 : 0);
}

static void drop_entry(otelprof_baggage *bag, size_t i)
{
    size_t off = bag->ent[i].off;
    size_t len = (size_t)bag->ent[i].key_len + bag->ent[i].value_len + bag->ent[i].meta_len;
    /* Entries sit in buf in list order, so everything after i moves down. */
    memmove(bag->buf + off, bag->buf + off + len, bag->used - off - len);
    memmove(&bag->ent[i], &bag->ent[i + 1], (bag->count - i - 1) * sizeof bag->ent[0]);
    bag->count--;
    bag->used = (uint16_t)(bag->used - len);
    for (size_t j = i; j < bag->count; j++)
        bag->ent[j].off = (uint16_t)(bag->ent[j].off - len);
}

/* A new entry, already validated and measured; how to write its parts. */
typedef struct new_entry {
    const char *key;
    size_t key_len;
    src value; /* decoded through utf8_walk */
    size_t value_len, value_enc_len;
    const char *meta; /* passed through props_scan */
    size_t meta_raw_len, meta_len;
} new_entry;

/* Replace-or-append ne if it fits the limits; bag unchanged otherwise. */
static otelprof_status add_entry(otelprof_baggage *bag, new_entry *ne)
{
    size_t old = find(bag, ne->key, ne->key_len);
    size_t count = bag->count - (old != SIZE_MAX);
    size_t total = total_without(bag, old);
    size_t mine = ne->key_len + 1 + ne->value_enc_len + (ne->meta_len ? 1 + ne->meta_len : 0);
    total += mine + (count ? 1 : 0);
    if (count >= OTELPROF_BAGGAGE_MAX_MEMBERS || total > OTELPROF_BAGGAGE_MAX_LEN)
        return OTELPROF_E_TOO_LARGE;
    if (old != SIZE_MAX)
        drop_entry(bag, old);
    /* buf use <= encoded total <= capacity: decoding never makes a value longer than its
     * re-encoded form, keys and metadata are stored as written. */
    size_t i = bag->count, off = bag->used;
    char *o = bag->buf + off;
    memcpy(o, ne->key, ne->key_len);
    sink k = {.out = o + ne->key_len};
    ne->value.pos = 0;
    utf8_walk(&ne->value, &k);
    if (ne->meta_len)
        props_scan(ne->meta, ne->meta_raw_len, o + ne->key_len + ne->value_len);
    bag->ent[i].off = (uint16_t)off;
    bag->ent[i].key_len = (uint16_t)ne->key_len;
    bag->ent[i].value_len = (uint16_t)ne->value_len;
    bag->ent[i].meta_len = (uint16_t)ne->meta_len;
    bag->ent[i].value_enc_len = (uint16_t)ne->value_enc_len;
    bag->used = (uint16_t)(off + ne->key_len + ne->value_len + ne->meta_len);
    bag->count++;
    return OTELPROF_OK;
}

/* Measure the decoded value; values that cannot fit are rejected before any uint16
 * bookkeeping could overflow. */
static bool measure_value(new_entry *ne)
{
    sink k = {0};
    ne->value.pos = 0;
    utf8_walk(&ne->value, &k);
    ne->value_len = k.len;
    ne->value_enc_len = k.enc_len;
    return !k.replaced;
}

void otelprof_baggage_clear(otelprof_baggage *bag)
{
    if (bag) {
        bag->count = 0;
        bag->used = 0;
    }
}

otelprof_status otelprof_baggage_parse(otelprof_baggage *bag, const char *s, size_t len)
{
    if (!bag || (!s && len != 0 && len != OTELPROF_NUL_TERMINATED))
        return OTELPROF_E_INVAL;
    size_t n = prop_len(s, len);
    if (inside(bag, s, n))
        return OTELPROF_E_INVAL;
    bool malformed = false, too_large = false;
    for (size_t pos = 0; pos <= n;) {
        size_t end = pos;
        /* ',' is never part of a key, value or property, so it always ends a member. */
        while (end < n && s[end] != ',')
            end++;
        size_t b = pos, e = end;
        pos = end + 1;
        prop_trim(s, &b, &e);
        if (b == e)
            continue; /* tolerate empty members ("a=1,,b=2") */
        const char *eq = memchr(s + b, '=', e - b);
        const char *semi = memchr(s + b, ';', e - b);
        if (!eq || (semi && semi < eq)) {
            malformed = true;
            continue;
        }
        size_t kb = b, ke = (size_t)(eq - s);
        prop_trim(s, &kb, &ke);
        size_t vb = (size_t)(eq - s) + 1, ve = semi ? (size_t)(semi - s) : e;
        prop_trim(s, &vb, &ve);
        if (!valid_token(s + kb, ke - kb) || !valid_encoded(s + vb, ve - vb)) {
            malformed = true;
            continue;
        }
        new_entry ne = {.key = s + kb, .key_len = ke - kb};
        ne.value = (src){.s = s + vb, .n = ve - vb, .pct = true};
        measure_value(&ne); /* replacement is fine on the way in */
        if (semi) {
            ne.meta = semi + 1;
            ne.meta_raw_len = (size_t)(s + e - ne.meta);
            ne.meta_len = props_scan(ne.meta, ne.meta_raw_len, NULL);
            if (ne.meta_len == SIZE_MAX) {
                malformed = true;
                continue;
            }
        }
        if (add_entry(bag, &ne) != OTELPROF_OK)
            too_large = true;
    }
    if (too_large)
        return OTELPROF_E_TOO_LARGE;
    return malformed ? OTELPROF_E_PARSE : OTELPROF_OK;
}

size_t otelprof_baggage_count(const otelprof_baggage *bag)
{
    return bag ? bag->count : 0;
}

otelprof_status otelprof_baggage_at(const otelprof_baggage *bag, size_t i, const char **key,
                                    size_t *key_len, const char **value, size_t *value_len,
                                    const char **metadata, size_t *metadata_len)
{
    if (!bag || i >= bag->count)
        return OTELPROF_E_INVAL;
    const char *k = bag->buf + bag->ent[i].off;
    if (key)
        *key = k;
    if (key_len)
        *key_len = bag->ent[i].key_len;
    if (value)
        *value = k + bag->ent[i].key_len;
    if (value_len)
        *value_len = bag->ent[i].value_len;
    if (metadata)
        *metadata = k + bag->ent[i].key_len + bag->ent[i].value_len;
    if (metadata_len)
        *metadata_len = bag->ent[i].meta_len;
    return OTELPROF_OK;
}

const char *otelprof_baggage_get(const otelprof_baggage *bag, const char *key, size_t key_len,
                                 size_t *value_len)
{
    if (!bag || !key)
        return NULL;
    size_t i = find(bag, key, prop_len(key, key_len));
    if (i == SIZE_MAX)
        return NULL;
    if (value_len)
        *value_len = bag->ent[i].value_len;
    return bag->buf + bag->ent[i].off + bag->ent[i].key_len;
}

otelprof_status otelprof_baggage_set(otelprof_baggage *bag, const char *key, size_t key_len,
                                     const char *value, size_t value_len, const char *metadata,
                                     size_t metadata_len)
{
    if (!bag || !key || !value)
        return OTELPROF_E_INVAL;
    new_entry ne = {.key = key, .key_len = prop_len(key, key_len)};
    if (!valid_token(ne.key, ne.key_len))
        return OTELPROF_E_INVAL;
    size_t vlen = prop_len(value, value_len);
    size_t mlen = metadata ? prop_len(metadata, metadata_len) : 0;
    if (inside(bag, ne.key, ne.key_len) || inside(bag, value, vlen) || inside(bag, metadata, mlen))
        return OTELPROF_E_INVAL;
    /* Anything larger cannot fit; checked first so the measurements below stay small. */
    if (vlen > OTELPROF_BAGGAGE_MAX_LEN)
        return OTELPROF_E_TOO_LARGE;
    ne.value = (src){.s = value, .n = vlen, .pct = false};
    if (!measure_value(&ne))
        return OTELPROF_E_UTF8;
    if (metadata) {
        ne.meta = metadata;
        ne.meta_raw_len = mlen;
        if (ne.meta_raw_len > OTELPROF_BAGGAGE_MAX_LEN)
            return OTELPROF_E_TOO_LARGE;
        ne.meta_len = props_scan(ne.meta, ne.meta_raw_len, NULL);
        if (ne.meta_len == SIZE_MAX)
            return OTELPROF_E_INVAL;
    }
    return add_entry(bag, &ne);
}

otelprof_status otelprof_baggage_remove(otelprof_baggage *bag, const char *key, size_t key_len)
{
    if (!bag || !key)
        return OTELPROF_E_INVAL;
    size_t i = find(bag, key, prop_len(key, key_len));
    if (i != SIZE_MAX)
        drop_entry(bag, i);
    return OTELPROF_OK;
}

otelprof_status otelprof_baggage_format(const otelprof_baggage *bag, char *out, size_t out_size,
                                        size_t *out_len)
{
    if (!bag || (!out && out_size))
        return OTELPROF_E_INVAL;
    size_t need = total_without(bag, SIZE_MAX);
    if (out_len)
        *out_len = need;
    if (need + 1 > out_size) {
        if (out_size)
            out[0] = '\0';
        return OTELPROF_E_BUF_TOO_SMALL;
    }
    static const char digits[] = "0123456789ABCDEF";
    char *o = out;
    for (size_t i = 0; i < bag->count; i++) {
        const char *k = bag->buf + bag->ent[i].off;
        const unsigned char *v = (const unsigned char *)k + bag->ent[i].key_len;
        if (i)
            *o++ = ',';
        memcpy(o, k, bag->ent[i].key_len);
        o += bag->ent[i].key_len;
        *o++ = '=';
        for (size_t j = 0; j < bag->ent[i].value_len; j++) {
            if (literal(v[j])) {
                *o++ = (char)v[j];
            } else {
                *o++ = '%';
                *o++ = digits[v[j] >> 4];
                *o++ = digits[v[j] & 0xf];
            }
        }
        if (bag->ent[i].meta_len) {
            *o++ = ';';
            memcpy(o, v + bag->ent[i].value_len, bag->ent[i].meta_len);
            o += bag->ent[i].meta_len;
        }
    }
    *o = '\0';
    return OTELPROF_OK;
}
