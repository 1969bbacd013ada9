/* `otelprof inspect [--json] PID`: what a profiler would read from each thread of PID.
 *
 * Process-wide first (maps, modules, TLS relocations, process context), then one thread
 * at a time: stop it, read its thread pointer and the records, let it go. A thread is
 * stopped only for those few reads.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "reader.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct thread_info {
    pid_t tid;
    char name[64];
    struct rd_thread_ctx tc;
    struct rd_custom_labels cl;
};

struct inspect {
    pid_t pid;
    /* The id whose /proc entry and memory we read: the pid, or a live thread when the
     * main thread has exited (a zombie leader has no memory map). */
    pid_t view;
    struct rd_maps maps;
    struct rd_procctx pc;
    struct rd_modules mods;
    struct thread_info *threads;
    size_t n_threads;
};

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: otelprof inspect [--json] PID\n"
               "\n"
               "Stops each thread of PID for a moment (ptrace) and shows the trace context it\n"
               "publishes: the OTel thread context (otel_thread_ctx_v1), the custom labels\n"
               "(custom_labels_current_set) and the OTel process context (OTEL_CTX mapping).\n"
               "\n"
               "  --json   one JSON object instead of the table\n"
               "\n"
               "Reading another process needs root or CAP_SYS_PTRACE (or, for a process of the\n"
               "same user, kernel.yama.ptrace_scope=0).\n");
}

static int permission_error(pid_t pid, pid_t tid, int err, const char *what)
{
    long tracer = rd_tracer_pid(pid, tid);
    if (tracer > 0 && err == EPERM) {
        fprintf(
            stderr,
            "otelprof inspect: cannot %s of process %d: thread %d is already traced by pid %ld\n",
            what, (int)pid, (int)tid, tracer);
        return CLI_EXIT_ERROR;
    }
    fprintf(stderr,
            "otelprof inspect: cannot %s of process %d: %s\n"
            "reading another process needs root or CAP_SYS_PTRACE; a process of the same user\n"
            "can also be read when kernel.yama.ptrace_scope is 0\n",
            what, (int)pid, strerror(err));
    return CLI_EXIT_ERROR;
}

static bool is_perm(int rc)
{
    return rc == -EPERM || rc == -EACCES;
}

static void read_tc(pid_t pid, uint64_t tp, const struct rd_module *m, struct rd_thread_ctx *tc)
{
    if (m->tc.kind == RD_TLS_UNKNOWN) {
        tc->state = RD_ST_UNREADABLE;
        snprintf(tc->why, sizeof tc->why, "%s", m->tc.why);
        return;
    }
    uint64_t addr;
    int rc = rd_tls_address(pid, tp, &m->tc, &addr);
    if (rc == 1) {
        tc->state = RD_ST_NONE; /* the thread never touched the module's TLS */
        return;
    }
    if (rc < 0) {
        tc->state = RD_ST_UNREADABLE;
        snprintf(tc->why, sizeof tc->why, "locating the TLS variable: %s", strerror(-rc));
        return;
    }
    rd_tc_read(pid, addr, tc);
}

static void read_cl(pid_t pid, uint64_t tp, const struct rd_module *m, struct rd_custom_labels *cl)
{
    if (m->cl.kind == RD_TLS_UNKNOWN) {
        cl->state = RD_ST_UNREADABLE;
        snprintf(cl->why, sizeof cl->why, "%s", m->cl.why);
        return;
    }
    uint64_t addr;
    int rc = rd_tls_address(pid, tp, &m->cl, &addr);
    if (rc == 1) {
        cl->state = RD_ST_NONE;
    } else if (rc < 0) {
        cl->state = RD_ST_UNREADABLE;
        snprintf(cl->why, sizeof cl->why, "locating the TLS variable: %s", strerror(-rc));
        return;
    } else {
        rd_cl_read(pid, addr, cl);
    }
    /* What Parca sees: nothing, when it cannot locate the variable the way it does. */
    if (!m->cl_parca_ok && cl->state != RD_ST_UNREADABLE) {
        cl->via_dtv_only = cl->state == RD_ST_ATTACHED;
        cl->state = RD_ST_UNREADABLE;
        snprintf(cl->why, sizeof cl->why, "%s", m->cl_parca_why);
    }
}

