/* OTEP 4719 process context: find the OTEL_CTX mapping, copy header and payload
 * consistently, and decode the protobuf ProcessContext.
 *
 * The decoder reads untrusted bytes: every length is checked against what is left of
 * its enclosing message, varints are at most 10 bytes, groups and unknown wire types are
 * rejected, and nothing recurses on input-controlled depth.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_MAX     16384 /* a 64 KiB payload cannot hold more */
#define READ_TRIES 50

struct pbr {
    const uint8_t *p;
    size_t n, pos;
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static bool pb_varint(struct pbr *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->n)
            return false;
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && b > 1) /* the 10th byte holds one bit */
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

struct pbfield {
    uint32_t num;
    unsigned wt;
    uint64_t val;   /* VARINT, I64, I32 */
    struct pbr sub; /* LEN */
};

/* 1: a field, 0: end of message, -1: malformed. */
static int pb_next(struct pbr *r, struct pbfield *f)
{
    if (r->pos >= r->n)
        return 0;
    uint64_t tag;
    if (!pb_varint(r, &tag))
        return -1;
    uint64_t num = tag >> 3;
    if (num == 0 || num > 0x1fffffff)
        return -1;
    f->num = (uint32_t)num;
    f->wt = (unsigned)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return pb_varint(r, &f->val) ? 1 : -1;
    case WT_I64:
        if (r->n - r->pos < 8)
            return -1;
        f->val = 0;
        for (int i = 7; i >= 0; i--)
            f->val = f->val << 8 | r->p[r->pos + (size_t)i];
        r->pos += 8;
        return 1;
    case WT_I32:
        if (r->n - r->pos < 4)
            return -1;
        f->val = 0;
        for (int i = 3; i >= 0; i--)
            f->val = f->val << 8 | r->p[r->pos + (size_t)i];
        r->pos += 4;
        return 1;
    case WT_LEN: {
        uint64_t len;
        if (!pb_varint(r, &len) || len > r->n - r->pos)
            return -1;
        f->sub = (struct pbr){r->p + r->pos, (size_t)len, 0};
        r->pos += (size_t)len;
        return 1;
    }
    default: /* groups (3, 4) and 6, 7 */
        return -1;
    }
}

/* AnyValue: the last member of the oneof wins, as in protobuf. */
static bool decode_any(struct pbr r, struct rd_any *a)
{
    struct pbfield f;
    int rc;
    memset(a, 0, sizeof *a);
    while ((rc = pb_next(&r, &f)) > 0) {
        switch (f.num) {
        case 1: /* string_value */
        case 5: /* array_value */
        case 6: /* kvlist_value */
        case 7: /* bytes_value */
            if (f.wt != WT_LEN)
                return false;
            a->kind = f.num == 1 ? RD_ANY_STRING : f.num == 5 ? RD_ANY_ARRAY : RD_ANY_OTHER;
            a->s = f.sub.p;
            a->len = f.sub.n;
            break;
        case 2:
        case 3:
            if (f.wt != WT_VARINT)
                return false;
            a->kind = f.num == 2 ? RD_ANY_BOOL : RD_ANY_INT;
            a->b = f.val != 0;
            a->i = (int64_t)f.val;
            break;
        case 4:
            if (f.wt != WT_I64)
                return false;
            a->kind = RD_ANY_DOUBLE;
            memcpy(&a->d, &f.val, 8);
            break;
        default:
            break;
        }
    }
    return rc == 0;
}

bool rd_any_array_next(const struct rd_any *arr, size_t *pos, struct rd_any *item)
{
    if (arr->kind != RD_ANY_ARRAY)
        return false;
    struct pbr r = {arr->s, arr->len, *pos};
    struct pbfield f;
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN || !decode_any(f.sub, item))
            return false;
        *pos = r.pos;
        return true;
    }
    return false;
}

static bool push_kv(struct rd_kv **v, size_t *n, struct pbr r)
{
    struct rd_kv kv = {0};
    struct pbfield f;
    int rc;
    bool have_value = false;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != WT_LEN)
                return false;
            kv.key = f.sub.p;
            kv.key_len = f.sub.n;
        } else if (f.num == 2) {
            if (f.wt != WT_LEN || !decode_any(f.sub, &kv.value))
                return false;
            have_value = true;
        }
    }
    if (rc < 0 || *n >= KV_MAX)
        return false;
    if (!have_value)
        kv.value.kind = RD_ANY_NONE;
    if (*n % 16 == 0) {
        struct rd_kv *nv = realloc(*v, (*n + 16) * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
    }
    (*v)[(*n)++] = kv;
    return true;
}

static bool key_is(const struct rd_kv *kv, const char *name)
{
    size_t n = strlen(name);
    return kv->key_len == n && memcmp(kv->key, name, n) == 0;
}

