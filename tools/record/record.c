/* `otelprof record`: sample CPU stacks with eBPF and attribute each sample to the trace
 * that was running on the thread, read from the thread's OTEP 4947 record (or its
 * custom-labels v1 set) by record.bpf.c at the moment of the sample.
 *
 * User space finds the target processes and works out where their TLS variable lives
 * (tools/reader, the same code as `otelprof inspect`), hands that to the BPF program in
 * the `procs` map, opens one cpu-clock perf event per CPU, and turns the ring buffer's
 * samples into a profile: pprof, folded stacks, an SVG flame graph, JSON lines.
 */
#define _GNU_SOURCE
#include <linux/types.h>

#include "cli.h"
#include "record.h"
#include "record_abi.h"
#include "record_cli.h"

#include "record.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STACK_DEPTH    127 /* record.bpf.c's stack map value: 127 u64 */
#define STACK_IDS      16384
#define SCAN_INTERVAL  2.0 /* seconds between /proc scans */
#define REFRESH_LIMIT  1.0 /* at most one maps / key map re-read per process per second */
#define MAX_SPANS_SEEN 64

/* ------------------------------------------------------------------ state ---- */

struct target {
    pid_t pid;
    uint64_t starttime; /* /proc/PID/stat field 22: tells a reused pid apart */
    char comm[64];
    bool explicit_pid, in_map, exited;
    struct rec_proc info;
    bool pending; /* has a symbol but its TLS location is not known yet */
    char how[200];
    char *keys[RD_PC_KEYS_MAX];
    size_t n_keys;
    double keys_at;
    struct rc_map *maps;
    size_t n_maps;
    double maps_at;
    uint64_t samples, with_trace;
};

struct trace_stat {
    uint8_t id[16];
    uint64_t samples;
    pid_t pid;
    uint8_t spans[MAX_SPANS_SEEN][8];
    unsigned n_spans;
    bool spans_overflow;
};

struct cached_stack {
    uint32_t n;
    uint64_t ip[STACK_DEPTH];
};

struct opts {
    pid_t *pids;
    size_t n_pids;
    double duration;
    unsigned freq;
    const char *output, *folded, *flamegraph, *samples_path;
    bool has_trace, has_span;
    uint8_t trace[16], span[8];
    unsigned top;
    bool quiet, verbose;
};

struct rec {
    struct opts o;
    struct record_bpf *skel;
    struct target **targets;
    size_t n_targets;
    struct {
        pid_t pid;
        uint64_t starttime;
    } * rejected;
    size_t n_rejected;
    unsigned scans;
    struct rc_symbolizer sym;
    struct rc_profile prof;
    struct cached_stack *stack_cache[STACK_IDS];
    struct rc_intern trace_ids;
    struct trace_stat *traces;
    size_t traces_cap;
    FILE *samples_f;
    int64_t boot_to_real; /* CLOCK_REALTIME - CLOCK_BOOTTIME, ns */
    uint64_t n_events, n_matched, n_with_trace, n_invalid, n_fault, n_no_tls, n_lost_stack;
    uint64_t n_no_ids, n_cut_stacks;
    uint32_t k_trace, k_span, k_pid, k_tid, k_thread;
    struct rc_sample sample; /* scratch: too big for the stack of the callback */
    char libbpf_log[4096];
    size_t libbpf_log_len;
};

static struct rec *g_rec; /* for the libbpf print callback */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_REALTIME - CLOCK_BOOTTIME from the tightest of a few bracketing reads: the BPF
 * timestamps are boot time, the spans an application exports are wall-clock time. */
static int64_t boot_to_realtime(void)
{
    int64_t best_gap = INT64_MAX, off = 0;
    for (int i = 0; i < 16; i++) {
        int64_t r1 = clock_ns(CLOCK_REALTIME), b = clock_ns(CLOCK_BOOTTIME);
        int64_t r2 = clock_ns(CLOCK_REALTIME);
        if (r2 - r1 < best_gap) {
            best_gap = r2 - r1;
            off = r1 + (r2 - r1) / 2 - b;
        }
    }
    return off;
}

/* ------------------------------------------------------------- processes ---- */

static bool proc_stat(pid_t pid, uint64_t *starttime, char *comm, size_t comm_len)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm is in parentheses and may hold spaces and ')': the last ')' ends it */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return false;
    if (comm) {
        size_t l = (size_t)(close - open - 1);
        if (l >= comm_len)
            l = comm_len - 1;
        memcpy(comm, open + 1, l);
        comm[l] = '\0';
    }
    /* field 3 (state) follows ") "; starttime is field 22 */
    char *p = close + 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return false;
    *starttime = strtoull(p, NULL, 10);
    return true;
}

static struct target *find_target(struct rec *r, pid_t pid)
{
    for (size_t i = 0; i < r->n_targets; i++)
        if (r->targets[i]->pid == pid && !r->targets[i]->exited)
            return r->targets[i];
    return NULL;
}

/* For samples: the live target, else the latest exited one (samples still in the ring
 * buffer when the process went away keep their names). */
static struct target *find_target_any(struct rec *r, pid_t pid)
{
    struct target *t = find_target(r, pid);
    for (size_t i = r->n_targets; !t && i-- > 0;)
        if (r->targets[i]->pid == pid)
            t = r->targets[i];
    return t;
}

static void keys_free(struct target *t)
{
    for (size_t i = 0; i < t->n_keys; i++)
        free(t->keys[i]);
    t->n_keys = 0;
}

/* The process context's attribute key map: names of the records' key indexes. */
static void load_keys(struct target *t, const struct rd_maps *maps)
{
    struct rd_procctx pc;
    memset(&pc, 0, sizeof pc);
    t->keys_at = now_mono();
    if (rd_procctx_read(t->pid, maps, &pc) != 0 || !pc.found || !pc.decoded || !pc.has_key_map) {
        rd_procctx_free(&pc);
        return;
    }
    keys_free(t);
    for (size_t i = 0; i < pc.n_keys; i++) {
        char *k = strndup((const char *)pc.keys[i], pc.key_len[i]);
        if (!k)
            break;
        t->keys[t->n_keys++] = k;
    }
    rd_procctx_free(&pc);
}