/* 0, -ESRCH (thread gone: skip it), or another -errno. */
static int read_thread(struct inspect *in, struct thread_info *ti)
{
    int sig;
    int rc = rd_thread_stop(ti->tid, &sig);
    /* ptrace refuses an exiting or zombie thread with EPERM: that is not a permission
     * problem, the thread is just gone. */
    if (rc != 0 && rc != -ESRCH && rd_thread_gone(in->pid, ti->tid))
        rc = -ESRCH;
    if (rc != 0)
        return rc;
    uint64_t tp;
    rc = rd_thread_pointer(ti->tid, &tp);
    if (rc == 0) {
        /* Read through the stopped thread itself: unlike the leader, it cannot exit under
         * us. */
        if (in->mods.tc_index >= 0)
            read_tc(ti->tid, tp, &in->mods.v[in->mods.tc_index], &ti->tc);
        if (in->mods.cl_index >= 0)
            read_cl(ti->tid, tp, &in->mods.v[in->mods.cl_index], &ti->cl);
    }
    rd_thread_release(ti->tid, sig);
    return rc;
}

static const char *state_name(enum rd_state s)
{
    switch (s) {
    case RD_ST_NONE:
        return "none";
    case RD_ST_ATTACHED:
        return "attached";
    case RD_ST_INVALID:
        return "invalid";
    case RD_ST_UNREADABLE:
        return "unreadable";
    default:
        return "absent";
    }
}

/* The name of key index idx from the process context's key map, or "#idx". */
static void key_name(const struct rd_procctx *pc, unsigned idx, const uint8_t **s, size_t *n,
                     char *tmp, size_t tmplen)
{
    if (pc->decoded && idx < pc->n_keys && pc->keys[idx]) {
        *s = pc->keys[idx];
        *n = pc->key_len[idx];
        return;
    }
    snprintf(tmp, tmplen, "#%u", idx);
    *s = (const uint8_t *)tmp;
    *n = strlen(tmp);
}

static bool beyond_parca_limits(const struct rd_custom_labels *cl)
{
    if (cl->count > RD_CL_PARCA_LABELS)
        return true;
    for (size_t i = 0; i < cl->n_labels; i++)
        if (cl->labels[i].key_len > RD_CL_PARCA_KEY || cl->labels[i].value_len > RD_CL_PARCA_VALUE)
            return true;
    return false;
}

/* ---------------------------------------------------------------- JSON ---- */

static void json_any(struct rd_buf *b, const struct rd_any *a, int depth)
{
    switch (a->kind) {
    case RD_ANY_STRING:
        rd_buf_json_str(b, a->s, a->len);
        break;
    case RD_ANY_BOOL:
        rd_buf_puts(b, a->b ? "true" : "false");
        break;
    case RD_ANY_INT:
        rd_buf_printf(b, "%" PRId64, a->i);
        break;
    case RD_ANY_DOUBLE:
        if (isfinite(a->d))
            rd_buf_printf(b, "%.17g", a->d);
        else
            rd_buf_puts(b, "null");
        break;
    case RD_ANY_ARRAY: {
        if (depth > 8) {
            rd_buf_puts(b, "null");
            break;
        }
        rd_buf_puts(b, "[");
        size_t pos = 0;
        struct rd_any item;
        bool first = true;
        while (rd_any_array_next(a, &pos, &item)) {
            if (!first)
                rd_buf_puts(b, ",");
            first = false;
            json_any(b, &item, depth + 1);
        }
        rd_buf_puts(b, "]");
        break;
    }
    default:
        rd_buf_puts(b, "null");
        break;
    }
}

