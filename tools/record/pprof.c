/* pprof output: profile.proto (github.com/google/pprof, proto/profile.proto) encoded by
 * hand and gzip'ed with zlib, the form `go tool pprof` and other readers expect. */
#define _GNU_SOURCE
#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Profile field numbers */
enum {
    P_SAMPLE_TYPE = 1,
    P_SAMPLE = 2,
    P_MAPPING = 3,
    P_LOCATION = 4,
    P_FUNCTION = 5,
    P_STRING_TABLE = 6,
    P_TIME_NANOS = 9,
    P_DURATION_NANOS = 10,
    P_PERIOD_TYPE = 11,
    P_PERIOD = 12,
    P_COMMENT = 13,
};

#define WT_VARINT 0
#define WT_LEN    2

static void put_varint(struct rd_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    rd_buf_put(b, tmp, n);
}

static void put_tag(struct rd_buf *b, unsigned field, unsigned wt)
{
    put_varint(b, (uint64_t)field << 3 | wt);
}

/* proto3 scalars: zero is the default and is left out */
static void put_u64(struct rd_buf *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    put_tag(b, field, WT_VARINT);
    put_varint(b, v);
}

static void put_bytes(struct rd_buf *b, unsigned field, const void *p, size_t n)
{
    put_tag(b, field, WT_LEN);
    put_varint(b, n);
    rd_buf_put(b, p, n);
}

/* An embedded message built in sub, appended to b, then sub emptied for reuse. */
static void put_msg(struct rd_buf *b, unsigned field, struct rd_buf *sub)
{
    put_bytes(b, field, sub->p ? sub->p : "", sub->len);
    if (sub->oom)
        b->oom = true;
    sub->len = 0;
}

static void value_type(struct rd_buf *b, unsigned field, struct rd_buf *sub, uint32_t type,
                       uint32_t unit)
{
    put_u64(sub, 1, type);
    put_u64(sub, 2, unit);
    put_msg(b, field, sub);
}

static int encode(struct rc_profile *p, struct rd_buf *out)
{
    uint32_t s_samples = rc_str(p, "samples", 7), s_count = rc_str(p, "count", 5);
    uint32_t s_cpu = rc_str(p, "cpu", 3), s_ns = rc_str(p, "nanoseconds", 11);
    uint32_t s_comment = rc_str(p, "otelprof record", 15);
    if (p->oom)
        return -ENOMEM;

    struct rd_buf sub = {0}, sub2 = {0}, packed = {0};
    value_type(out, P_SAMPLE_TYPE, &sub, s_samples, s_count);
    value_type(out, P_SAMPLE_TYPE, &sub, s_cpu, s_ns);

    for (size_t i = 0; i < p->samples.n; i++) {
        struct rc_agg a;
        rc_profile_sample(p, i, &a);
        packed.len = 0;
        for (uint32_t j = 0; j < a.n_locs; j++)
            put_varint(&packed, (uint64_t)a.locs[j] + 1); /* ids start at 1 */
        put_bytes(&sub, 1, packed.p ? packed.p : "", packed.len);
        packed.len = 0;
        put_varint(&packed, (uint64_t)a.count);
        put_varint(&packed, (uint64_t)a.count * p->period_ns);
        put_bytes(&sub, 2, packed.p, packed.len);
        for (uint32_t j = 0; j < a.n_labels; j++) {
            struct rc_label l;
            rc_agg_label(&a, j, &l);
            put_u64(&sub2, 1, l.key);
            if (l.str)
                put_u64(&sub2, 2, l.str);
            else
                put_u64(&sub2, 3, (uint64_t)l.num);
            put_msg(&sub, 3, &sub2);
        }
        put_msg(out, P_SAMPLE, &sub);
    }
    for (size_t i = 0; i < p->mappings.n; i++) {
        uint32_t file;
        memcpy(&file, p->mappings.keys[i].key, sizeof file);
        put_u64(&sub, 1, i + 1);
        put_u64(&sub, 5, file);
        put_u64(&sub, 7, 1); /* has_functions: the names are in the profile */
        put_msg(out, P_MAPPING, &sub);
    }
    for (size_t i = 0; i < p->locations.n; i++) {
        const struct rc_loc *l = &p->locs[i];
        put_u64(&sub, 1, i + 1);
        put_u64(&sub, 2, (uint64_t)l->mapping + 1);
        put_u64(&sub, 3, l->addr);
        put_u64(&sub2, 1, (uint64_t)l->function + 1); /* Line.function_id */
        put_msg(&sub, 4, &sub2);
        put_msg(out, P_LOCATION, &sub);
    }
    for (size_t i = 0; i < p->functions.n; i++) {
        put_u64(&sub, 1, i + 1);
        put_u64(&sub, 2, p->fns[i].name);
        put_u64(&sub, 3, p->fns[i].name);
        put_u64(&sub, 4, p->fns[i].file);
        put_msg(out, P_FUNCTION, &sub);
    }
    for (size_t i = 0; i < p->strings.n; i++) {
        size_t len;
        const char *s = rc_str_at(p, (uint32_t)i, &len);
        put_bytes(out, P_STRING_TABLE, s, len);
    }
    put_u64(out, P_TIME_NANOS, p->start_unix_ns);
    put_u64(out, P_DURATION_NANOS, p->duration_ns);
    value_type(out, P_PERIOD_TYPE, &sub, s_cpu, s_ns);
    put_u64(out, P_PERIOD, p->period_ns);
    put_tag(out, P_COMMENT, WT_VARINT);
    put_varint(out, s_comment);
    bool oom = sub.oom || sub2.oom || packed.oom || out->oom;
    rd_buf_free(&sub);
    rd_buf_free(&sub2);
    rd_buf_free(&packed);
    return oom ? -ENOMEM : 0;
}

int rc_write_pprof(struct rc_profile *p, const char *path, char *err, size_t errlen)
{
    struct rd_buf raw = {0};
    int rc = encode(p, &raw);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory encoding the profile");
        rd_buf_free(&raw);
        return rc;
    }
    /* windowBits 15 + 16: a gzip wrapper, as pprof files are */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        snprintf(err, errlen, "zlib: deflateInit2 failed");
        rd_buf_free(&raw);
        return -ENOMEM;
    }
    uLong bound = deflateBound(&z, (uLong)raw.len);
    unsigned char *gz = malloc(bound);
    if (!gz) {
        deflateEnd(&z);
        rd_buf_free(&raw);
        snprintf(err, errlen, "out of memory compressing the profile");
        return -ENOMEM;
    }
    z.next_in = (Bytef *)(raw.p ? raw.p : "");
    z.avail_in = (uInt)raw.len;
    z.next_out = gz;
    z.avail_out = (uInt)bound;
    int zr = deflate(&z, Z_FINISH);
    size_t gz_len = bound - z.avail_out;
    deflateEnd(&z);
    rd_buf_free(&raw);
    if (zr != Z_STREAM_END) {
        free(gz);
        snprintf(err, errlen, "zlib: deflate failed (%d)", zr);
        return -EIO;
    }
    FILE *f = fopen(path, "wbe");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(gz);
        return rc;
    }
    bool ok = fwrite(gz, 1, gz_len, f) == gz_len;
    ok = fclose(f) == 0 && ok;
    free(gz);
    if (!ok) {
        snprintf(err, errlen, "%s: write failed", path);
        return -EIO;
    }
    return 0;
}
