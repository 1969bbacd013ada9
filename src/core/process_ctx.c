/* Process-wide state and the OTel Process Context (OTEP 4719).
 *
 * Spec: open-telemetry/opentelemetry-specification oteps/profiles/4719-process-ctx.md.
 * A 32-byte header in a mapping named OTEL_CTX points at a protobuf ProcessContext
 * payload: the resource, plus the thread-context keys that OTEP 4947 readers need
 * (threadlocal.schema_version, threadlocal.attribute_key_map).
 *
 * Publish protocol (readers on other CPUs race with us, so real fences):
 *   1. first time: write signature, version, size, payload pointer; fence; timestamp.
 *   2. update: timestamp = 0; fence; size + payload pointer; fence; new timestamp (it
 *      must differ from the old one).
 * One writer at a time: everything here runs under `lock`. After fork the child has no
 * mapping (MADV_DONTFORK) and a new pid: pthread_atfork republishes.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "util/kvlist.h"
#include "util/opts.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

/* The only schema today's OTel eBPF profiler accepts; the OTEP renames it tls_v1 later. */
#define SCHEMA_VERSION    "tlsdesc_v1_dev"
#define PAYLOAD_MAX       65536 /* the eBPF profiler rejects larger payloads */
#define HEADER_VERSION    2
#define DEFAULT_TRACE_LBL "otel_traceid"
#define DEFAULT_SPAN_LBL  "otel_spanid"
#define CL_KEY_MAX        25

atomic_uint op_g_formats;
atomic_bool op_g_inited;
atomic_uint op_g_gen = 1; /* never 0: zeroed frames must not look current */
atomic_uint op_g_key_count;
const char *_Atomic op_g_key_names[OTELPROF_MAX_KEYS];
uint8_t op_g_key_name_len[OTELPROF_MAX_KEYS];
static const struct op_label default_trace_label = {sizeof DEFAULT_TRACE_LBL - 1,
                                                    DEFAULT_TRACE_LBL};
static const struct op_label default_span_label = {sizeof DEFAULT_SPAN_LBL - 1, DEFAULT_SPAN_LBL};
const struct op_label *_Atomic op_g_trace_label = &default_trace_label;
const struct op_label *_Atomic op_g_span_label = &default_span_label;

struct ctx_header {
    char signature[8];
    uint32_t version;
    uint32_t payload_size;
    uint64_t published_at;
    uint64_t payload;
};
_Static_assert(sizeof(struct ctx_header) == 32, "OTEP 4719 header");