static void json_procctx(struct rd_buf *b, const struct rd_procctx *pc)
{
    rd_buf_printf(b, "\"process_context\":{\"found\":%s", pc->found ? "true" : "false");
    if (pc->found) {
        rd_buf_puts(b, ",\"mapping\":");
        rd_buf_json_str(b, (const uint8_t *)pc->mapping, strlen(pc->mapping));
        rd_buf_printf(b, ",\"version\":%u,\"published_at\":%" PRIu64 ",\"payload_size\":%u",
                      pc->version, pc->published_at, pc->payload_size);
    }
    if (pc->found && !pc->decoded) {
        rd_buf_puts(b, ",\"error\":");
        rd_buf_json_str(b, (const uint8_t *)pc->why, strlen(pc->why));
    }
    if (pc->decoded) {
        rd_buf_puts(b, ",\"resource\":{");
        for (size_t i = 0; i < pc->n_resource; i++) {
            if (i)
                rd_buf_puts(b, ",");
            rd_buf_json_str(b, pc->resource[i].key, pc->resource[i].key_len);
            rd_buf_puts(b, ":");
            json_any(b, &pc->resource[i].value, 0);
        }
        rd_buf_puts(b, "}");
        if (pc->has_schema) {
            rd_buf_puts(b, ",\"schema_version\":");
            rd_buf_json_str(b, pc->schema, pc->schema_len);
        }
        if (pc->has_key_map) {
            rd_buf_puts(b, ",\"attribute_key_map\":[");
            for (size_t i = 0; i < pc->n_keys; i++) {
                if (i)
                    rd_buf_puts(b, ",");
                if (pc->keys[i])
                    rd_buf_json_str(b, pc->keys[i], pc->key_len[i]);
                else
                    rd_buf_puts(b, "null");
            }
            rd_buf_puts(b, "]");
        }
    }
    rd_buf_puts(b, "}");
}

static void json_str(struct rd_buf *b, const char *s)
{
    rd_buf_json_str(b, (const uint8_t *)s, strlen(s));
}

static void json_module(struct rd_buf *b, const struct rd_module *m)
{
    rd_buf_puts(b, "{\"path\":");
    json_str(b, m->path);
    rd_buf_printf(b, ",\"main_executable\":%s,\"symbols\":[", m->is_main ? "true" : "false");
    bool first = true;
    const char *names[] = {RD_TC_SYMBOL, RD_CL_SET_SYMBOL, RD_CL_ABI_SYMBOL};
    bool has[] = {m->has_tc, m->has_cl, m->has_abi};
    for (int i = 0; i < 3; i++) {
        if (!has[i])
            continue;
        rd_buf_puts(b, first ? "\"" : ",\"");
        rd_buf_puts(b, names[i]);
        rd_buf_puts(b, "\"");
        first = false;
    }
    rd_buf_puts(b, "]");
    const struct rd_tls_loc *loc = m->has_tc ? &m->tc : m->has_cl ? &m->cl : NULL;
    if (loc) {
        if (loc->kind == RD_TLS_STATIC)
            rd_buf_printf(b, ",\"tls\":\"static\",\"tp_offset\":%" PRId64, loc->block_offset);
        else if (loc->kind == RD_TLS_DTV)
            rd_buf_printf(b, ",\"tls\":\"dtv\",\"module_id\":%" PRIu64, loc->module_id);
        else
            rd_buf_puts(b, ",\"tls\":\"unknown\"");
        if (loc->kind != RD_TLS_UNKNOWN) {
            rd_buf_puts(b, ",\"tls_access\":");
            json_str(b, loc->how);
        } else {
            rd_buf_puts(b, ",\"tls_error\":");
            json_str(b, loc->why);
        }
    }
    if (m->has_abi) {
        if (m->abi_read_err == 0)
            rd_buf_printf(b, ",\"custom_labels_abi_version\":%u", m->abi_value);
        else
            rd_buf_puts(b, ",\"custom_labels_abi_version\":null");
    }
    if (m->has_cl) {
        rd_buf_printf(b, ",\"parca_readable\":%s", m->cl_parca_ok ? "true" : "false");
        if (!m->cl_parca_ok) {
            rd_buf_puts(b, ",\"parca_reason\":");
            json_str(b, m->cl_parca_why);
        }
    }
    if (m->notes[0]) {
        rd_buf_puts(b, ",\"notes\":");
        json_str(b, m->notes);
    }
    rd_buf_puts(b, "}");
}

