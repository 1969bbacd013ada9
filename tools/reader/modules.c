/* Find the modules (executable and shared objects) that export the context symbols, and
 * where each symbol lives in TLS: the process-wide half of what a profiler resolves. */
#define _GNU_SOURCE
#include "reader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A static TLS offset is a small negative number on x86-64 (variant II); anything else in
 * a TLSDESC's second word is a pointer to glibc's tlsdesc_dynamic_arg. */
#define STATIC_TLS_MIN (-(INT64_C(16) << 20))
#define MAX_MODULE_ID  (UINT64_C(1) << 20)

struct elf_cache {
    unsigned maj, min;
    uint64_t inode;
    bool ok;
    struct rd_elf elf;
};

static int open_mapping_file(pid_t pid, const struct rd_mapping *m)
{
    char path[4200];
    /* map_files reaches the very file mapped, even deleted or in another mount namespace */
    snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
             m->end);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, m->path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    return open(m->path, O_RDONLY | O_CLOEXEC);
}

static bool is_file_mapping(const struct rd_mapping *m)
{
    return m->inode != 0 && m->path[0] == '/' && strncmp(m->path, "/memfd:", 7) != 0 &&
           strncmp(m->path, "/dev/", 5) != 0 && strncmp(m->path, "/SYSV", 5) != 0;
}

static void note(char *buf, size_t len, const char *msg)
{
    size_t n = strlen(buf);
    if (n + 2 < len)
        snprintf(buf + n, len - n, "%s%s", n ? "; " : "", msg);
}

/* Parca's file name rule for the shared-object case: `libcustomlabels.*\.so` (an
 * unanchored match) or customlabels.node. */
static bool parca_name_matches(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *p = strstr(base, "libcustomlabels");
    if (p && strstr(p + 15, ".so"))
        return true;
    return strstr(base, "customlabels.node") != NULL;
}

static void resolve_loc(pid_t pid, const struct rd_module *mod, const struct rd_elf *e,
                        const struct rd_sym *sym, struct rd_tls_loc *loc,
                        struct rd_tls_reloc *rel_out)
{
    memset(loc, 0, sizeof *loc);
    memset(rel_out, 0, sizeof *rel_out);
    if (mod->is_main) {
        /* x86-64 variant II: the executable's block ends at tp, aligned. */
        if (!e->has_tls) {
            snprintf(loc->why, sizeof loc->why, "executable has no PT_TLS segment");
            return;
        }
        uint64_t a = e->tls_align;
        uint64_t rounded = (e->tls_memsz + a - 1) / a * a;
        loc->kind = RD_TLS_STATIC;
        loc->how = "static TLS of the main executable (local-exec)";
        loc->block_offset = -(int64_t)rounded;
        loc->var_offset = loc->block_offset + (int64_t)sym->value;
        return;
    }
    struct rd_tls_reloc r;
    if (rd_elf_tls_reloc(e, sym, &r) != 0) {
        snprintf(loc->why, sizeof loc->why,
                 "no TLSDESC, TPOFF64 or DTPMOD64 relocation for the symbol in the module");
        return;
    }
    *rel_out = r;
    uint64_t got = mod->bias + r.offset;
    /* The relocation's own addend (symbol + addend is what the GOT value describes). */
    int64_t eff = r.by_symbol ? r.addend : 0;
    uint64_t w[3];
    int rc;
    switch (r.type) {
    case R_X86_64_TLSDESC:
        if ((rc = rd_mem_read(pid, got, w, 16)) != 0) {
            snprintf(loc->why, sizeof loc->why, "reading the TLSDESC descriptor: %s",
                     strerror(-rc));
            return;
        }
        if (w[0] == 0 && w[1] == 0) {
            snprintf(loc->why, sizeof loc->why, "TLSDESC descriptor is not resolved yet");
            return;
        }
        if ((int64_t)w[1] < 0 && (int64_t)w[1] >= STATIC_TLS_MIN) {
            loc->kind = RD_TLS_STATIC;
            loc->how = "TLSDESC (static TLS offset)";
            loc->var_offset = (int64_t)w[1] - eff;
            loc->block_offset = loc->var_offset - (int64_t)sym->value;
            return;
        }
        /* glibc: struct tlsdesc_dynamic_arg { size_t module_id, offset, gen_count; } */
        if ((rc = rd_mem_read(pid, w[1], w, 24)) != 0) {
            snprintf(loc->why, sizeof loc->why, "reading tlsdesc_dynamic_arg: %s", strerror(-rc));
            return;
        }
        if (w[0] == 0 || w[0] > MAX_MODULE_ID) {
            snprintf(loc->why, sizeof loc->why,
                     "TLSDESC argument is neither a static offset nor glibc's dynamic argument");
            return;
        }
        loc->kind = RD_TLS_DTV;
        loc->how = "TLSDESC (dynamic TLS)";
        loc->module_id = w[0];
        loc->dtv_offset = w[1] - (uint64_t)eff;
        loc->gen_count = w[2];
        return;
    case R_X86_64_TPOFF64:
        if ((rc = rd_mem_read(pid, got, w, 8)) != 0) {
            snprintf(loc->why, sizeof loc->why, "reading the TPOFF64 GOT slot: %s", strerror(-rc));
            return;
        }
        loc->kind = RD_TLS_STATIC;
        loc->how = "TPOFF64 (initial-exec)";
        loc->var_offset = (int64_t)w[0] - eff;
        loc->block_offset = loc->var_offset - (int64_t)sym->value;
        return;
    case R_X86_64_DTPMOD64:
        if ((rc = rd_mem_read(pid, got, w, 8)) != 0) {
            snprintf(loc->why, sizeof loc->why, "reading the DTPMOD64 GOT slot: %s", strerror(-rc));
            return;
        }
        if (w[0] == 0 || w[0] > MAX_MODULE_ID) {
            snprintf(loc->why, sizeof loc->why, "DTPMOD64 GOT slot holds no module id");
            return;
        }
        loc->kind = RD_TLS_DTV;
        loc->how = "DTPMOD64 (global-dynamic)";
        loc->module_id = w[0];
        loc->dtv_offset = sym->value + (uint64_t)r.dtpoff_addend;
        return;
    default:
        snprintf(loc->why, sizeof loc->why, "unsupported relocation type %u", r.type);
        return;
    }
}