static void reload_keys(struct target *t)
{
    struct rd_maps maps;
    if (rd_maps_read(t->pid, &maps) != 0)
        return;
    load_keys(t, &maps);
    rd_maps_free(&maps);
}

/* Where this process's context lives (the process-wide half of the TLS resolution). */
static int resolve(struct target *t, bool *exposes)
{
    struct rd_maps maps;
    struct rd_modules mods;
    char err[RD_ERRLEN];
    *exposes = false;
    int rc = rd_maps_read(t->pid, &maps);
    if (rc != 0)
        return rc;
    if ((rc = rd_modules_find(t->pid, &maps, &mods, err, sizeof err)) != 0) {
        rd_maps_free(&maps);
        return rc;
    }
    memset(&t->info, 0, sizeof t->info);
    t->pending = false;
    const struct rd_tls_loc *loc = NULL;
    const char *what = "";
    if (mods.tc_index >= 0) {
        t->info.format = REC_FMT_OTEP;
        loc = &mods.v[mods.tc_index].tc;
        what = "OTEP 4947";
    } else if (mods.cl_index >= 0) {
        t->info.format = REC_FMT_CL;
        loc = &mods.v[mods.cl_index].cl;
        what = "custom-labels v1";
    }
    if (!loc) {
        snprintf(t->how, sizeof t->how, "no thread context symbol");
    } else if (loc->kind == RD_TLS_STATIC) {
        *exposes = true;
        t->info.tls_kind = REC_TLS_STATIC;
        t->info.tp_offset = loc->var_offset;
        snprintf(t->how, sizeof t->how, "%s, %s, tp%+" PRId64, what, loc->how, loc->var_offset);
    } else if (loc->kind == RD_TLS_DTV) {
        *exposes = true;
        t->info.tls_kind = REC_TLS_DTV;
        t->info.module_id = loc->module_id;
        t->info.dtv_offset = loc->dtv_offset;
        t->info.gen_count = loc->gen_count;
        snprintf(t->how, sizeof t->how, "%s, %s, module %" PRIu64 " offset %" PRIu64, what,
                 loc->how, loc->module_id, loc->dtv_offset);
    } else {
        /* e.g. a dlopen'd module whose descriptor is not resolved yet: try again later */
        *exposes = true;
        t->pending = true;
        snprintf(t->how, sizeof t->how, "%s, location unknown yet: %s", what, loc->why);
    }
    if (*exposes)
        load_keys(t, &maps);
    rd_modules_free(&mods);
    rd_maps_free(&maps);
    return 0;
}

static int map_update(struct rec *r, struct target *t)
{
    __u32 key = (__u32)t->pid;
    int rc = bpf_map__update_elem(r->skel->maps.procs, &key, sizeof key, &t->info, sizeof t->info,
                                  BPF_ANY);
    if (rc == 0)
        t->in_map = true;
    return rc;
}

static void map_remove(struct rec *r, struct target *t)
{
    __u32 key = (__u32)t->pid;
    if (t->in_map)
        (void)bpf_map__delete_elem(r->skel->maps.procs, &key, sizeof key, 0);
    t->in_map = false;
}

/* Add a process: explicit ones are sampled even without a context. 1 added, 0 not a
 * target, -errno. */
static int add_target(struct rec *r, pid_t pid, bool explicit_pid, uint64_t starttime,
                      const char *comm)
{
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->pid = pid;
    t->explicit_pid = explicit_pid;
    t->starttime = starttime;
    snprintf(t->comm, sizeof t->comm, "%s", comm);
    bool exposes;
    int rc = resolve(t, &exposes);
    if (rc != 0 || (!exposes && !explicit_pid)) {
        free(t);
        return rc;
    }
    /* mappings now, while the process is alive: it may exit before its samples are read */
    if (rc_maps_load(&r->sym, pid, &t->maps, &t->n_maps) == 0)
        t->maps_at = now_mono();
    struct target **nv = realloc(r->targets, (r->n_targets + 1) * sizeof *nv);
    if (!nv) {
        rc_maps_free(t->maps, t->n_maps);
        keys_free(t);
        free(t);
        return -ENOMEM;
    }
    r->targets = nv;
    r->targets[r->n_targets++] = t;
    if ((rc = map_update(r, t)) != 0)
        return rc;
    if (r->o.verbose || (!r->o.quiet && explicit_pid))
        fprintf(stderr, "otelprof record: pid %d (%s): %s\n", (int)pid, t->comm, t->how);
    else if (!r->o.quiet)
        fprintf(stderr, "otelprof record: found pid %d (%s): %s\n", (int)pid, t->comm, t->how);
    return 1;
}

static bool is_rejected(struct rec *r, pid_t pid, uint64_t starttime)
{
    for (size_t i = 0; i < r->n_rejected; i++)
        if (r->rejected[i].pid == pid && r->rejected[i].starttime == starttime)
            return true;
    return false;
}

/* All processes that expose a thread context; every 5th scan looks again at the ones
 * that did not (a library may have been dlopen'd since). */
static void scan_all(struct rec *r)
{
    bool recheck = r->scans++ % 5 == 4;
    if (recheck)
        r->n_rejected = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    pid_t self = getpid();
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid == self || find_target(r, pid))
            continue;
        uint64_t st;
        char comm[64];
        if (!proc_stat(pid, &st, comm, sizeof comm) || is_rejected(r, pid, st))
            continue;
        int rc = add_target(r, pid, false, st, comm);
        if (rc != 1) { /* not a target, or unreadable: until the next recheck */
            void *nv = realloc(r->rejected, (r->n_rejected + 1) * sizeof *r->rejected);
            if (nv) {
                r->rejected = nv;
                r->rejected[r->n_rejected].pid = pid;
                r->rejected[r->n_rejected++].starttime = st;
            }
        }
    }
    closedir(d);
}