static void json_thread(struct rd_buf *b, const struct inspect *in, const struct thread_info *t)
{
    rd_buf_printf(b, "{\"tid\":%d,\"name\":", (int)t->tid);
    json_str(b, t->name);
    char hex[33], tmp[16];
    if (t->tc.state != RD_ST_ABSENT) {
        const struct rd_thread_ctx *tc = &t->tc;
        rd_buf_printf(b, ",\"thread_ctx\":{\"state\":\"%s\"", state_name(tc->state));
        if (tc->state == RD_ST_ATTACHED) {
            rd_hex(hex, tc->trace_id, 16);
            rd_buf_printf(b, ",\"trace_id\":\"%s\"", hex);
            rd_hex(hex, tc->span_id, 8);
            rd_buf_printf(b, ",\"span_id\":\"%s\",\"trace_flags\":%u,\"attributes\":{", hex,
                          tc->trace_flags);
            for (size_t i = 0; i < tc->n_entries; i++) {
                const uint8_t *k;
                size_t kn;
                key_name(&in->pc, tc->entries[i].key, &k, &kn, tmp, sizeof tmp);
                if (i)
                    rd_buf_puts(b, ",");
                rd_buf_json_str(b, k, kn);
                rd_buf_puts(b, ":");
                rd_buf_json_str(b, tc->entries[i].value, tc->entries[i].len);
            }
            rd_buf_puts(b, "}");
            if (tc->truncated)
                rd_buf_puts(b, ",\"truncated\":true");
            if (tc->attrs_size > RD_TC_ATTRS_MAX)
                rd_buf_printf(b, ",\"attrs_size\":%u", tc->attrs_size);
        } else if (tc->state == RD_ST_INVALID) {
            rd_buf_printf(b, ",\"valid\":%u", tc->valid);
        } else if (tc->state == RD_ST_UNREADABLE) {
            rd_buf_puts(b, ",\"reason\":");
            json_str(b, tc->why);
        }
        rd_buf_puts(b, "}");
    }
    if (t->cl.state != RD_ST_ABSENT) {
        const struct rd_custom_labels *cl = &t->cl;
        rd_buf_printf(b, ",\"custom_labels\":{\"state\":\"%s\"", state_name(cl->state));
        if (cl->state == RD_ST_UNREADABLE) {
            rd_buf_puts(b, ",\"reason\":");
            json_str(b, cl->why);
        }
        if (cl->state == RD_ST_ATTACHED || cl->via_dtv_only) {
            if (cl->via_dtv_only)
                rd_buf_puts(b, ",\"read_via\":\"dtv\"");
            rd_buf_puts(b, ",\"labels\":{");
            for (size_t i = 0; i < cl->n_labels; i++) {
                if (i)
                    rd_buf_puts(b, ",");
                rd_buf_json_str(b, cl->labels[i].key, cl->labels[i].key_len);
                rd_buf_puts(b, ":");
                if (cl->labels[i].value)
                    rd_buf_json_str(b, cl->labels[i].value, cl->labels[i].value_len);
                else
                    rd_buf_puts(b, "null");
            }
            rd_buf_puts(b, "}");
            if (cl->count > RD_CL_MAX_SHOWN)
                rd_buf_printf(b, ",\"count\":%" PRIu64, cl->count);
            if (beyond_parca_limits(cl))
                rd_buf_puts(b, ",\"beyond_parca_limits\":true");
        }
        rd_buf_puts(b, "}");
    }
    rd_buf_puts(b, "}");
}

