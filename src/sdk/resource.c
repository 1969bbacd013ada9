/* Resources: the SDK's defaults, OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
 * Spec: https://opentelemetry.io/docs/specs/otel/resource/sdk/ and
 * https://opentelemetry.io/docs/specs/semconv/resource/#telemetry-sdk */
#define _GNU_SOURCE
#include "sdk_internal.h"
#include "util/kvlist.h"

#include <otelprof/version.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct otelprof_resource {
    otelprof_kv *attrs; /* each a one-block copy (ots_kv_copy) */
    size_t n, cap;
};

otelprof_status otelprof_resource_put(otelprof_resource *r, const otelprof_kv *kv)
{
    if (!r || !ots_kv_valid(kv))
        return OTELPROF_E_INVAL;
    otelprof_kv copy;
    if (!ots_kv_copy(kv, UINT32_MAX, &copy))
        return OTELPROF_E_NOMEM;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->attrs[i].key, kv->key) == 0) {
            free((void *)r->attrs[i].key);
            r->attrs[i] = copy;
            return OTELPROF_OK;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        otelprof_kv *a = realloc(r->attrs, cap * sizeof *a);
        if (!a) {
            free((void *)copy.key);
            return OTELPROF_E_NOMEM;
        }
        r->attrs = a;
        r->cap = cap;
    }
    r->attrs[r->n++] = copy;
    return OTELPROF_OK;
}

const otelprof_kv *otelprof_resource_attributes(const otelprof_resource *r, size_t *n)
{
    if (n)
        *n = r ? r->n : 0;
    return r ? r->attrs : NULL;
}

void otelprof_resource_free(otelprof_resource *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free((void *)r->attrs[i].key);
    free(r->attrs);
    free(r);
}

static otelprof_status put_str(otelprof_resource *r, const char *key, const char *value, size_t len)
{
    otelprof_kv kv = {key, {.type = OTELPROF_VALUE_STRING, .u.str = {value, len}}};
    return otelprof_resource_put(r, &kv);
}

otelprof_resource *otelprof_resource_new(void)
{
    otelprof_resource *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    char service[256];
    const char *prog = program_invocation_short_name;
    snprintf(service, sizeof service, "unknown_service:%s", prog && *prog ? prog : "c");
    if (put_str(r, "service.name", service, OTELPROF_NUL_TERMINATED) != OTELPROF_OK ||
        put_str(r, "telemetry.sdk.name", "otelprof", OTELPROF_NUL_TERMINATED) != OTELPROF_OK ||
        put_str(r, "telemetry.sdk.language", "c", OTELPROF_NUL_TERMINATED) != OTELPROF_OK ||
        put_str(r, "telemetry.sdk.version", OTELPROF_VERSION_STRING, OTELPROF_NUL_TERMINATED) !=
            OTELPROF_OK) {
        otelprof_resource_free(r);
        return NULL;
    }
    return r;
}

/* ---- OTEL_RESOURCE_ATTRIBUTES ---- */

static bool take_member(void *arg, const char *key, size_t klen, const char *value, size_t vlen)
{
    (void)klen;
    return ots_utf8_valid(key, klen) && ots_utf8_valid(value, vlen) &&
           put_str(arg, key, value, vlen) == OTELPROF_OK;
}

/* Parse the whole list into a temporary resource first: a malformed member discards
 * everything (resource SDK spec, "Specifying resource information via an environment
 * variable"); the grammar is shared with the core's process context (src/util/kvlist.h). */
static void apply_resource_attributes(otelprof_resource *r, const char *v)
{
    otelprof_resource tmp = {0};
    if (op_kvlist_parse(v, take_member, &tmp) != 0) {
        ots_log(OTELPROF_LOG_WARN,
                "OTEL_RESOURCE_ATTRIBUTES is malformed (a member without '=', an empty key, a "
                "bad %%-escape or invalid UTF-8); ignoring all of it");
    } else {
        for (size_t i = 0; i < tmp.n; i++)
            if (otelprof_resource_put(r, &tmp.attrs[i]) != OTELPROF_OK)
                ots_log(OTELPROF_LOG_WARN, "resource: out of memory adding %s", tmp.attrs[i].key);
    }
    for (size_t i = 0; i < tmp.n; i++)
        free((void *)tmp.attrs[i].key);
    free(tmp.attrs);
}

otelprof_resource *otelprof_resource_new_from_env(void)
{
    otelprof_resource *r = otelprof_resource_new();
    if (!r)
        return NULL;
    const char *attrs = ots_env("OTEL_RESOURCE_ATTRIBUTES");
    if (attrs)
        apply_resource_attributes(r, attrs);
    const char *svc = ots_env("OTEL_SERVICE_NAME");
    if (svc && put_str(r, "service.name", svc, OTELPROF_NUL_TERMINATED) != OTELPROF_OK)
        ots_log(OTELPROF_LOG_WARN, "resource: out of memory setting service.name");
    return r;
}