/* Exited processes leave the map; pending ones are resolved again. */
static void refresh_targets(struct rec *r)
{
    for (size_t i = 0; i < r->n_targets; i++) {
        struct target *t = r->targets[i];
        if (t->exited)
            continue;
        uint64_t st;
        if (!proc_stat(t->pid, &st, NULL, 0) || st != t->starttime) {
            map_remove(r, t);
            t->exited = true;
            continue;
        }
        if (t->pending) {
            bool exposes;
            if (resolve(t, &exposes) == 0 && !t->pending) {
                (void)map_update(r, t);
                if (!r->o.quiet)
                    fprintf(stderr, "otelprof record: pid %d (%s): %s\n", (int)t->pid, t->comm,
                            t->how);
            }
        }
    }
}

static bool all_explicit_gone(const struct rec *r)
{
    if (!r->o.n_pids)
        return false;
    for (size_t i = 0; i < r->n_targets; i++)
        if (!r->targets[i]->exited)
            return false;
    return true;
}

/* --------------------------------------------------------------- samples ---- */

static const struct cached_stack *get_stack(struct rec *r, int32_t id)
{
    if (id < 0 || id >= STACK_IDS)
        return NULL;
    uint64_t ips[STACK_DEPTH];
    __u32 key = (__u32)id;
    struct cached_stack **slot = &r->stack_cache[id];
    /* Read and delete, so the map holds only stacks not yet seen here and ids stay
     * available; a later sample that got the same id before the delete has the same
     * stack (an id is a hash bucket, and a different stack would have been refused), and
     * is served from the cache. */
    if (bpf_map__lookup_elem(r->skel->maps.stacks, &key, sizeof key, ips, sizeof ips, 0) == 0) {
        (void)bpf_map__delete_elem(r->skel->maps.stacks, &key, sizeof key, 0);
        if (!*slot && !(*slot = malloc(sizeof **slot)))
            return NULL;
        uint32_t n = 0;
        while (n < STACK_DEPTH && ips[n])
            n++;
        (*slot)->n = n;
        memcpy((*slot)->ip, ips, n * sizeof ips[0]);
    }
    return *slot;
}