static void print_json(struct rd_buf *b, const struct inspect *in)
{
    rd_buf_printf(b, "{\"pid\":%d,", (int)in->pid);
    json_procctx(b, &in->pc);
    rd_buf_puts(b, ",\"modules\":[");
    for (size_t i = 0; i < in->mods.n; i++) {
        if (i)
            rd_buf_puts(b, ",");
        json_module(b, &in->mods.v[i]);
    }
    rd_buf_puts(b, "],\"threads\":[");
    for (size_t i = 0; i < in->n_threads; i++) {
        if (i)
            rd_buf_puts(b, ",");
        json_thread(b, in, &in->threads[i]);
    }
    rd_buf_puts(b, "]}\n");
}

/* ---------------------------------------------------------------- text ---- */

static void text_any(struct rd_buf *b, const struct rd_any *a)
{
    switch (a->kind) {
    case RD_ANY_STRING:
        rd_buf_text_str(b, a->s, a->len);
        break;
    case RD_ANY_BOOL:
        rd_buf_puts(b, a->b ? "true" : "false");
        break;
    case RD_ANY_INT:
        rd_buf_printf(b, "%" PRId64, a->i);
        break;
    case RD_ANY_DOUBLE:
        rd_buf_printf(b, "%g", a->d);
        break;
    case RD_ANY_ARRAY:
        rd_buf_puts(b, "[array]");
        break;
    default:
        rd_buf_puts(b, "(none)");
        break;
    }
}

static void text_procctx(struct rd_buf *b, const struct rd_procctx *pc)
{
    if (!pc->found) {
        rd_buf_puts(b, "process context: none (no OTEL_CTX mapping)\n");
        return;
    }
    rd_buf_printf(b,
                  "process context: %s at 0x%" PRIx64 ", version %u, published_at %" PRIu64
                  ", payload %u bytes\n",
                  pc->mapping, pc->mapping_addr, pc->version, pc->published_at, pc->payload_size);
    if (!pc->decoded) {
        rd_buf_printf(b, "  unreadable: %s\n", pc->why);
        return;
    }
    rd_buf_puts(b, "  resource:");
    for (size_t i = 0; i < pc->n_resource; i++) {
        rd_buf_puts(b, i ? ", " : " ");
        rd_buf_text_str(b, pc->resource[i].key, pc->resource[i].key_len);
        rd_buf_puts(b, "=");
        text_any(b, &pc->resource[i].value);
    }
    rd_buf_puts(b, "\n  threadlocal.schema_version: ");
    if (pc->has_schema)
        rd_buf_text_str(b, pc->schema, pc->schema_len);
    else
        rd_buf_puts(b, "(missing)");
    rd_buf_puts(b, "\n  threadlocal.attribute_key_map:");
    if (!pc->has_key_map)
        rd_buf_puts(b, " (missing)");
    for (size_t i = 0; i < pc->n_keys; i++) {
        rd_buf_printf(b, "%s[%zu] ", i ? ", " : " ", i);
        if (pc->keys[i])
            rd_buf_text_str(b, pc->keys[i], pc->key_len[i]);
        else
            rd_buf_puts(b, "(not a string)");
    }
    rd_buf_puts(b, "\n");
}

static void text_loc(struct rd_buf *b, const char *sym, const struct rd_tls_loc *loc)
{
    rd_buf_printf(b, "    %s: ", sym);
    if (loc->kind == RD_TLS_STATIC)
        rd_buf_printf(b, "static TLS, block at tp%+" PRId64 ", variable at tp%+" PRId64 " (%s)\n",
                      loc->block_offset, loc->var_offset, loc->how);
    else if (loc->kind == RD_TLS_DTV)
        rd_buf_printf(b, "dynamic TLS, dtv module id %" PRIu64 ", offset %" PRIu64 " (%s)\n",
                      loc->module_id, loc->dtv_offset, loc->how);
    else
        rd_buf_printf(b, "cannot locate: %s\n", loc->why);
}

