/* The ready-made carrier over an array of NUL-terminated (name, value) pairs. */
#include "prop_internal.h"

void otelprof_header_array_init(otelprof_header_array *arr, otelprof_header *headers, size_t count,
                                size_t capacity, char *buf, size_t buf_size)
{
    if (!arr)
        return;
    arr->headers = headers;
    arr->count = count;
    arr->capacity = capacity < count ? count : capacity;
    arr->buf = buf;
    arr->buf_size = buf ? buf_size : 0;
    arr->buf_used = 0;
}

static bool match(const otelprof_header *h, const char *name, size_t name_len)
{
    return h->name && prop_name_eq(h->name, strlen(h->name), name, name_len);
}

static size_t arr_count(void *user, const char *name, size_t name_len)
{
    const otelprof_header_array *arr = user;
    size_t n = 0;
    name_len = prop_len(name, name_len);
    for (size_t i = 0; i < arr->count; i++)
        n += match(&arr->headers[i], name, name_len);
    return n;
}

static const char *arr_get(void *user, const char *name, size_t name_len, size_t index,
                           size_t *value_len)
{
    const otelprof_header_array *arr = user;
    name_len = prop_len(name, name_len);
    for (size_t i = 0; i < arr->count; i++) {
        const otelprof_header *h = &arr->headers[i];
        if (match(h, name, name_len) && index-- == 0) {
            const char *v = h->value ? h->value : "";
            if (value_len)
                *value_len = strlen(v);
            return v;
        }
    }
    return NULL;
}

/* Copy s[0..n) and a NUL into the bump buffer (checked by the caller). */
static const char *arr_copy(otelprof_header_array *arr, const char *s, size_t n)
{
    char *d = arr->buf + arr->buf_used;
    memcpy(d, s, n);
    d[n] = '\0';
    arr->buf_used += n + 1;
    return d;
}

static otelprof_status arr_set(void *user, const char *name, size_t name_len, const char *value,
                               size_t value_len)
{
    otelprof_header_array *arr = user;
    if (!name || !value)
        return OTELPROF_E_INVAL;
    name_len = prop_len(name, name_len);
    value_len = prop_len(value, value_len);
    /* The pairs are C strings: an embedded NUL would silently cut them. */
    if (name_len == 0 || memchr(name, '\0', name_len) || memchr(value, '\0', value_len))
        return OTELPROF_E_INVAL;
    size_t matches = arr_count(arr, name, name_len);
    if (matches == 0 && arr->count >= arr->capacity)
        return OTELPROF_E_TOO_LARGE;
    if (arr->buf_size - arr->buf_used < name_len + value_len + 2)
        return OTELPROF_E_BUF_TOO_SMALL;
    /* Checked everything first: from here on nothing fails, so a failed set leaves the
     * array as it was. The first match keeps its place; later ones go. */
    otelprof_header nh = {arr_copy(arr, name, name_len), arr_copy(arr, value, value_len)};
    bool placed = false;
    size_t w = 0;
    for (size_t r = 0; r < arr->count; r++) {
        if (match(&arr->headers[r], name, name_len)) {
            if (placed)
                continue;
            arr->headers[w++] = nh;
            placed = true;
        } else {
            arr->headers[w++] = arr->headers[r];
        }
    }
    if (!placed)
        arr->headers[w++] = nh;
    arr->count = w;
    return OTELPROF_OK;
}

static otelprof_status arr_for_each(void *user, otelprof_header_visit_fn fn, void *arg)
{
    const otelprof_header_array *arr = user;
    if (!fn)
        return OTELPROF_E_INVAL;
    for (size_t i = 0; i < arr->count; i++) {
        const otelprof_header *h = &arr->headers[i];
        if (!h->name)
            continue;
        const char *v = h->value ? h->value : "";
        if (fn(arg, h->name, strlen(h->name), v, strlen(v)))
            break;
    }
    return OTELPROF_OK;
}

otelprof_carrier otelprof_header_array_carrier(otelprof_header_array *arr)
{
    otelprof_carrier c;
    memset(&c, 0, sizeof c);
    c.sz = sizeof c;
    c.user = arr;
    c.count = arr_count;
    c.get = arr_get;
    c.set = arr_set;
    c.for_each = arr_for_each;
    return c;
}