struct kv {
    char *key;
    char *value;
    int from_api; /* set through otelprof_resource_set: wins over the environment */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct kv *res;
static size_t res_len, res_cap;
static struct ctx_header *map_hdr;
static size_t map_len;
static unsigned char *payload, *old_payload;
static size_t payload_len;
static uint64_t last_published;

/* ---------- protobuf writer (only what ProcessContext needs) ---------- */

struct pb {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static void pb_put(struct pb *b, const void *data, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_put(b, tmp, n);
}

static void pb_bytes(struct pb *b, unsigned field, const void *data, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pb_put(b, data, n);
}

static void pb_sub(struct pb *b, unsigned field, struct pb *sub)
{
    if (sub->oom)
        b->oom = true;
    pb_bytes(b, field, sub->p, sub->len);
    free(sub->p);
    *sub = (struct pb){0};
}

/* KeyValue{key=1, value=2: AnyValue{string_value=1}} */
static void pb_kv_string(struct pb *b, unsigned field, const char *k, const char *v)
{
    struct pb kv = {0}, any = {0};
    pb_bytes(&any, 1, v, strlen(v));
    pb_bytes(&kv, 1, k, strlen(k));
    pb_sub(&kv, 2, &any);
    pb_sub(b, field, &kv);
}

/* KeyValue{key, AnyValue{int_value=3}} */
static void pb_kv_int(struct pb *b, unsigned field, const char *k, int64_t v)
{
    struct pb kv = {0}, any = {0};
    pb_varint(&any, 3 << 3 | 0);
    pb_varint(&any, (uint64_t)v);
    pb_bytes(&kv, 1, k, strlen(k));
    pb_sub(&kv, 2, &any);
    pb_sub(b, field, &kv);
}

static const char *res_get(const char *key)
{
    for (size_t i = 0; i < res_len; i++)
        if (strcmp(res[i].key, key) == 0)
            return res[i].value;
    return NULL;
}

/* ProcessContext{resource=1: Resource{attributes=1}, attributes=2}. Caller holds lock. */
static otelprof_status encode_payload(unsigned char **out, size_t *out_len)
{
    struct pb msg = {0}, resource = {0};
    for (size_t i = 0; i < res_len; i++)
        pb_kv_string(&resource, 1, res[i].key, res[i].value);
    if (!res_get("process.pid"))
        pb_kv_int(&resource, 1, "process.pid", (int64_t)getpid());
    pb_sub(&msg, 1, &resource);

    unsigned fm = atomic_load(&op_g_formats);
    if (fm & OTELPROF_FORMAT_THREAD_CTX) {
        pb_kv_string(&msg, 2, "threadlocal.schema_version", SCHEMA_VERSION);
        /* KeyValue{key, AnyValue{array_value=5: ArrayValue{values=1: AnyValue{string=1}}}} */
        struct pb kv = {0}, any = {0}, arr = {0};
        unsigned n = atomic_load(&op_g_key_count);
        for (unsigned i = 0; i < n; i++) {
            struct pb item = {0};
            const char *name = atomic_load(&op_g_key_names[i]);
            pb_bytes(&item, 1, name, strlen(name));
            pb_sub(&arr, 1, &item);
        }
        pb_sub(&any, 5, &arr);
        const char *k = "threadlocal.attribute_key_map";
        pb_bytes(&kv, 1, k, strlen(k));
        pb_sub(&kv, 2, &any);
        pb_sub(&msg, 2, &kv);
    }
    if (msg.oom) {
        free(msg.p);
        return OTELPROF_E_NOMEM;
    }
    if (msg.len == 0 || msg.len > PAYLOAD_MAX) {
        free(msg.p);
        return OTELPROF_E_TOO_LARGE;
    }
    *out = msg.p;
    *out_len = msg.len;
    return OTELPROF_OK;
}

/* ---------- the OTEL_CTX mapping ---------- */

static uint64_t boottime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static otelprof_status map_create(void)
{
    size_t len = (size_t)sysconf(_SC_PAGESIZE);
    void *p = MAP_FAILED;
    int fd = memfd_create("OTEL_CTX", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL) /* kernels before 6.3 lack MFD_NOEXEC_SEAL */
        fd = memfd_create("OTEL_CTX", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0) {
        if (ftruncate(fd, (off_t)len) == 0)
            p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        close(fd);
    }
    if (p == MAP_FAILED)
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        op_log(OTELPROF_LOG_ERROR, "process context: mmap failed: %s", strerror(errno));
        return OTELPROF_E_SYSTEM;
    }
    if (madvise(p, len, MADV_DONTFORK) != 0)
        op_log(OTELPROF_LOG_WARN, "process context: madvise(MADV_DONTFORK): %s", strerror(errno));
    /* Names the anonymous fallback [anon:OTEL_CTX]; fails harmlessly on a memfd mapping
     * and on kernels without CONFIG_ANON_VMA_NAME. */
    (void)prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, len, (unsigned long)"OTEL_CTX");
    map_hdr = p;
    map_len = len;
    return OTELPROF_OK;
}

static void map_publish(unsigned char *pl, size_t len)
{
    struct ctx_header *h = map_hdr;
    uint64_t ts = boottime_ns();
    if (ts <= last_published)
        ts = last_published + 1;
    if (__atomic_load_n(&h->published_at, __ATOMIC_RELAXED) == 0 && h->version == 0) {
        memcpy(h->signature, "OTEL_CTX", 8);
        h->version = HEADER_VERSION;
    } else {
        __atomic_store_n(&h->published_at, 0, __ATOMIC_SEQ_CST);
        atomic_thread_fence(memory_order_seq_cst);
    }
    h->payload_size = (uint32_t)len;
    h->payload = (uint64_t)(uintptr_t)pl;
    atomic_thread_fence(memory_order_seq_cst);
    __atomic_store_n(&h->published_at, ts, __ATOMIC_SEQ_CST);
    last_published = ts;
}