static void text_modules(struct rd_buf *b, const struct rd_modules *mods)
{
    rd_buf_puts(b, "modules:\n");
    if (mods->n == 0)
        rd_buf_puts(b, "  (none exports otel_thread_ctx_v1 or custom_labels_current_set)\n");
    for (size_t i = 0; i < mods->n; i++) {
        const struct rd_module *m = &mods->v[i];
        rd_buf_printf(b, "  %s%s\n", m->path, m->is_main ? " (main executable)" : "");
        if (m->has_tc)
            text_loc(b, RD_TC_SYMBOL, &m->tc);
        if (m->has_cl)
            text_loc(b, RD_CL_SET_SYMBOL, &m->cl);
        if (m->has_abi) {
            if (m->abi_read_err == 0)
                rd_buf_printf(b, "    %s = %u\n", RD_CL_ABI_SYMBOL, m->abi_value);
            else
                rd_buf_printf(b, "    %s: unreadable (size %" PRIu64 ")\n", RD_CL_ABI_SYMBOL,
                              m->abi_sym.size);
        }
        if (m->has_cl)
            rd_buf_printf(b, "    Parca: %s%s\n", m->cl_parca_ok ? "can read custom labels" : "",
                          m->cl_parca_ok ? "" : m->cl_parca_why);
        if (m->notes[0])
            rd_buf_printf(b, "    note: %s\n", m->notes);
    }
}

static void text_thread(struct rd_buf *b, const struct inspect *in, const struct thread_info *t)
{
    char hex[33], tmp[16];
    size_t start = b->len;
    rd_buf_printf(b, "%-8d ", (int)t->tid);
    rd_buf_text_str(b, (const uint8_t *)t->name, strlen(t->name));
    size_t w = b->len - start;
    for (; w < 26; w++)
        rd_buf_puts(b, " ");
    rd_buf_puts(b, " ");
    const struct rd_thread_ctx *tc = &t->tc;
    if (tc->state == RD_ST_ATTACHED) {
        rd_hex(hex, tc->trace_id, 16);
        rd_buf_printf(b, "%s ", hex);
        rd_hex(hex, tc->span_id, 8);
        rd_buf_printf(b, "%s %02x   ", hex, tc->trace_flags);
        for (size_t i = 0; i < tc->n_entries; i++) {
            const uint8_t *k;
            size_t kn;
            key_name(&in->pc, tc->entries[i].key, &k, &kn, tmp, sizeof tmp);
            if (i)
                rd_buf_puts(b, ", ");
            rd_buf_text_str(b, k, kn);
            rd_buf_puts(b, "=");
            rd_buf_text_str(b, tc->entries[i].value, tc->entries[i].len);
        }
        if (tc->truncated)
            rd_buf_puts(b, " (truncated entry)");
    } else if (tc->state == RD_ST_ABSENT) {
        rd_buf_printf(b, "%-55s", "-");
    } else {
        rd_buf_printf(b, "(%s", state_name(tc->state));
        if (tc->state == RD_ST_INVALID)
            rd_buf_printf(b, ": valid byte %u", tc->valid);
        else if (tc->state == RD_ST_UNREADABLE)
            rd_buf_printf(b, ": %s", tc->why);
        rd_buf_puts(b, ")");
    }
    const struct rd_custom_labels *cl = &t->cl;
    if (cl->state != RD_ST_ABSENT) {
        rd_buf_puts(b, " | labels: ");
        if (cl->state == RD_ST_ATTACHED || cl->via_dtv_only) {
            for (size_t i = 0; i < cl->n_labels; i++) {
                if (i)
                    rd_buf_puts(b, ", ");
                rd_buf_text_str(b, cl->labels[i].key, cl->labels[i].key_len);
                rd_buf_puts(b, "=");
                if (cl->labels[i].value)
                    rd_buf_text_str(b, cl->labels[i].value, cl->labels[i].value_len);
            }
            if (cl->count > RD_CL_MAX_SHOWN)
                rd_buf_printf(b, " (%" PRIu64 " labels, first %d shown)", cl->count,
                              RD_CL_MAX_SHOWN);
        }
        if (cl->state != RD_ST_ATTACHED)
            rd_buf_printf(b, "%s(%s%s%s)", cl->via_dtv_only ? " " : "", state_name(cl->state),
                          cl->why[0] ? ": " : "", cl->why);
    }
    rd_buf_puts(b, "\n");
}