int rd_procctx_decode(struct rd_procctx *pc, uint8_t *payload, size_t len)
{
    pc->payload = payload;
    pc->payload_size = (uint32_t)len;
    struct pbr r = {payload, len, 0};
    struct pbfield f;
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num == 1) { /* Resource; repeated occurrences merge */
            if (f.wt != WT_LEN)
                return -EBADMSG;
            struct pbr rr = f.sub;
            struct pbfield g;
            int rc2;
            while ((rc2 = pb_next(&rr, &g)) > 0) {
                if (g.num != 1)
                    continue;
                if (g.wt != WT_LEN || !push_kv(&pc->resource, &pc->n_resource, g.sub))
                    return -EBADMSG;
            }
            if (rc2 < 0)
                return -EBADMSG;
        } else if (f.num == 2) {
            if (f.wt != WT_LEN || !push_kv(&pc->attrs, &pc->n_attrs, f.sub))
                return -EBADMSG;
        }
    }
    if (rc < 0)
        return -EBADMSG;
    for (size_t i = 0; i < pc->n_attrs; i++) {
        const struct rd_kv *kv = &pc->attrs[i];
        if (key_is(kv, "threadlocal.schema_version") && kv->value.kind == RD_ANY_STRING) {
            pc->has_schema = true;
            pc->schema = kv->value.s;
            pc->schema_len = kv->value.len;
        } else if (key_is(kv, "threadlocal.attribute_key_map") && kv->value.kind == RD_ANY_ARRAY) {
            pc->has_key_map = true;
            pc->n_keys = 0;
            size_t pos = 0;
            struct rd_any item;
            while (pc->n_keys < RD_PC_KEYS_MAX && rd_any_array_next(&kv->value, &pos, &item)) {
                /* a non-string entry keeps its index but has no name */
                pc->keys[pc->n_keys] = item.kind == RD_ANY_STRING ? item.s : NULL;
                pc->key_len[pc->n_keys] = item.kind == RD_ANY_STRING ? item.len : 0;
                pc->n_keys++;
            }
        }
    }
    pc->decoded = true;
    return 0;
}

static bool is_ctx_mapping(const char *name)
{
    return strcmp(name, "[anon_shmem:OTEL_CTX]") == 0 || strcmp(name, "[anon:OTEL_CTX]") == 0 ||
           strcmp(name, "/memfd:OTEL_CTX") == 0 || strcmp(name, "/memfd:OTEL_CTX (deleted)") == 0;
}

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

int rd_procctx_read(pid_t pid, const struct rd_maps *maps, struct rd_procctx *pc)
{
    const struct rd_mapping *m = NULL;
    for (size_t i = 0; i < maps->n && !m; i++)
        if (is_ctx_mapping(maps->v[i].path))
            m = &maps->v[i];
    if (!m)
        return 0;
    pc->found = true;
    snprintf(pc->mapping, sizeof pc->mapping, "%s", m->path);
    pc->mapping_addr = m->start;
    if (m->end - m->start < RD_PC_HEADER) {
        snprintf(pc->why, sizeof pc->why, "mapping smaller than the 32-byte header");
        return 0;
    }
    for (int attempt = 0; attempt < READ_TRIES; attempt++) {
        uint8_t h1[RD_PC_HEADER], h2[RD_PC_HEADER];
        int rc = rd_mem_read(pid, m->start, h1, sizeof h1);
        if (rc != 0)
            return rc;
        if (memcmp(h1, "OTEL_CTX", 8) != 0) {
            snprintf(pc->why, sizeof pc->why, "bad signature");
            return 0;
        }
        memcpy(&pc->version, h1 + 8, 4);
        memcpy(&pc->payload_size, h1 + 12, 4);
        memcpy(&pc->published_at, h1 + 16, 8);
        memcpy(&pc->payload_addr, h1 + 24, 8);
        if (pc->published_at == 0) { /* an update is in progress */
            nap();
            continue;
        }
        if (pc->version != RD_PC_VERSION) {
            snprintf(pc->why, sizeof pc->why, "unsupported header version %u", pc->version);
            return 0;
        }
        if (pc->payload_size == 0 || pc->payload_size > RD_PC_PAYLOAD_MAX) {
            snprintf(pc->why, sizeof pc->why, "payload size %u outside 1..65536", pc->payload_size);
            return 0;
        }
        uint8_t *pl = malloc(pc->payload_size);
        if (!pl)
            return -ENOMEM;
        rc = rd_mem_read(pid, pc->payload_addr, pl, pc->payload_size);
        int rc2 = rd_mem_read(pid, m->start, h2, sizeof h2);
        if (rc2 != 0) {
            free(pl);
            return rc2;
        }
        if (memcmp(h1, h2, sizeof h1) != 0) { /* republished while we copied: again */
            free(pl);
            nap();
            continue;
        }
        if (rc != 0) {
            free(pl);
            snprintf(pc->why, sizeof pc->why, "reading the payload at 0x%llx: %s",
                     (unsigned long long)pc->payload_addr, strerror(-rc));
            return 0;
        }
        if (rd_procctx_decode(pc, pl, pc->payload_size) != 0) {
            snprintf(pc->why, sizeof pc->why, "malformed protobuf payload");
            pc->decoded = false;
        }
        return 0;
    }
    snprintf(pc->why, sizeof pc->why, "the context kept changing (update in progress)");
    return 0;
}

void rd_procctx_free(struct rd_procctx *pc)
{
    free(pc->payload);
    free(pc->resource);
    free(pc->attrs);
    pc->payload = NULL;
    pc->resource = pc->attrs = NULL;
    pc->n_resource = pc->n_attrs = 0;
}