static bool tls_symbol(const struct rd_elf *e, const char *name, struct rd_sym *s, char *notes,
                       size_t nlen)
{
    if (rd_elf_dynsym(e, name, s) != 0 || s->shndx == SHN_UNDEF)
        return false;
    char msg[200];
    /* The OTel eBPF profiler's checks: STT_TLS, global, 8 bytes. */
    if (s->type != STT_TLS || s->bind != STB_GLOBAL || s->size != 8) {
        snprintf(msg, sizeof msg,
                 "%s rejected: type %u binding %u size %" PRIu64 " (want STT_TLS, STB_GLOBAL, 8)",
                 name, s->type, s->bind, s->size);
        note(notes, nlen, msg);
        return false;
    }
    return true;
}

int rd_modules_find(pid_t pid, const struct rd_maps *maps, struct rd_modules *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->tc_index = out->cl_index = -1;
    char exe[64];
    struct stat est;
    snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
    bool have_exe = stat(exe, &est) == 0;

    struct elf_cache *cache = NULL;
    size_t ncache = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < maps->n; i++) {
        const struct rd_mapping *m = &maps->v[i];
        if (m->offset != 0 || !is_file_mapping(m))
            continue;
        struct elf_cache *c = NULL;
        for (size_t j = 0; j < ncache; j++)
            if (cache[j].inode == m->inode && cache[j].maj == m->dev_major &&
                cache[j].min == m->dev_minor)
                c = &cache[j];
        if (!c) {
            if (ncache == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct elf_cache *n = realloc(cache, nc * sizeof *n);
                if (!n) {
                    rc = -ENOMEM;
                    break;
                }
                cache = n;
                cap = nc;
            }
            c = &cache[ncache++];
            memset(c, 0, sizeof *c);
            c->maj = m->dev_major;
            c->min = m->dev_minor;
            c->inode = m->inode;
            int fd = open_mapping_file(pid, m);
            if (fd >= 0) {
                char e2[128];
                c->ok = rd_elf_open(&c->elf, fd, e2, sizeof e2) == 0;
                close(fd);
            }
        }
        if (!c->ok)
            continue;
        const struct rd_elf *e = &c->elf;
        struct rd_module mod;
        memset(&mod, 0, sizeof mod);
        char notes[512] = "";
        mod.has_tc = tls_symbol(e, RD_TC_SYMBOL, &mod.tc_sym, notes, sizeof notes);
        mod.has_cl = tls_symbol(e, RD_CL_SET_SYMBOL, &mod.cl_sym, notes, sizeof notes);
        if (rd_elf_dynsym(e, RD_CL_ABI_SYMBOL, &mod.abi_sym) == 0 && mod.abi_sym.shndx != SHN_UNDEF)
            mod.has_abi = true;
        if (!mod.has_tc && !mod.has_cl && !mod.has_abi && !notes[0])
            continue;
        mod.path = strdup(m->path);
        mod.notes = strdup(notes);
        if (!mod.path || !mod.notes) {
            free(mod.path);
            free(mod.notes);
            rc = -ENOMEM;
            break;
        }
        mod.base = m->start;
        if (!rd_elf_bias(e, m->start, m->offset, &mod.bias))
            mod.bias = m->start;
        mod.is_main = have_exe && m->inode == (uint64_t)est.st_ino &&
                      m->dev_major == major(est.st_dev) && m->dev_minor == minor(est.st_dev);
        if (mod.has_abi) {
            mod.abi_read_err =
                mod.abi_sym.size == 4
                    ? rd_mem_read(pid, mod.bias + mod.abi_sym.value, &mod.abi_value, 4)
                    : -EINVAL;
        }
        struct rd_tls_reloc rel;
        if (mod.has_tc)
            resolve_loc(pid, &mod, e, &mod.tc_sym, &mod.tc, &rel);
        if (mod.has_cl) {
            resolve_loc(pid, &mod, e, &mod.cl_sym, &mod.cl, &rel);
            bool abi_ok =
                mod.has_abi && mod.abi_sym.size == 4 && mod.abi_read_err == 0 && mod.abi_value == 1;
            if (!abi_ok) {
                snprintf(mod.cl_parca_why, sizeof mod.cl_parca_why,
                         "custom_labels_abi_version missing, not 4 bytes or not 1");
            } else if (mod.is_main) {
                mod.cl_parca_ok = mod.cl.kind == RD_TLS_STATIC;
                if (!mod.cl_parca_ok)
                    snprintf(mod.cl_parca_why, sizeof mod.cl_parca_why, "%s", mod.cl.why);
            } else if (!parca_name_matches(m->path)) {
                snprintf(mod.cl_parca_why, sizeof mod.cl_parca_why,
                         "Parca reads custom labels only from the main executable or a "
                         "libcustomlabels*.so: it mis-reads this module");
            } else if (rel.type != R_X86_64_TLSDESC) {
                snprintf(mod.cl_parca_why, sizeof mod.cl_parca_why,
                         "Parca needs a TLSDESC relocation for custom_labels_current_set");
            } else if (mod.cl.kind != RD_TLS_STATIC) {
                snprintf(mod.cl_parca_why, sizeof mod.cl_parca_why,
                         "dynamic TLS (loaded by dlopen): unreadable by Parca, which takes the "
                         "TLSDESC's second word as a static offset");
            } else {
                mod.cl_parca_ok = true;
            }
        }
        if (out->n % 8 == 0) {
            struct rd_module *nv = realloc(out->v, (out->n + 8) * sizeof *nv);
            if (!nv) {
                free(mod.path);
                free(mod.notes);
                rc = -ENOMEM;
                break;
            }
            out->v = nv;
        }
        out->v[out->n++] = mod;
    }
    for (size_t j = 0; j < ncache; j++)
        if (cache[j].ok)
            rd_elf_close(&cache[j].elf);
    free(cache);
    if (rc != 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        rd_modules_free(out);
        return rc;
    }
    /* Symbol interposition: the executable's definition wins, then load order. */
    for (size_t i = 0; i < out->n; i++) {
        const struct rd_module *m = &out->v[i];
        if (m->has_tc && (out->tc_index < 0 || (m->is_main && !out->v[out->tc_index].is_main)))
            out->tc_index = (int)i;
        if (m->has_cl && (out->cl_index < 0 || (m->is_main && !out->v[out->cl_index].is_main)))
            out->cl_index = (int)i;
    }
    /* For custom labels, a libcustomlabels*.so beats another non-executable module. */
    if (out->cl_index >= 0 && !out->v[out->cl_index].is_main) {
        for (size_t i = 0; i < out->n; i++)
            if (out->v[i].has_cl && parca_name_matches(out->v[i].path)) {
                out->cl_index = (int)i;
                break;
            }
    }
    return 0;
}

void rd_modules_free(struct rd_modules *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].path);
        free(m->v[i].notes);
    }
    free(m->v);
    memset(m, 0, sizeof *m);
    m->tc_index = m->cl_index = -1;
}