static void print_text(struct rd_buf *b, const struct inspect *in)
{
    rd_buf_printf(b, "pid %d\n", (int)in->pid);
    text_procctx(b, &in->pc);
    text_modules(b, &in->mods);
    rd_buf_printf(b, "threads: %zu\n", in->n_threads);
    rd_buf_printf(b, "%-8s %-17s %-32s %-16s %-5s %s\n", "TID", "NAME", "TRACE ID", "SPAN ID",
                  "FLAGS", "ATTRIBUTES | CUSTOM LABELS");
    bool over = false;
    for (size_t i = 0; i < in->n_threads; i++) {
        text_thread(b, in, &in->threads[i]);
        if (in->threads[i].cl.state == RD_ST_ATTACHED && beyond_parca_limits(&in->threads[i].cl))
            over = true;
    }
    if (over)
        rd_buf_printf(b,
                      "note: Parca reads only the first %d labels, cuts keys to %d and values "
                      "to %d bytes\n",
                      RD_CL_PARCA_LABELS, RD_CL_PARCA_KEY, RD_CL_PARCA_VALUE);
}

/* ---------------------------------------------------------------- main ---- */

static bool parse_pid(const char *s, pid_t *pid)
{
    if (!*s)
        return false;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return false;
    }
    if (v <= 0)
        return false;
    *pid = (pid_t)v;
    return true;
}

static void inspect_free(struct inspect *in)
{
    for (size_t i = 0; i < in->n_threads; i++)
        rd_cl_free(&in->threads[i].cl);
    free(in->threads);
    rd_modules_free(&in->mods);
    rd_procctx_free(&in->pc);
    rd_maps_free(&in->maps);
}

static int no_process(pid_t pid)
{
    fprintf(stderr, "otelprof inspect: no process with pid %d\n", (int)pid);
    return CLI_EXIT_ERROR;
}