/* Encode and (re)publish. Caller holds lock. */
static otelprof_status republish(void)
{
    if (!(atomic_load(&op_g_formats) & OTELPROF_FORMAT_PROCESS_CTX))
        return OTELPROF_OK;
    unsigned char *pl;
    size_t len;
    otelprof_status rc = encode_payload(&pl, &len);
    if (rc != OTELPROF_OK)
        return rc;
    if (!map_hdr && (rc = map_create()) != OTELPROF_OK) {
        free(pl);
        return rc;
    }
    map_publish(pl, len);
    /* A reader that copied the old pointer just before the swap may still be reading
     * the previous payload; it notices the timestamp change, but keep its memory valid
     * for one more generation anyway. */
    free(old_payload);
    old_payload = payload;
    payload = pl;
    payload_len = len;
    return OTELPROF_OK;
}

static void map_drop(void)
{
    if (map_hdr) {
        __atomic_store_n(&map_hdr->published_at, 0, __ATOMIC_SEQ_CST);
        atomic_thread_fence(memory_order_seq_cst);
        munmap(map_hdr, map_len);
        map_hdr = NULL;
    }
    free(old_payload);
    free(payload);
    old_payload = payload = NULL;
    payload_len = 0;
}

/* ---------- fork ---------- */

static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void atfork_child(void)
{
    /* MADV_DONTFORK: the child has no OTEL_CTX mapping. The payload's heap copy is here,
     * but process.pid changed, so encode again. */
    map_hdr = NULL;
    last_published = 0;
    if (atomic_load(&op_g_inited))
        (void)republish();
    pthread_mutex_unlock(&lock);
}

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---------- configuration from the environment ---------- */

static int res_set(const char *key, const char *value, int from_api)
{
    for (size_t i = 0; i < res_len; i++) {
        if (strcmp(res[i].key, key) == 0) {
            if (res[i].from_api && !from_api)
                return 0;
            char *v = strdup(value);
            if (!v)
                return -1;
            free(res[i].value);
            res[i].value = v;
            res[i].from_api = from_api;
            return 0;
        }
    }
    if (res_len == res_cap) {
        size_t cap = res_cap ? res_cap * 2 : 8;
        struct kv *n = realloc(res, cap * sizeof *n);
        if (!n)
            return -1;
        res = n;
        res_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    res[res_len++] = (struct kv){k, v, from_api};
    return 0;
}

/* One OTEL_RESOURCE_ATTRIBUTES member into a temporary list. */
struct kv_tmp {
    struct kv *items;
    size_t n, cap;
};

static bool take_member(void *arg, const char *key, size_t klen, const char *value, size_t vlen)
{
    struct kv_tmp *t = arg;
    if (!op_utf8_valid((const unsigned char *)key, klen) ||
        !op_utf8_valid((const unsigned char *)value, vlen) || strlen(value) != vlen)
        return false;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct kv *n = realloc(t->items, cap * sizeof *n);
        if (!n)
            return false;
        t->items = n;
        t->cap = cap;
    }
    t->items[t->n].key = strdup(key);
    t->items[t->n].value = strdup(value);
    t->n++;
    return t->items[t->n - 1].key && t->items[t->n - 1].value;
}

/* OTEL_RESOURCE_ATTRIBUTES: on any malformed member the whole value is discarded, as the
 * OTel SDK spec asks (src/util/kvlist.h, shared with the SDK's resource). */
static void env_resource_attributes(void)
{
    const char *v = getenv("OTEL_RESOURCE_ATTRIBUTES");
    if (!v || !*v)
        return;
    struct kv_tmp t = {0};
    bool bad = op_kvlist_parse(v, take_member, &t) != 0;
    if (bad)
        op_log(OTELPROF_LOG_WARN, "OTEL_RESOURCE_ATTRIBUTES is malformed; ignoring all of it");
    for (size_t i = 0; i < t.n; i++) {
        if (!bad)
            (void)res_set(t.items[i].key, t.items[i].value, 0);
        free(t.items[i].key);
        free(t.items[i].value);
    }
    free(t.items);
}