static struct trace_stat *trace_stat(struct rec *r, const uint8_t id[16])
{
    bool added;
    uint32_t i = rc_intern_get(&r->trace_ids, id, 16, &added);
    if (i == UINT32_MAX)
        return NULL;
    if (added) {
        if (i >= r->traces_cap) {
            size_t nc = r->traces_cap ? r->traces_cap * 2 : 256;
            struct trace_stat *nv = realloc(r->traces, nc * sizeof *nv);
            if (!nv)
                return NULL;
            r->traces = nv;
            r->traces_cap = nc;
        }
        memset(&r->traces[i], 0, sizeof r->traces[i]);
        memcpy(r->traces[i].id, id, 16);
    }
    return &r->traces[i];
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool parse_hex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

static void add_label_str(struct rec *r, struct rc_sample *s, const char *key, size_t klen,
                          const char *val, size_t vlen)
{
    if (s->n_labels >= RC_MAX_LABELS)
        return;
    /* a repeated key: the last one wins (as OTEP 4947 readers do) */
    uint32_t k = rc_str(&r->prof, key, klen);
    for (size_t i = 0; i < s->n_labels; i++)
        if (s->labels[i].key == k) {
            s->labels[i].str = rc_str(&r->prof, val, vlen);
            return;
        }
    s->labels[s->n_labels++] = (struct rc_label){k, rc_str(&r->prof, val, vlen), 0};
}

static const char *key_name(struct target *t, unsigned idx, char *buf, size_t len)
{
    if (t && idx >= t->n_keys && !t->exited && now_mono() - t->keys_at >= REFRESH_LIMIT)
        reload_keys(t); /* a key registered after we last looked */
    if (t && idx < t->n_keys)
        return t->keys[idx];
    snprintf(buf, len, "attr.%u", idx);
    return buf;
}

/* The trace context of the sample, as labels. */
static void decode_context(struct rec *r, struct target *t, const struct rec_event *e,
                           struct rc_sample *s, uint8_t span[8], bool *has_span)
{
    *has_span = false;
    if (e->state == REC_CTX_INVALID)
        r->n_invalid++;
    else if (e->state == REC_CTX_FAULT)
        r->n_fault++;
    else if (e->state == REC_CTX_NO_TLS)
        r->n_no_tls++;
    if (e->state != REC_CTX_OK && e->state != REC_CTX_TRUNCATED)
        return;
    char kb[32];
    if (e->format == REC_FMT_OTEP) {
        const uint8_t *tid = e->hdr, *sid = e->hdr + 16;
        if (!all_zero(tid, 16) && !all_zero(sid, 8)) {
            s->has_trace = true;
            memcpy(s->trace_id, tid, 16);
            memcpy(span, sid, 8);
            *has_span = true;
        } else {
            r->n_no_ids++;
        }
        /* [u8 key][u8 len][bytes]; a truncated entry ends the list */
        size_t pos = 0, n = e->attrs_len < REC_ATTRS_MAX ? e->attrs_len : REC_ATTRS_MAX;
        while (n - pos >= 2 && n - pos - 2 >= e->u.attrs[pos + 1]) {
            unsigned key = e->u.attrs[pos];
            size_t len = e->u.attrs[pos + 1];
            const char *name = key_name(t, key, kb, sizeof kb);
            if (rd_utf8_valid(e->u.attrs + pos + 2, len))
                add_label_str(r, s, name, strlen(name), (const char *)e->u.attrs + pos + 2, len);
            pos += 2 + len;
        }
    } else if (e->format == REC_FMT_CL) {
        bool have_t = false, have_s = false;
        uint8_t tid[16];
        for (unsigned i = 0; i < e->attrs_len && i < REC_CL_LABELS; i++) {
            const struct rec_cl_label *l = &e->u.labels[i];
            if (!l->has_value || l->key_len > REC_CL_KEY_MAX || l->value_len > REC_CL_VALUE_MAX)
                continue;
            char v[REC_CL_VALUE_MAX + 1];
            memcpy(v, l->value, l->value_len);
            v[l->value_len] = '\0';
            if (l->key_len == 12 && memcmp(l->key, "otel_traceid", 12) == 0)
                have_t = parse_hex(v, tid, 16);
            else if (l->key_len == 11 && memcmp(l->key, "otel_spanid", 11) == 0)
                have_s = parse_hex(v, span, 8);
            else if (rd_utf8_valid((const uint8_t *)l->key, l->key_len) &&
                     rd_utf8_valid((const uint8_t *)v, l->value_len))
                add_label_str(r, s, l->key, l->key_len, v, l->value_len);
        }
        if (have_t && !all_zero(tid, 16)) {
            s->has_trace = true;
            memcpy(s->trace_id, tid, 16);
            *has_span = have_s;
        } else {
            r->n_no_ids++;
        }
    }
}

/* false when no executable mapping holds ip */
static bool frame_user(struct rec *r, struct target *t, uint64_t ip, bool leaf, struct rc_frame *f)
{
    /* a return address points after the call, possibly past the caller's last byte */
    uint64_t a = leaf ? ip : ip - 1;
    if (t && rc_sym_user(t->maps, t->n_maps, a, f))
        return true;
    if (t && !t->exited && now_mono() - t->maps_at >= REFRESH_LIMIT) {
        /* new code mapped since (dlopen): read the mappings again */
        struct rc_map *m;
        size_t n;
        t->maps_at = now_mono();
        if (rc_maps_load(&r->sym, t->pid, &m, &n) == 0) {
            rc_maps_free(t->maps, t->n_maps);
            t->maps = m;
            t->n_maps = n;
            if (rc_sym_user(t->maps, t->n_maps, a, f))
                return true;
        }
    }
    memset(f, 0, sizeof *f);
    f->file = "[unknown]";
    f->base = "[unknown]";
    f->addr = a;
    f->func_off = a;
    return false;
}

static void json_frames(struct rd_buf *b, const struct rc_sample *s, bool kernel)
{
    bool first = true;
    rd_buf_puts(b, "[");
    for (size_t i = 0; i < s->n_frames; i++) {
        const struct rc_frame *f = &s->frames[i];
        if (f->kernel != kernel)
            continue;
        if (!first)
            rd_buf_puts(b, ",");
        first = false;
        if (f->func) {
            rd_buf_json_str(b, (const uint8_t *)f->func, strlen(f->func));
        } else {
            char tmp[512];
            int n =
                snprintf(tmp, sizeof tmp, "%s+0x%" PRIx64, f->base ? f->base : "?", f->func_off);
            rd_buf_json_str(b, (const uint8_t *)tmp, (size_t)n < sizeof tmp ? (size_t)n : 0);
        }
    }
    rd_buf_puts(b, "]");
}

static void write_sample_json(struct rec *r, const struct rec_event *e, const struct rc_sample *s,
                              const uint8_t span[8], bool has_span)
{
    static const char *const states[] = {"none", "ok", "invalid", "no_tls", "fault", "truncated"};
    struct rd_buf b = {0};
    char hex[33];
    rd_buf_printf(&b,
                  "{\"time_unix_nano\":%" PRId64 ",\"boot_ns\":%" PRIu64
                  ",\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"thread\":",
                  (int64_t)e->boot_ns + r->boot_to_real, (uint64_t)e->boot_ns, e->pid, e->tid,
                  e->cpu);
    rd_buf_json_str(&b, (const uint8_t *)e->comm, strnlen(e->comm, sizeof e->comm));
    rd_buf_printf(&b, ",\"format\":\"%s\",\"context\":\"%s\"",
                  e->format == REC_FMT_OTEP ? "otep4947"
                  : e->format == REC_FMT_CL ? "custom_labels"
                                            : "none",
                  e->state < 6 ? states[e->state] : "?");
    if (s->has_trace) {
        rd_hex(hex, s->trace_id, 16);
        rd_buf_printf(&b, ",\"trace_id\":\"%s\"", hex);
    }
    if (has_span) {
        rd_hex(hex, span, 8);
        rd_buf_printf(&b, ",\"span_id\":\"%s\"", hex);
    }
    rd_buf_puts(&b, ",\"labels\":{");
    bool first = true;
    for (size_t i = 0; i < s->n_labels; i++) {
        const struct rc_label *l = &s->labels[i];
        if (!l->str || l->key == r->k_trace || l->key == r->k_span || l->key == r->k_thread)
            continue;
        size_t kl, vl;
        const char *k = rc_str_at(&r->prof, l->key, &kl), *v = rc_str_at(&r->prof, l->str, &vl);
        if (!first)
            rd_buf_puts(&b, ",");
        first = false;
        rd_buf_json_str(&b, (const uint8_t *)k, kl);
        rd_buf_puts(&b, ":");
        rd_buf_json_str(&b, (const uint8_t *)v, vl);
    }
    rd_buf_puts(&b, "},\"frames\":");
    json_frames(&b, s, false);
    rd_buf_puts(&b, ",\"kernel_frames\":");
    json_frames(&b, s, true);
    rd_buf_puts(&b, "}\n");
    if (!b.oom)
        fwrite(b.p, 1, b.len, r->samples_f);
    rd_buf_free(&b);
}

static int on_event(void *ctx, void *data, size_t size)
{
    struct rec *r = ctx;
    if (size < sizeof(struct rec_event))
        return 0;
    const struct rec_event *e = data;
    struct target *t = find_target_any(r, (pid_t)e->pid);
    r->n_events++;
    if (t)
        t->samples++;

    struct rc_sample *s = &r->sample;
    s->n_frames = 0;
    s->n_labels = 0;
    s->has_trace = false;
    s->process = t ? t->comm : "[exited]";
    uint8_t span[8];
    bool has_span;
    decode_context(r, t, e, s, span, &has_span);
    if (s->has_trace) {
        r->n_with_trace++;
        if (t)
            t->with_trace++;
    }
    /* read (and so release) the stack map entries even for samples filtered out */
    const struct cached_stack *ks = get_stack(r, e->kstack);
    const struct cached_stack *us = get_stack(r, e->ustack);
    if ((r->o.has_trace && (!s->has_trace || memcmp(s->trace_id, r->o.trace, 16) != 0)) ||
        (r->o.has_span && (!has_span || memcmp(span, r->o.span, 8) != 0)))
        return 0;
    r->n_matched++;

    /* labels: ids first, then the record's attributes (already added), then the thread */
    struct rc_label attrs[RC_MAX_LABELS];
    size_t n_attrs = s->n_labels;
    memcpy(attrs, s->labels, n_attrs * sizeof attrs[0]);
    s->n_labels = 0;
    char hex[33];
    if (s->has_trace) {
        rd_hex(hex, s->trace_id, 16);
        s->labels[s->n_labels++] = (struct rc_label){r->k_trace, rc_str(&r->prof, hex, 32), 0};
        struct trace_stat *ts = trace_stat(r, s->trace_id);
        if (ts) {
            ts->samples++;
            ts->pid = (pid_t)e->pid;
            if (has_span) {
                unsigned k = 0;
                while (k < ts->n_spans && memcmp(ts->spans[k], span, 8) != 0)
                    k++;
                if (k == ts->n_spans) {
                    if (k < MAX_SPANS_SEEN)
                        memcpy(ts->spans[ts->n_spans++], span, 8);
                    else
                        ts->spans_overflow = true;
                }
            }
        }
    }
    if (has_span) {
        rd_hex(hex, span, 8);
        s->labels[s->n_labels++] = (struct rc_label){r->k_span, rc_str(&r->prof, hex, 16), 0};
    }
    for (size_t i = 0; i < n_attrs && s->n_labels < RC_MAX_LABELS - 3; i++)
        s->labels[s->n_labels++] = attrs[i];
    s->labels[s->n_labels++] = (struct rc_label){r->k_pid, 0, (int64_t)e->pid};
    s->labels[s->n_labels++] = (struct rc_label){r->k_tid, 0, (int64_t)e->tid};
    size_t cl = strnlen(e->comm, sizeof e->comm);
    s->labels[s->n_labels++] = (struct rc_label){r->k_thread, rc_str(&r->prof, e->comm, cl), 0};

    /* frames, leaf first: kernel, then user */
    if ((e->kstack >= 0 && !ks) || (e->ustack >= 0 && !us))
        r->n_lost_stack++;
    for (uint32_t i = 0; ks && i < ks->n && s->n_frames < RC_MAX_FRAMES; i++)
        rc_sym_kernel(&r->sym, i ? ks->ip[i] - 1 : ks->ip[i], &s->frames[s->n_frames++]);
    for (uint32_t i = 0; us && i < us->n && s->n_frames < RC_MAX_FRAMES; i++) {
        bool leaf = i == 0 && e->kstack < 0;
        if (!frame_user(r, t, us->ip[i], leaf, &s->frames[s->n_frames]) && i > 0) {
            /* Frame-pointer unwinding through code built without frame pointers follows
             * whatever rbp holds: past the first address outside any code it is noise. */
            r->n_cut_stacks++;
            break;
        }
        s->n_frames++;
    }
    rc_profile_add(&r->prof, s);
    if (r->samples_f)
        write_sample_json(r, e, s, span, has_span);
    return 0;
}

/* ---------------------------------------------------------------- output ---- */

static int trace_cmp(const void *a, const void *b)
{
    const struct trace_stat *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples > y->samples ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

static void summary(struct rec *r, double secs, unsigned ncpu)
{
    size_t n_ctx = 0, n_alive = 0;
    for (size_t i = 0; i < r->n_targets; i++) {
        if (r->targets[i]->info.format != REC_FMT_NONE)
            n_ctx++;
        if (!r->targets[i]->exited)
            n_alive++;
    }
    double ms = (double)r->prof.period_ns / 1e6;
    printf("otelprof record: %" PRIu64 " samples in %.1f s at %u Hz on %u CPUs (%.1f ms each)\n",
           r->n_events, secs, r->o.freq, ncpu, ms);
    printf("  processes: %zu sampled (%zu exposing a thread context, %zu still running)\n",
           r->n_targets, n_ctx, n_alive);
    double pct = r->n_events ? 100.0 * (double)r->n_with_trace / (double)r->n_events : 0;
    printf("  with a trace context: %" PRIu64 " (%.1f%%), without: %" PRIu64 "\n", r->n_with_trace,
           pct, r->n_events - r->n_with_trace);
    if (r->n_invalid || r->n_fault || r->n_no_tls || r->n_no_ids)
        printf("  records: %" PRIu64 " marked invalid, %" PRIu64 " unreadable, %" PRIu64
               " threads without TLS storage yet, %" PRIu64 " without ids\n",
               r->n_invalid, r->n_fault, r->n_no_tls, r->n_no_ids);
    if (r->o.has_trace || r->o.has_span)
        printf("  matching the filter: %" PRIu64 "\n", r->n_matched);
    __u64 st[REC_STAT_NR] = {0};
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus > 0) {
        __u64 *v = calloc((size_t)ncpus, sizeof *v);
        for (__u32 k = 0; v && k < REC_STAT_NR; k++)
            if (bpf_map__lookup_elem(r->skel->maps.stats, &k, sizeof k, v,
                                     (size_t)ncpus * sizeof *v, 0) == 0)
                for (int c = 0; c < ncpus; c++)
                    st[k] += v[c];
        free(v);
    }
    if (st[REC_STAT_DROPPED] || st[REC_STAT_USTACK_ERR] || st[REC_STAT_KSTACK_ERR] ||
        r->n_lost_stack || r->n_cut_stacks)
        printf("  lost: %" PRIu64 " samples (ring buffer full); stack errors: %" PRIu64
               " user, %" PRIu64 " kernel, %" PRIu64 " unreadable, %" PRIu64
               " user stacks cut where unwinding left the code\n",
               (uint64_t)st[REC_STAT_DROPPED], (uint64_t)st[REC_STAT_USTACK_ERR],
               (uint64_t)st[REC_STAT_KSTACK_ERR], r->n_lost_stack, r->n_cut_stacks);
    size_t nt = r->trace_ids.n;
    if (!nt || !r->o.top)
        return;
    qsort(r->traces, nt, sizeof *r->traces, trace_cmp);
    printf("  CPU time per trace (top %u of %zu):\n", r->o.top < nt ? r->o.top : (unsigned)nt, nt);
    printf("    %-32s %8s %10s %6s %6s  %s\n", "trace_id", "samples", "cpu_ms", "%", "spans",
           "process");
    for (size_t i = 0; i < nt && i < r->o.top; i++) {
        const struct trace_stat *ts = &r->traces[i];
        char hex[33];
        rd_hex(hex, ts->id, 16);
        const struct target *t = NULL;
        for (size_t k = 0; k < r->n_targets; k++)
            if (r->targets[k]->pid == ts->pid)
                t = r->targets[k]; /* the latest with that pid, exited or not */
        printf("    %s %8" PRIu64 " %10.1f %6.1f %5u%s  %s[%d]\n", hex, ts->samples,
               (double)ts->samples * ms,
               r->n_events ? 100.0 * (double)ts->samples / (double)r->n_events : 0.0, ts->n_spans,
               ts->spans_overflow ? "+" : " ", t ? t->comm : "", (int)ts->pid);
    }
}

static int write_outputs(struct rec *r)
{
    char err[512];
    int failed = 0;
    if (r->o.output) {
        if (rc_write_pprof(&r->prof, r->o.output, err, sizeof err) != 0) {
            fprintf(stderr, "otelprof record: writing the pprof profile: %s\n", err);
            failed = 1;
        } else if (!r->o.quiet) {
            printf("  wrote %s (pprof, gzip'ed profile.proto)\n", r->o.output);
        }
    }
    if (r->o.folded) {
        if (rc_write_folded(&r->prof, r->o.folded, err, sizeof err) != 0) {
            fprintf(stderr, "otelprof record: writing folded stacks: %s\n", err);
            failed = 1;
        } else if (!r->o.quiet) {
            printf("  wrote %s (folded stacks)\n", r->o.folded);
        }
    }
    if (r->o.flamegraph) {
        char title[160], sub[200], hex[33];
        if (r->o.has_trace) {
            rd_hex(hex, r->o.trace, 16);
            snprintf(title, sizeof title, "CPU of trace %s", hex);
        } else {
            snprintf(title, sizeof title, "CPU flame graph");
        }
        snprintf(sub, sizeof sub, "otelprof record: %" PRIu64 " samples at %u Hz, %.1f ms each",
                 r->n_matched, r->o.freq, (double)r->prof.period_ns / 1e6);
        if (rc_write_flamegraph(&r->prof, r->o.flamegraph, title, sub, err, sizeof err) != 0) {
            fprintf(stderr, "otelprof record: writing the flame graph: %s\n", err);
            failed = 1;
        } else if (!r->o.quiet) {
            printf("  wrote %s (SVG flame graph)\n", r->o.flamegraph);
        }
    }
    if (r->samples_f) {
        if (fclose(r->samples_f) != 0) {
            fprintf(stderr, "otelprof record: writing %s failed\n", r->o.samples_path);
            failed = 1;
        } else if (!r->o.quiet) {
            printf("  wrote %s (one JSON line per sample)\n", r->o.samples_path);
        }
        r->samples_f = NULL;
    }
    return failed;
}

/* ------------------------------------------------------------ BPF set-up ---- */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    struct rec *r = g_rec;
    if (r && r->o.verbose)
        return vfprintf(stderr, fmt, ap);
    if (!r || level == LIBBPF_DEBUG)
        return 0;
    /* keep the tail of the warnings: shown only if loading fails */
    char line[1024];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0)
        return 0;
    size_t l = strlen(line);
    if (l >= sizeof r->libbpf_log)
        return n;
    if (r->libbpf_log_len + l >= sizeof r->libbpf_log) {
        r->libbpf_log_len = 0;
    }
    memcpy(r->libbpf_log + r->libbpf_log_len, line, l + 1);
    r->libbpf_log_len += l;
    return n;
}

