/* The aggregated profile: samples with the same stack and labels are counted once, with
 * the string/function/mapping/location tables the pprof format wants. */
#define _GNU_SOURCE
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ intern table ---- */

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(1099511628211);
    }
    return h ^ (h >> 29);
}

static bool intern_grow(struct rc_intern *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 256;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->keys[i].hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return true;
}

uint32_t rc_intern_find(const struct rc_intern *t, const void *key, size_t len)
{
    if (!t->cap)
        return UINT32_MAX;
    uint64_t h = fnv1a(key, len);
    for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        uint32_t s = t->slots[j];
        if (!s)
            return UINT32_MAX;
        const struct rc_ikey *k = &t->keys[s - 1];
        if (k->hash == h && k->len == len && memcmp(k->key, key, len) == 0)
            return s - 1;
    }
}

uint32_t rc_intern_get(struct rc_intern *t, const void *key, size_t len, bool *added)
{
    if (added)
        *added = false;
    uint32_t id = rc_intern_find(t, key, len);
    if (id != UINT32_MAX)
        return id;
    /* keep the load under 1/2 so probes stay short */
    if ((t->n + 1) * 2 > t->cap && !intern_grow(t))
        return UINT32_MAX;
    if (t->n == t->keys_cap) {
        size_t nc = t->keys_cap ? t->keys_cap * 2 : 256;
        struct rc_ikey *nk = realloc(t->keys, nc * sizeof *nk);
        if (!nk)
            return UINT32_MAX;
        t->keys = nk;
        t->keys_cap = nc;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return UINT32_MAX;
    memcpy(copy, key, len);
    uint64_t h = fnv1a(key, len);
    t->keys[t->n] = (struct rc_ikey){copy, (uint32_t)len, h};
    size_t j = h & (t->cap - 1);
    while (t->slots[j])
        j = (j + 1) & (t->cap - 1);
    t->slots[j] = (uint32_t)t->n + 1;
    if (added)
        *added = true;
    return (uint32_t)t->n++;
}

void rc_intern_free(struct rc_intern *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->keys[i].key);
    free(t->keys);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ profile ---- */

void rc_profile_init(struct rc_profile *p, uint64_t period_ns)
{
    memset(p, 0, sizeof *p);
    p->period_ns = period_ns;
    (void)rc_str(p, "", 0);    /* pprof: string_table[0] must be "" */
    (void)rc_str(p, "all", 3); /* the flame graph's root */
}

uint32_t rc_str(struct rc_profile *p, const char *s, size_t len)
{
    uint32_t id = rc_intern_get(&p->strings, s, len, NULL);
    if (id == UINT32_MAX) {
        p->oom = true;
        return 0;
    }
    return id;
}

const char *rc_str_at(const struct rc_profile *p, uint32_t id, size_t *len)
{
    *len = p->strings.keys[id].len;
    return (const char *)p->strings.keys[id].key;
}

static bool ensure(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 256;
    void *nv = realloc(*v, nc * size);
    if (!nv)
        return false;
    *v = nv;
    *cap = nc;
    return true;
}

static uint32_t function_id(struct rc_profile *p, uint32_t name, uint32_t file)
{
    uint32_t key[2] = {name, file};
    bool added;
    uint32_t id = rc_intern_get(&p->functions, key, sizeof key, &added);
    if (id == UINT32_MAX || (added && !ensure((void **)&p->fns, &p->fns_cap, id, sizeof *p->fns))) {
        p->oom = true;
        return UINT32_MAX;
    }
    if (added)
        p->fns[id] = (struct rc_fn){name, file};
    return id;
}

static uint32_t location_id(struct rc_profile *p, const struct rc_frame *f)
{
    char buf[600];
    const char *file = f->file ? f->file : "[unknown]";
    uint32_t file_id = rc_str(p, file, strlen(file));
    uint32_t name_id;
    if (f->func) {
        name_id = rc_str(p, f->func, strlen(f->func));
    } else {
        /* No symbol: name the address so distinct code stays distinct. */
        int n = snprintf(buf, sizeof buf, "%s+0x%" PRIx64, f->base ? f->base : file, f->func_off);
        name_id = rc_str(p, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
    uint32_t mapping = rc_intern_get(&p->mappings, &file_id, sizeof file_id, NULL);
    uint32_t fn = function_id(p, name_id, file_id);
    if (mapping == UINT32_MAX || fn == UINT32_MAX) {
        p->oom = true;
        return UINT32_MAX;
    }
    struct {
        uint32_t mapping, fn;
        uint64_t addr;
    } key = {mapping, fn, f->addr};
    bool added;
    uint32_t id = rc_intern_get(&p->locations, &key, sizeof key, &added);
    if (id == UINT32_MAX ||
        (added && !ensure((void **)&p->locs, &p->locs_cap, id, sizeof *p->locs))) {
        p->oom = true;
        return UINT32_MAX;
    }
    if (added)
        p->locs[id] = (struct rc_loc){mapping, fn, f->addr, f->kernel};
    return id;
}

/* Sample key layout (u32 words): process, n_locs, locs..., n_labels, then per label
 * key, str, num (two words). */
void rc_profile_add(struct rc_profile *p, const struct rc_sample *s)
{
    uint32_t key[2 + RC_MAX_FRAMES + 1 + RC_MAX_LABELS * 4];
    size_t k = 0;
    const char *proc = s->process ? s->process : "";
    key[k++] = rc_str(p, proc, strlen(proc));
    key[k++] = (uint32_t)s->n_frames;
    for (size_t i = 0; i < s->n_frames; i++) {
        uint32_t id = location_id(p, &s->frames[i]);
        if (id == UINT32_MAX)
            return;
        key[k++] = id;
    }
    key[k++] = (uint32_t)s->n_labels;
    for (size_t i = 0; i < s->n_labels; i++) {
        key[k++] = s->labels[i].key;
        key[k++] = s->labels[i].str;
        uint64_t num = (uint64_t)s->labels[i].num;
        key[k++] = (uint32_t)num;
        key[k++] = (uint32_t)(num >> 32);
    }
    bool added;
    uint32_t id = rc_intern_get(&p->samples, key, k * sizeof key[0], &added);
    if (id == UINT32_MAX ||
        (added && !ensure((void **)&p->counts, &p->counts_cap, id, sizeof *p->counts))) {
        p->oom = true;
        return;
    }
    if (added)
        p->counts[id] = 0;
    p->counts[id]++;
}

void rc_profile_sample(const struct rc_profile *p, size_t i, struct rc_agg *out)
{
    const uint32_t *w = (const uint32_t *)p->samples.keys[i].key;
    out->process = w[0];
    out->n_locs = w[1];
    out->locs = w + 2;
    w += 2 + out->n_locs;
    out->n_labels = w[0];
    out->label_words = w + 1;
    out->count = p->counts[i];
}

void rc_agg_label(const struct rc_agg *a, size_t i, struct rc_label *out)
{
    const uint32_t *w = a->label_words + i * 4;
    out->key = w[0];
    out->str = w[1];
    out->num = (int64_t)((uint64_t)w[2] | (uint64_t)w[3] << 32);
}

const char *rc_loc_name(const struct rc_profile *p, uint32_t loc, size_t *len)
{
    return rc_str_at(p, p->fns[p->locs[loc].function].name, len);
}

void rc_profile_free(struct rc_profile *p)
{
    rc_intern_free(&p->strings);
    rc_intern_free(&p->functions);
    rc_intern_free(&p->mappings);
    rc_intern_free(&p->locations);
    rc_intern_free(&p->samples);
    free(p->locs);
    free(p->fns);
    free(p->counts);
    memset(p, 0, sizeof *p);
}