/* OTELPROF_FORMATS: comma list of thread_ctx, process_ctx, custom_labels, all, none. */
static unsigned env_formats(void)
{
    const char *v = getenv("OTELPROF_FORMATS");
    if (!v)
        return OTELPROF_FORMAT_ALL;
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {{"thread_ctx", OTELPROF_FORMAT_THREAD_CTX},
                 {"process_ctx", OTELPROF_FORMAT_PROCESS_CTX},
                 {"custom_labels", OTELPROF_FORMAT_CUSTOM_LABELS},
                 {"all", OTELPROF_FORMAT_ALL},
                 {"none", 0}};
    unsigned fm = 0;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n) {
            size_t i;
            for (i = 0; i < sizeof names / sizeof names[0]; i++)
                if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
                    break;
            if (i == sizeof names / sizeof names[0]) {
                op_log(OTELPROF_LOG_WARN,
                       "OTELPROF_FORMATS=%s: unknown format '%.*s'; using all formats", v, (int)n,
                       p);
                return OTELPROF_FORMAT_ALL;
            }
            fm |= names[i].bits;
        }
        p += n;
        if (*p)
            p++;
    }
    return fm;
}

static const struct op_label *label_name(const char *api, const char *env,
                                         const struct op_label *def)
{
    const char *v = api ? api : getenv(env);
    if (!v)
        return def;
    size_t n = strlen(v);
    if (n == 0 || n > CL_KEY_MAX || !op_utf8_valid((const unsigned char *)v, n)) {
        op_log(OTELPROF_LOG_WARN, "custom-labels key '%s' must be 1..25 bytes of UTF-8; using %s",
               v, def->name);
        return def;
    }
    /* Immortal: label sets of live threads may point at it forever. */
    struct op_label *l = malloc(sizeof *l + n + 1);
    if (!l)
        return def;
    char *name = (char *)(l + 1);
    memcpy(name, v, n + 1);
    l->len = n;
    l->name = name;
    // cppcheck-suppress memleak
    return l;
}

/* ---------- public API ---------- */

otelprof_status otelprof_init(const otelprof_init_opts *opts)
{
    static const otelprof_init_opts zero;
    otelprof_init_opts o = zero;
    otelprof_status orc = op_opts_copy(&o, sizeof o, opts);
    if (orc != OTELPROF_OK)
        return orc;
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&lock);
    if (atomic_load(&op_g_inited)) {
        pthread_mutex_unlock(&lock);
        return OTELPROF_OK;
    }
    unsigned fm = o.formats == 0                       ? env_formats()
                  : (o.formats & OTELPROF_FORMAT_NONE) ? 0
                                                       : (o.formats & OTELPROF_FORMAT_ALL);
    atomic_store(&op_g_trace_label, label_name(o.trace_id_label, "OTELPROF_CUSTOM_LABELS_TRACE_KEY",
                                               &default_trace_label));
    atomic_store(&op_g_span_label, label_name(o.span_id_label, "OTELPROF_CUSTOM_LABELS_SPAN_KEY",
                                              &default_span_label));

    env_resource_attributes();
    const char *svc = o.service_name ? o.service_name : getenv("OTEL_SERVICE_NAME");
    char unknown[300];
    if (!svc || !*svc) {
        svc = res_get("service.name");
        if (!svc) {
            snprintf(unknown, sizeof unknown, "unknown_service:%s", program_invocation_short_name);
            svc = unknown;
        }
    }
    bool oom = res_set("service.name", svc, o.service_name != NULL) != 0;
    oom |= res_set("telemetry.sdk.name", "otelprof", 0) != 0;
    oom |= res_set("telemetry.sdk.language", "c", 0) != 0;
    oom |= res_set("telemetry.sdk.version", otelprof_version(), 0) != 0;
    if (oom) {
        pthread_mutex_unlock(&lock);
        return OTELPROF_E_NOMEM;
    }
    atomic_store(&op_g_formats, fm);
    atomic_fetch_add(&op_g_gen, 1);
    otelprof_status rc = republish();
    if (rc != OTELPROF_OK) {
        /* Thread records still work without the process context; say why it is missing. */
        op_log(OTELPROF_LOG_ERROR, "process context not published: %s", otelprof_strerror(rc));
    }
    atomic_store(&op_g_inited, true);
    pthread_mutex_unlock(&lock);
    return OTELPROF_OK;
}