/* Root, or the capabilities that loading and attaching need. */
static bool privileged(void)
{
    if (geteuid() == 0)
        return true;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return false;
    char line[256];
    unsigned long long eff = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    fclose(f);
    const unsigned long long sys_admin = 1ull << 21, perfmon = 1ull << 38, bpf = 1ull << 39;
    return (eff & sys_admin) || ((eff & perfmon) && (eff & bpf));
}

static unsigned max_sample_rate(void)
{
    FILE *f = fopen("/proc/sys/kernel/perf_event_max_sample_rate", "re");
    unsigned v = 0;
    if (f) {
        if (fscanf(f, "%u", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

struct perf_links {
    struct bpf_link **links;
    int *fds;
    unsigned n;
};

static int open_perf_events(struct rec *r, struct perf_links *pl, unsigned *ncpu)
{
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) {
        fprintf(stderr, "otelprof record: cannot count the CPUs: %s\n", strerror(-ncpus));
        return -1;
    }
    pl->links = calloc((size_t)ncpus, sizeof *pl->links);
    pl->fds = calloc((size_t)ncpus, sizeof *pl->fds);
    if (!pl->links || !pl->fds)
        return -1;
    *ncpu = 0;
    for (int cpu = 0; cpu < ncpus; cpu++) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_CPU_CLOCK; /* a timer: works without PMU hardware */
        a.freq = 1;
        a.sample_freq = r->o.freq;
        int fd = (int)syscall(__NR_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            if (errno == ENODEV)
                continue; /* offline CPU */
            fprintf(stderr, "otelprof record: perf_event_open (cpu-clock, cpu %d): %s%s\n", cpu,
                    strerror(errno),
                    errno == EACCES || errno == EPERM
                        ? " (needs root or CAP_PERFMON; see /proc/sys/kernel/perf_event_paranoid)"
                        : "");
            return -1;
        }
        pl->fds[pl->n] = fd;
        struct bpf_link *l = bpf_program__attach_perf_event(r->skel->progs.on_sample, fd);
        if (!l) {
            int e = errno;
            close(fd);
            fprintf(stderr, "otelprof record: attaching the eBPF program to cpu %d: %s\n", cpu,
                    strerror(e));
            return -1;
        }
        pl->links[pl->n++] = l;
        (*ncpu)++;
    }
    return 0;
}

static void close_perf_events(struct perf_links *pl)
{
    for (unsigned i = 0; i < pl->n; i++) {
        bpf_link__destroy(pl->links[i]);
        close(pl->fds[i]);
    }
    free(pl->links);
    free(pl->fds);
    memset(pl, 0, sizeof *pl);
}

/* ------------------------------------------------------------- arguments ---- */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: otelprof record [options]\n"
           "\n"
           "Sample CPU stacks of processes with eBPF (cpu-clock perf events on every CPU) and\n"
           "attribute each sample to the trace running on its thread, read from the OTel\n"
           "thread context (OTEP 4947) or custom-labels v1. Needs root.\n"
           "\n"
           "  -p, --pid PID          sample this process (repeatable); default: every process\n"
           "                         exposing a thread context (/proc scanned every 2 s)\n"
           "  -d, --duration SECS    stop after SECS seconds (default: at Ctrl-C)\n"
           "  -F, --frequency HZ     samples per second per CPU (default 99)\n"
           "  -o, --output FILE      pprof profile (gzip'ed profile.proto), with labels trace_id,\n"
           "                         span_id, the record's attributes, pid, tid, thread\n"
           "  -f, --folded FILE      folded stacks: trace:<id>;process;frames... count\n"
           "  -g, --flamegraph FILE  SVG flame graph (of the samples kept by the filters)\n"
           "  -s, --samples FILE     one JSON line per sample (time, thread, ids, frames)\n"
           "  -t, --trace-id HEX     keep only samples of this trace (32 hex digits)\n"
           "  -S, --span-id HEX      keep only samples of this span (16 hex digits)\n"
           "  -n, --top N            traces listed in the summary (default 10)\n"
           "  -q, --quiet            no progress, only the summary\n"
           "  -v, --verbose          libbpf's messages and per-process details\n"
           "  -h, --help\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"pid", required_argument, 0, 'p'},
        {"duration", required_argument, 0, 'd'},
        {"frequency", required_argument, 0, 'F'},
        {"output", required_argument, 0, 'o'},
        {"folded", required_argument, 0, 'f'},
        {"flamegraph", required_argument, 0, 'g'},
        {"samples", required_argument, 0, 's'},
        {"trace-id", required_argument, 0, 't'},
        {"span-id", required_argument, 0, 'S'},
        {"top", required_argument, 0, 'n'},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->freq = 99;
    o->top = 10;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "p:d:F:o:f:g:s:t:S:n:qvh", lo, NULL)) != -1) {
        switch (c) {
        case 'p': {
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > INT32_MAX) {
                fprintf(stderr, "otelprof record: bad pid '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            pid_t *nv = realloc(o->pids, (o->n_pids + 1) * sizeof *nv);
            if (!nv)
                return 1;
            o->pids = nv;
            o->pids[o->n_pids++] = (pid_t)v;
            break;
        }
        case 'd':
            o->duration = strtod(optarg, &end);
            if (*end || !(o->duration > 0) || o->duration > 1e7) {
                fprintf(stderr, "otelprof record: bad duration '%s' (seconds > 0)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'F': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, "otelprof record: bad frequency '%s' (1..100000 Hz)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o->freq = (unsigned)v;
            break;
        }
        case 'o':
            o->output = optarg;
            break;
        case 'f':
            o->folded = optarg;
            break;
        case 'g':
            o->flamegraph = optarg;
            break;
        case 's':
            o->samples_path = optarg;
            break;
        case 't':
            if (!parse_hex(optarg, o->trace, 16) || all_zero(o->trace, 16)) {
                fprintf(stderr, "otelprof record: bad trace id '%s' (32 hex digits, not all 0)\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o->has_trace = true;
            break;
        case 'S':
            if (!parse_hex(optarg, o->span, 8) || all_zero(o->span, 8)) {
                fprintf(stderr, "otelprof record: bad span id '%s' (16 hex digits, not all 0)\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o->has_span = true;
            break;
        case 'n': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 100000) {
                fprintf(stderr, "otelprof record: bad --top '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o->top = (unsigned)v;
            break;
        }
        case 'q':
            o->quiet = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            fprintf(stderr, "otelprof record: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "otelprof record: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* ------------------------------------------------------------------ main ---- */

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n_targets; i++) {
        rc_maps_free(r->targets[i]->maps, r->targets[i]->n_maps);
        keys_free(r->targets[i]);
        free(r->targets[i]);
    }
    free(r->targets);
    free(r->rejected);
    for (size_t i = 0; i < STACK_IDS; i++)
        free(r->stack_cache[i]);
    rc_intern_free(&r->trace_ids);
    free(r->traces);
    rc_profile_free(&r->prof);
    rc_symbolizer_free(&r->sym);
    if (r->samples_f)
        fclose(r->samples_f);
    if (r->skel)
        record_bpf__destroy(r->skel);
    free(r->o.pids);
    free(r);
}

int cli_record(int argc, char **argv)
{
    struct rec *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "otelprof record: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, &r->o);
    if (rc != 0) {
        free(r->o.pids);
        free(r);
        return rc < 0 ? 0 : rc;
    }
    int ret = 1;
    struct perf_links pl = {0};
    struct ring_buffer *rb = NULL;
    unsigned ncpu = 0;
    g_rec = r;
    libbpf_set_print(libbpf_print);

    if (!privileged()) {
        fprintf(stderr, "otelprof record: must run as root (loading the eBPF sampler needs "
                        "CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)\n");
        goto out;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        fprintf(stderr, "otelprof record: this kernel has no BTF (/sys/kernel/btf/vmlinux): the "
                        "CO-RE eBPF sampler needs CONFIG_DEBUG_INFO_BTF=y\n");
        goto out;
    }
    unsigned maxf = max_sample_rate();
    if (maxf && r->o.freq > maxf) {
        fprintf(stderr,
                "otelprof record: --frequency %u is above kernel.perf_event_max_sample_rate "
                "(%u)\n",
                r->o.freq, maxf);
        goto out;
    }
    for (size_t i = 0; i < r->o.n_pids; i++)
        if (!rd_pid_exists(r->o.pids[i])) {
            fprintf(stderr, "otelprof record: no process with pid %d\n", (int)r->o.pids[i]);
            goto out;
        }
    if (r->o.samples_path && !(r->samples_f = fopen(r->o.samples_path, "we"))) {
        fprintf(stderr, "otelprof record: %s: %s\n", r->o.samples_path, strerror(errno));
        goto out;
    }

    r->skel = record_bpf__open();
    if (!r->skel) {
        fprintf(stderr, "otelprof record: opening the eBPF object: %s\n%s", strerror(errno),
                r->libbpf_log);
        goto out;
    }
    struct stat nst;
    if (stat("/proc/self/ns/pid", &nst) == 0) {
        /* the helper compares against the kernel's dev_t: MKDEV = major << 20 | minor */
        r->skel->rodata->pidns_dev = ((__u64)major(nst.st_dev) << 20) | minor(nst.st_dev);
        r->skel->rodata->pidns_ino = nst.st_ino;
    }
    if ((rc = record_bpf__load(r->skel)) != 0) {
        if (rc == -EPERM || rc == -ENOSYS || rc == -EOPNOTSUPP)
            fprintf(stderr,
                    "otelprof record: loading eBPF programs is not permitted here (%s): root, "
                    "kernel.unprivileged_bpf_disabled, lockdown or a seccomp filter?\n%s",
                    strerror(-rc), r->libbpf_log);
        else
            fprintf(stderr, "otelprof record: the kernel refused the eBPF sampler (%s)\n%s",
                    strerror(-rc), r->libbpf_log);
        goto out;
    }
    rb = ring_buffer__new(bpf_map__fd(r->skel->maps.events), on_event, r, NULL);
    if (!rb) {
        fprintf(stderr, "otelprof record: ring buffer: %s\n", strerror(errno));
        goto out;
    }

    rc_profile_init(&r->prof, 1000000000ull / r->o.freq);
    r->k_trace = rc_str(&r->prof, "trace_id", 8);
    r->k_span = rc_str(&r->prof, "span_id", 7);
    r->k_pid = rc_str(&r->prof, "pid", 3);
    r->k_tid = rc_str(&r->prof, "tid", 3);
    r->k_thread = rc_str(&r->prof, "thread", 6);
    r->boot_to_real = boot_to_realtime();

    for (size_t i = 0; i < r->o.n_pids; i++) {
        uint64_t st;
        char comm[64];
        if (find_target(r, r->o.pids[i]))
            continue;
        if (!proc_stat(r->o.pids[i], &st, comm, sizeof comm) ||
            (rc = add_target(r, r->o.pids[i], true, st, comm)) < 0) {
            fprintf(stderr, "otelprof record: pid %d: %s\n", (int)r->o.pids[i],
                    strerror(rc < 0 ? -rc : ESRCH));
            goto out_rb;
        }
    }
    if (!r->o.n_pids)
        scan_all(r);

    if (open_perf_events(r, &pl, &ncpu) != 0)
        goto out_rb;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    bool tty = isatty(STDERR_FILENO) && !r->o.quiet;
    if (!r->o.quiet) {
        if (r->o.duration > 0)
            fprintf(stderr, "otelprof record: sampling at %u Hz on %u CPUs for %.1f s...\n",
                    r->o.freq, ncpu, r->o.duration);
        else
            fprintf(stderr, "otelprof record: sampling at %u Hz on %u CPUs, Ctrl-C to stop...\n",
                    r->o.freq, ncpu);
    }
    r->prof.start_unix_ns = (uint64_t)clock_ns(CLOCK_REALTIME);
    double t0 = now_mono(), last_scan = t0, last_progress = t0;
    while (!g_stop) {
        int n = ring_buffer__poll(rb, 100);
        if (n < 0 && n != -EINTR) {
            fprintf(stderr, "otelprof record: ring buffer: %s\n", strerror(-n));
            break;
        }
        double now = now_mono();
        if (r->o.duration > 0 && now - t0 >= r->o.duration)
            break;
        if (now - last_scan >= SCAN_INTERVAL) {
            last_scan = now;
            refresh_targets(r);
            if (!r->o.n_pids)
                scan_all(r);
            if (all_explicit_gone(r)) {
                if (!r->o.quiet)
                    fprintf(stderr, "%sotelprof record: the processes exited\n", tty ? "\n" : "");
                break;
            }
        }
        if (tty && now - last_progress >= 1.0) {
            last_progress = now;
            size_t alive = 0;
            for (size_t i = 0; i < r->n_targets; i++)
                alive += !r->targets[i]->exited;
            fprintf(stderr,
                    "\r  %.0f s: %" PRIu64 " samples, %" PRIu64 " with a trace, %zu processes ",
                    now - t0, r->n_events, r->n_with_trace, alive);
        }
    }
    double secs = now_mono() - t0;
    close_perf_events(&pl);
    (void)ring_buffer__consume(rb); /* what was sampled before the events were closed */
    r->prof.duration_ns = (uint64_t)(secs * 1e9);
    if (tty)
        fputc('\n', stderr);
    summary(r, secs, ncpu);
    if (r->prof.oom)
        fprintf(stderr, "otelprof record: out of memory: the profile is incomplete\n");
    ret = write_outputs(r) || r->prof.oom;

out_rb:
    close_perf_events(&pl);
    ring_buffer__free(rb);
out:
    g_rec = NULL;
    rec_free(r);
    return ret;
}