/* Process-wide reads, then each thread. CLI_EXIT_OK or an exit code (message printed). */
static int collect(struct inspect *in, const pid_t *tids, size_t n)
{
    pid_t pid = in->pid, view = in->view;
    int rc = rd_maps_read(view, &in->maps);
    if (rc == -ENOENT || rc == -ESRCH)
        return no_process(pid);
    if (is_perm(rc))
        return permission_error(pid, view, -rc, "read the memory maps");
    if (rc != 0) {
        fprintf(stderr, "otelprof inspect: reading /proc/%d/maps: %s\n", (int)view, strerror(-rc));
        return CLI_EXIT_ERROR;
    }
    /* One probe read, so that a permission problem is reported as such. */
    for (size_t i = 0; i < in->maps.n; i++) {
        if (in->maps.v[i].perms[0] != 'r')
            continue;
        uint8_t byte;
        rc = rd_mem_read(view, in->maps.v[i].start, &byte, 1);
        if (is_perm(rc))
            return permission_error(pid, view, -rc, "read the memory");
        if (rc == -ESRCH)
            return no_process(pid);
        break;
    }
    rc = rd_procctx_read(view, &in->maps, &in->pc);
    if (is_perm(rc))
        return permission_error(pid, view, -rc, "read the memory");
    if (rc == -ESRCH)
        return no_process(pid);
    char err[RD_ERRLEN];
    rc = rd_modules_find(view, &in->maps, &in->mods, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "otelprof inspect: finding modules of process %d: %s\n", (int)pid, err);
        return CLI_EXIT_ERROR;
    }
    if (in->mods.tc_index < 0 && in->mods.cl_index < 0 && !in->pc.found) {
        fprintf(stderr,
                "otelprof inspect: process %d exposes no thread context: no module exports "
                "otel_thread_ctx_v1 or custom_labels_current_set, and no OTEL_CTX mapping\n",
                (int)pid);
        for (size_t i = 0; i < in->mods.n; i++)
            if (in->mods.v[i].notes[0])
                fprintf(stderr, "  %s: %s\n", in->mods.v[i].path, in->mods.v[i].notes);
        return CLI_EXIT_ERROR;
    }

    in->threads = calloc(n ? n : 1, sizeof *in->threads);
    if (!in->threads) {
        fprintf(stderr, "otelprof inspect: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    bool need_stop = in->mods.tc_index >= 0 || in->mods.cl_index >= 0;
    for (size_t i = 0; i < n; i++) {
        struct thread_info *t = &in->threads[in->n_threads];
        memset(t, 0, sizeof *t);
        t->tid = tids[i];
        rd_thread_name(pid, t->tid, t->name, sizeof t->name);
        if (need_stop) {
            rc = read_thread(in, t);
            if (rc == -ESRCH) { /* exited meanwhile */
                rd_cl_free(&t->cl);
                continue;
            }
            if (is_perm(rc)) {
                rd_cl_free(&t->cl);
                return permission_error(pid, t->tid, -rc, "stop the threads (ptrace)");
            }
            if (rc == -ENOTSUP) {
                fprintf(stderr, "otelprof inspect: reading thread pointers is only implemented "
                                "for x86-64\n");
                return CLI_EXIT_ERROR;
            }
            if (rc != 0) {
                if (in->mods.tc_index >= 0) {
                    t->tc.state = RD_ST_UNREADABLE;
                    snprintf(t->tc.why, sizeof t->tc.why, "ptrace: %s", strerror(-rc));
                }
                if (in->mods.cl_index >= 0) {
                    t->cl.state = RD_ST_UNREADABLE;
                    snprintf(t->cl.why, sizeof t->cl.why, "ptrace: %s", strerror(-rc));
                }
            }
        }
        in->n_threads++;
    }
    return CLI_EXIT_OK;
}

static int run(struct inspect *in, bool json)
{
    pid_t pid = in->pid;
    if (!rd_pid_exists(pid))
        return no_process(pid);
    pid_t *tids;
    size_t n;
    int rc = rd_tasks(pid, &tids, &n);
    if (rc == -ENOENT || rc == -ESRCH)
        return no_process(pid);
    if (rc != 0) {
        fprintf(stderr, "otelprof inspect: listing threads of %d: %s\n", (int)pid, strerror(-rc));
        return CLI_EXIT_ERROR;
    }
    in->view = pid;
    if (rd_thread_gone(pid, pid)) {
        for (size_t i = 0; i < n; i++)
            if (tids[i] != pid && !rd_thread_gone(pid, tids[i])) {
                in->view = tids[i];
                break;
            }
    }
    rc = collect(in, tids, n);
    free(tids);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (in->n_threads == 0 && !rd_pid_exists(pid))
        return no_process(pid);

    struct rd_buf out = {0};
    if (json)
        print_json(&out, in);
    else
        print_text(&out, in);
    if (out.oom) {
        rd_buf_free(&out);
        fprintf(stderr, "otelprof inspect: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    bool ok = fwrite(out.p, 1, out.len, stdout) == out.len && fflush(stdout) == 0;
    rd_buf_free(&out);
    if (!ok) {
        fprintf(stderr, "otelprof inspect: writing the output: %s\n", strerror(errno));
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}

int cli_inspect(int argc, char **argv)
{
    bool json = false;
    const char *pid_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            inspect_usage(stdout);
            return CLI_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "otelprof inspect: unknown option '%s'\n", argv[i]);
            inspect_usage(stderr);
            return CLI_EXIT_USAGE;
        } else if (pid_arg) {
            fprintf(stderr, "otelprof inspect: one PID only\n");
            inspect_usage(stderr);
            return CLI_EXIT_USAGE;
        } else {
            pid_arg = argv[i];
        }
    }
    struct inspect in;
    memset(&in, 0, sizeof in);
    in.mods.tc_index = in.mods.cl_index = -1;
    if (!pid_arg || !parse_pid(pid_arg, &in.pid)) {
        if (pid_arg)
            fprintf(stderr, "otelprof inspect: '%s' is not a process id\n", pid_arg);
        inspect_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int rc = run(&in, json);
    inspect_free(&in);
    return rc;
}