void otelprof_shutdown(void)
{
    pthread_mutex_lock(&lock);
    atomic_store(&op_g_formats, 0);
    atomic_fetch_add(&op_g_gen, 1);
    atomic_store(&op_g_inited, false);
    map_drop();
    pthread_mutex_unlock(&lock);
    op_thread_reset_publication();
}

unsigned otelprof_formats(void)
{
    return atomic_load_explicit(&op_g_formats, memory_order_relaxed);
}

otelprof_status otelprof_resource_set(const char *key, const char *value)
{
    if (!key || !*key || !value || !op_utf8_valid((const unsigned char *)key, strlen(key)) ||
        !op_utf8_valid((const unsigned char *)value, strlen(value)))
        return OTELPROF_E_INVAL;
    pthread_mutex_lock(&lock);
    otelprof_status rc = res_set(key, value, 1) == 0 ? OTELPROF_OK : OTELPROF_E_NOMEM;
    if (rc == OTELPROF_OK && atomic_load(&op_g_inited))
        rc = republish();
    pthread_mutex_unlock(&lock);
    return rc;
}

otelprof_status otelprof_key_register(const char *name, uint32_t *index_out)
{
    if (!name || !index_out)
        return OTELPROF_E_INVAL;
    size_t len = strlen(name);
    if (len == 0 || len > OTELPROF_VALUE_MAX)
        return OTELPROF_E_INVAL;
    if (!op_utf8_valid((const unsigned char *)name, len))
        return OTELPROF_E_UTF8;
    if (!atomic_load(&op_g_inited)) {
        otelprof_status rc = otelprof_init(NULL);
        if (rc != OTELPROF_OK)
            return rc;
    }
    pthread_mutex_lock(&lock);
    unsigned n = atomic_load(&op_g_key_count);
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(atomic_load(&op_g_key_names[i]), name) == 0) {
            pthread_mutex_unlock(&lock);
            *index_out = i;
            return OTELPROF_OK;
        }
    }
    if (n >= OTELPROF_MAX_KEYS) {
        pthread_mutex_unlock(&lock);
        return OTELPROF_E_KEY_LIMIT;
    }
    char *copy = strdup(name); /* immortal: records and label sets point at it */
    if (!copy) {
        pthread_mutex_unlock(&lock);
        return OTELPROF_E_NOMEM;
    }
    op_g_key_name_len[n] = (uint8_t)len;
    atomic_store(&op_g_key_names[n], copy);
    atomic_store(&op_g_key_count, n + 1);
    otelprof_status rc = republish();
    if (rc == OTELPROF_E_TOO_LARGE) {
        /* The key map would push the payload over the readers' 64 KiB limit. */
        /* The name stays allocated: a racing attach may already point at it. */
        atomic_store(&op_g_key_count, n);
        pthread_mutex_unlock(&lock);
        return OTELPROF_E_TOO_LARGE;
    }
    if (rc != OTELPROF_OK)
        op_log(OTELPROF_LOG_ERROR, "process context not republished: %s", otelprof_strerror(rc));
    pthread_mutex_unlock(&lock);
    if (len > CL_KEY_MAX)
        op_log(OTELPROF_LOG_INFO,
               "key '%s' is longer than 25 bytes: custom-labels readers will not see it", name);
    *index_out = n;
    return OTELPROF_OK;
}

const char *otelprof_key_name(uint32_t index)
{
    if (index >= atomic_load(&op_g_key_count))
        return NULL;
    return atomic_load(&op_g_key_names[index]);
}
