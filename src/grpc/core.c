/* C-core metadata helpers (include/otelprof/grpc_core.h). */
#include <otelprof/grpc_core.h>

#include <grpc/slice.h>

#include <string.h>

static int key_eq(grpc_slice key, const char *name, size_t name_len)
{
    size_t n = GRPC_SLICE_LENGTH(key);
    const unsigned char *p = GRPC_SLICE_START_PTR(key);
    if (n != name_len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        unsigned char w = (unsigned char)name[i];
        if (w >= 'A' && w <= 'Z')
            w = (unsigned char)(w - 'A' + 'a');
        if (c != w)
            return 0;
    }
    return 1;
}

static size_t md_count(void *user, const char *name, size_t name_len)
{
    const grpc_metadata_array *md = user;
    size_t n = 0;
    for (size_t i = 0; i < md->count; i++)
        n += (size_t)key_eq(md->metadata[i].key, name, name_len);
    return n;
}

static const char *md_get(void *user, const char *name, size_t name_len, size_t index,
                          size_t *value_len)
{
    const grpc_metadata_array *md = user;
    for (size_t i = 0; i < md->count; i++) {
        if (!key_eq(md->metadata[i].key, name, name_len))
            continue;
        if (index-- == 0) {
            *value_len = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
        }
    }
    return NULL;
}

otelprof_status otelprof_grpc_metadata_extract(const otelprof_propagators *props,
                                               const grpc_metadata_array *md,
                                               otelprof_span_context *out,
                                               otelprof_baggage *bag_out)
{
    if (!md || !out)
        return OTELPROF_E_INVAL;
    otelprof_propagators env;
    if (!props) {
        (void)otelprof_propagators_from_env(&env);
        props = &env;
    }
    otelprof_carrier c =
        OTELPROF_CARRIER_INIT(.user = (void *)md, .count = md_count, .get = md_get);
    otelprof_status rc = otelprof_propagation_extract(props, &c, out, bag_out);
    return rc == OTELPROF_E_INVAL ? rc : OTELPROF_OK;
}

/* Inject into a small local list first, then turn it into slices all at once. */
#define INJ_MAX 3
typedef struct inj {
    size_t n;
    char name[INJ_MAX][16];
    char value[INJ_MAX][OTELPROF_BAGGAGE_MAX_LEN + 1];
    size_t value_len[INJ_MAX];
} inj;

static otelprof_status inj_set(void *user, const char *name, size_t name_len, const char *value,
                               size_t value_len)
{
    inj *s = user;
    if (s->n >= INJ_MAX || name_len >= sizeof s->name[0] || value_len > OTELPROF_BAGGAGE_MAX_LEN)
        return OTELPROF_E_TOO_LARGE;
    memcpy(s->name[s->n], name, name_len);
    s->name[s->n][name_len] = '\0';
    memcpy(s->value[s->n], value, value_len);
    s->value_len[s->n] = value_len;
    s->n++;
    return OTELPROF_OK;
}

otelprof_status otelprof_grpc_metadata_inject(const otelprof_propagators *props,
                                              const otelprof_span_context *ctx,
                                              const otelprof_baggage *bag, grpc_metadata *md,
                                              size_t capacity, size_t *count)
{
    if (!md || !count || *count > capacity)
        return OTELPROF_E_INVAL;
    otelprof_propagators env;
    if (!props) {
        (void)otelprof_propagators_from_env(&env);
        props = &env;
    }
    static __thread inj s; /* ~24 KiB: not on the caller's stack */
    s.n = 0;
    otelprof_carrier c = OTELPROF_CARRIER_INIT(.user = &s, .set = inj_set);
    otelprof_status rc = otelprof_propagation_inject(props, ctx, bag, &c);
    if (rc != OTELPROF_OK)
        return rc;
    if (capacity - *count < s.n)
        return OTELPROF_E_TOO_LARGE;
    for (size_t i = 0; i < s.n; i++) {
        grpc_metadata *m = &md[*count + i];
        memset(m, 0, sizeof *m);
        m->key = grpc_slice_from_copied_string(s.name[i]);
        m->value = grpc_slice_from_copied_buffer(s.value[i], s.value_len[i]);
    }
    *count += s.n;
    return OTELPROF_OK;
}

void otelprof_grpc_metadata_release(grpc_metadata *md, size_t n)
{
    for (size_t i = 0; md && i < n; i++) {
        grpc_slice_unref(md[i].key);
        grpc_slice_unref(md[i].value);
    }
}
